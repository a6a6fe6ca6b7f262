package transport

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
