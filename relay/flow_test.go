package relay

import (
	"errors"
	"io"
	"testing"
	"time"
)

// A relay writes into a Pipe from the one goroutine that reads a parent's
// connection: writes must never wait for the reader, and the reader gets
// every byte before the close reason.
func TestPipeNeverBlocksWritersAndDeliversBeforeClosing(t *testing.T) {
	p := NewPipe()
	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			p.Write(make([]byte, 1024))
		}
		p.CloseWithError(errors.New("relay lost"))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("writes blocked without a reader")
	}
	n, err := io.Copy(io.Discard, p)
	if n != 1000*1024 || err == nil || err.Error() != "relay lost" {
		t.Fatalf("read %d bytes, err %v; want 1024000 and the close reason", n, err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("write after close: %v", err)
	}
}

func TestPipeCloseWithoutReasonIsEOF(t *testing.T) {
	p := NewPipe()
	p.Write([]byte("hello"))
	p.Close()
	b, err := io.ReadAll(p)
	if string(b) != "hello" || err != nil {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
}

// A bounded pipe fails as a whole when a write does not fit: the reader
// gets the reason at once, not a truncated stream that looks complete.
func TestPipeLimitFailsTheStreamOnOverrun(t *testing.T) {
	full := errors.New("relay buffer for rack3 exceeded 1 MiB")
	tests := []struct {
		name    string
		writes  []int
		wantErr error // nil: every write fits
	}{
		{"up to the limit", []int{600, 400}, nil},
		{"one byte over", []int{600, 401}, full},
		{"one write over", []int{1001}, full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPipe()
			p.SetLimit(1000, full)
			var err error
			for _, n := range tt.writes {
				if _, err = p.Write(make([]byte, n)); err != nil {
					break
				}
			}
			if err != tt.wantErr {
				t.Fatalf("write error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil {
				return
			}
			if n, err := p.Read(make([]byte, 10)); n != 0 || err != full {
				t.Errorf("read after overrun = %d, %v; want 0 and the overrun", n, err)
			}
		})
	}
}

// Credit lets a sender take what was granted and no more; it waits for a
// grant, and a close releases it with the reason.
func TestCreditBoundsWhatASenderMayTake(t *testing.T) {
	c := NewCredit(100)
	if n, err := c.Take(70); n != 70 || err != nil {
		t.Fatalf("Take(70) = %d, %v", n, err)
	}
	if n, err := c.Take(70); n != 30 || err != nil {
		t.Fatalf("Take(70) with 30 left = %d, %v; want 30", n, err)
	}
	took := make(chan int, 1)
	go func() { n, _ := c.Take(50); took <- n }()
	select {
	case n := <-took:
		t.Fatalf("Take without credit returned %d", n)
	case <-time.After(100 * time.Millisecond):
	}
	c.Grant(20)
	if n := <-took; n != 20 {
		t.Errorf("Take after Grant(20) = %d", n)
	}
	go func() { _, err := c.Take(1); took <- map[bool]int{true: 1}[err != nil] }()
	c.Close(errors.New("child gone"))
	select {
	case failed := <-took:
		if failed != 1 {
			t.Error("Take after Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release a waiting Take")
	}
}

// The receiver acknowledges in batches of at least the given size, so
// credit costs a message per batch rather than per read.
func TestAckReaderBatches(t *testing.T) {
	var acks []int
	r := AckReader(io.LimitReader(zeros{}, 1000), 300, func(n int) { acks = append(acks, n) })
	buf := make([]byte, 100)
	for {
		if _, err := r.Read(buf); err != nil {
			break
		}
	}
	if want := []int{300, 300, 300}; len(acks) != len(want) || acks[0] != 300 || acks[2] != 300 {
		t.Errorf("acks %v, want %v", acks, want)
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }
