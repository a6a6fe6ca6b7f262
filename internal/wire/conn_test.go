package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/plan"
	"github.com/klauspost/compress/zstd"
)

// everyMessage holds one filled-in example of each message type, including a
// plan large enough to be compressed.
func everyMessage() []Message {
	return []Message{
		&Hello{Version: Version, AgentHash: "abc123", Pid: 42, Facts: facts.Facts{
			Hostname: "web1", OSFamily: "debian", Distro: "debian", Version: "12", Arch: "amd64",
			User: "root", UID: 0, Home: "/root", Env: map[string]string{"PATH": "/usr/bin"}, Kernel: "6.1", CPUs: 2,
		}},
		&RunPlan{Plan: bigPlan(200), Check: true, Parallel: 4},
		&RunPlan{Plan: bigPlan(1)},
		&Event{event.Event{
			Time: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC), Type: event.Changed, Host: "web1", Role: "web",
			Resource: "file:/etc/motd", Pos: "site.star:3:5", Msg: "content", Diff: "-a\n+b\n",
			Stdout: "out", Stderr: "err", Duration: time.Second, Check: true, Counts: &event.Counts{OK: 1},
		}},
		&Done{Counts: event.Counts{OK: 3, Changed: 2, Failed: 1, Skipped: 4}, Failed: true, Error: "boom"},
		&Error{Msg: "plan rejected"},
		&Shutdown{},
		&FileRequest{Hash: strings.Repeat("ab", 32), Offset: 1 << 40},
		&FileChunk{Hash: strings.Repeat("cd", 32), Offset: 7, Data: []byte{0, 1, 2, 255}, EOF: true},
		&FileChunk{Hash: "big", Data: bytes.Repeat([]byte("herd"), 10000)},
	}
}

func bigPlan(n int) *plan.Plan {
	p := &plan.Plan{Version: plan.Version, Role: "web", Host: "web1"}
	for i := range n {
		name := fmt.Sprintf("/etc/app/conf.d/%04d.conf", i)
		r := plan.Resource{
			ID: plan.ResourceID("file", name), Kind: "file", Name: name, Pos: fmt.Sprintf("site.star:%d:5", i+1),
			Params: plan.Params{"content": fmt.Sprintf("setting_%d = %d\n", i, i*7), "mode": "0644", "owner": "root"},
			Meta:   plan.Meta{Retry: 1, Timeout: time.Minute},
		}
		if i > 0 {
			r.After = []string{p.Resources[i-1].ID}
		}
		p.Resources = append(p.Resources, r)
	}
	p.AddBlob([]byte("a file carried by hash\x00\xff"))
	return p
}

// roundTrip sends every message from one goroutine and checks the receiver
// decodes each one equal to what was sent.
func roundTrip(t *testing.T, r io.Reader, w io.WriteCloser) {
	t.Helper()
	sender := NewConn(nil, w, Options{})
	receiver := NewConn(r, nil, Options{})
	msgs := everyMessage()
	errc := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := sender.Send(m); err != nil {
				errc <- err
				return
			}
		}
		errc <- w.Close()
	}()
	for _, want := range msgs {
		got, err := receiver.Recv()
		if err != nil {
			t.Fatalf("Recv %s: %v", want.Type(), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trip changed the message:\n got %#v\nwant %#v", want.Type(), got, want)
		}
	}
	if _, err := receiver.Recv(); err != io.EOF {
		t.Errorf("Recv after the last frame: got %v, want io.EOF", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestRoundTripIOPipe(t *testing.T) {
	r, w := io.Pipe()
	roundTrip(t, r, w)
}

func TestRoundTripOSPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	roundTrip(t, r, w)
}

func TestLargeMessagesAreCompressed(t *testing.T) {
	tests := []struct {
		msg            Message
		wantCompressed bool
	}{
		{&Error{Msg: "short"}, false},
		{&RunPlan{Plan: bigPlan(100)}, true},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := NewConn(nil, &buf, Options{}).Send(tt.msg); err != nil {
			t.Fatal(err)
		}
		if got := buf.Bytes()[4]&compressedFlag != 0; got != tt.wantCompressed {
			t.Errorf("%s: compressed = %v, want %v", tt.msg.Type(), got, tt.wantCompressed)
		}
		if tt.wantCompressed && buf.Len() > DefaultCompressAbove*4 {
			t.Errorf("%s: compressed frame still %d bytes", tt.msg.Type(), buf.Len())
		}
	}
}

// frame builds raw bytes of one frame, bypassing Send's checks.
func frame(typ byte, payload []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(payload))
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	b[4] = typ
	return append(b, payload...)
}

func zstdBytes(t testing.TB, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

func TestRecvRejectsHostileInput(t *testing.T) {
	bomb := zstdBytes(t, append([]byte(`{"msg":"`), append(bytes.Repeat([]byte("a"), 4<<20), '"', '}')...))
	tests := []struct {
		name    string
		input   []byte
		max     int
		wantErr string
		wantIs  error
	}{
		{"oversized length", []byte{0xff, 0xff, 0xff, 0xff, byte(TypeEvent)}, 0, "exceeds the limit of 67108864 bytes", nil},
		{"over a small limit", frame(byte(TypeError), []byte(`{"msg":"0123456789"}`)), 10, "error frame of 20 bytes exceeds the limit of 10 bytes", nil},
		{"truncated header", []byte{0, 0, 0}, 0, "reading frame header", io.ErrUnexpectedEOF},
		{"truncated payload", frame(byte(TypeError), []byte(`{"msg":"x"}`))[:9], 0, "reading error frame of 11 bytes", io.ErrUnexpectedEOF},
		{"length beyond the data", []byte{0x03, 0xff, 0xff, 0xff, byte(TypeEvent), '{'}, 0, "reading event frame of 67108863 bytes (got 1)", io.ErrUnexpectedEOF},
		{"unknown type", frame(99, []byte(`{}`)), 0, "unknown message type 99", nil},
		{"type zero", frame(0, []byte(`{}`)), 0, "unknown message type 0", nil},
		{"invalid json", frame(byte(TypeDone), []byte(`{"failed":`)), 0, "decoding done message", nil},
		{"wrong json type", frame(byte(TypeHello), []byte(`{"version":"one"}`)), 0, "decoding hello message", nil},
		{"trailing garbage", frame(byte(TypeShutdown), []byte(`{} {}`)), 0, "decoding shutdown message", nil},
		{"garbage compressed", frame(byte(TypeRunPlan)|compressedFlag, []byte("not zstd at all")), 0, "decompressing run_plan frame", nil},
		{"decompression bomb", frame(byte(TypeError)|compressedFlag, bomb), 1 << 20, "decompressing error frame", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewConn(bytes.NewReader(tt.input), nil, Options{MaxFrame: tt.max})
			msg, err := c.Recv()
			if err == nil {
				t.Fatalf("Recv accepted %q as %#v", tt.input, msg)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", err, tt.wantIs)
			}
		})
	}
}

// TestLyingLengthDoesNotAllocateIt checks that memory follows the bytes that
// actually arrive, not the length a peer claims.
func TestLyingLengthDoesNotAllocateIt(t *testing.T) {
	input := []byte{0x03, 0xff, 0xff, 0xff, byte(TypeEvent), '{'}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, err := NewConn(bytes.NewReader(input), nil, Options{}).Recv(); err == nil {
			t.Fatal("accepted a truncated frame")
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
		t.Errorf("10 frames claiming 64 MiB each allocated %d MiB", got>>20)
	}
}

func TestSendRefusesFramesThePeerWouldReject(t *testing.T) {
	var buf bytes.Buffer
	c := NewConn(nil, &buf, Options{MaxFrame: 1000, CompressAbove: -1})
	err := c.Send(&Error{Msg: strings.Repeat("x", 2000)})
	if err == nil || !strings.Contains(err.Error(), "exceeds the frame limit of 1000 bytes") {
		t.Fatalf("Send of an oversized message: got %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("a refused message wrote %d bytes", buf.Len())
	}
	// Compressible but larger than the limit once inflated: still refused,
	// because the receiver bounds the decoded size too.
	c = NewConn(nil, &buf, Options{MaxFrame: 1000})
	if err := c.Send(&Error{Msg: strings.Repeat("x", 5000)}); err == nil {
		t.Fatal("Send accepted a message whose decoded size exceeds the limit")
	}
	if err := c.Send(nil); err == nil {
		t.Error("Send(nil) succeeded")
	}
}

func TestHandshake(t *testing.T) {
	tests := []struct {
		name         string
		ours, theirs int
		wantErr      string
	}{
		{"same version", Version, Version, ""},
		{"peer speaks another version", Version, Version + 99, fmt.Sprintf("this side speaks version %d, the peer speaks version %d", Version, Version+99)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ar, bw := io.Pipe()
			br, aw := io.Pipe()
			a := NewConn(ar, aw, Options{})
			b := NewConn(br, bw, Options{})
			type result struct {
				h   *Hello
				err error
			}
			bres := make(chan result, 1)
			go func() {
				h, err := b.Handshake(Hello{Version: tt.theirs, AgentHash: "deadbeef", Pid: 7})
				bres <- result{h, err}
			}()
			got, err := a.Handshake(Hello{Version: tt.ours})
			br2 := <-bres
			if tt.wantErr == "" {
				if err != nil || br2.err != nil {
					t.Fatalf("handshake failed: %v / %v", err, br2.err)
				}
				if got.AgentHash != "deadbeef" || got.Pid != 7 {
					t.Errorf("controller saw hello %+v", got)
				}
				return
			}
			var ve *VersionError
			if !errors.As(err, &ve) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("controller error %v, want a version error containing %q", err, tt.wantErr)
			}
			if br2.err == nil {
				t.Error("agent accepted a mismatched version")
			}
		})
	}
}

func TestExpect(t *testing.T) {
	var buf bytes.Buffer
	c := NewConn(&buf, &buf, Options{})
	for _, m := range []Message{&Done{Failed: true}, &Error{Msg: "disk full"}, &Shutdown{}} {
		if err := c.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	d, err := Expect[Done](c)
	if err != nil || !d.Failed {
		t.Fatalf("Expect[Done] = %+v, %v", d, err)
	}
	_, err = Expect[Done](c)
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Msg != "disk full" {
		t.Errorf("Expect after a peer Error: got %v, want PeerError(disk full)", err)
	}
	_, err = Expect[Done](c)
	if err == nil || !strings.Contains(err.Error(), "expected done message, got shutdown") {
		t.Errorf("Expect of the wrong type: got %v", err)
	}
}

// TestConcurrentSenders checks that frames from many goroutines never
// interleave: every message arrives whole and exactly once.
func TestConcurrentSenders(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sender := NewConn(nil, w, Options{})
	const goroutines, each = 16, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Vary sizes across the compression threshold and the pipe buffer.
				msg := &Event{event.Event{Type: event.Log, Host: fmt.Sprintf("g%d", g), Msg: fmt.Sprint(i),
					Stdout: strings.Repeat("x", (g*each+i)%3*6000)}}
				if err := sender.Send(msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); w.Close() }()
	seen := map[string]bool{}
	receiver := NewConn(r, nil, Options{})
	for {
		msg, err := receiver.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		e := msg.(*Event)
		key := e.Host + "/" + e.Msg
		if seen[key] {
			t.Errorf("duplicate %s", key)
		}
		seen[key] = true
	}
	if len(seen) != goroutines*each {
		t.Errorf("received %d messages, want %d", len(seen), goroutines*each)
	}
}

func BenchmarkSendPlan1000(b *testing.B) {
	msg := &RunPlan{Plan: bigPlan(1000)}
	var buf bytes.Buffer
	c := NewConn(nil, &buf, Options{})
	if err := c.Send(msg); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf.Reset()
		if err := c.Send(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecvPlan1000(b *testing.B) {
	var buf bytes.Buffer
	if err := NewConn(nil, &buf, Options{}).Send(&RunPlan{Plan: bigPlan(1000)}); err != nil {
		b.Fatal(err)
	}
	raw := buf.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewConn(bytes.NewReader(raw), nil, Options{}).Recv(); err != nil {
			b.Fatal(err)
		}
	}
}
