package wire

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
)

// A controller holds one Conn per host for the whole run. A plan above
// DefaultCompressAbove once gave each Conn its own zstd encoder (and each
// receiving Conn its own decoder), megabytes per host that stayed until the
// run ended: at 1,000 hosts, gigabytes. Compressing on many Conns must cost
// about the same memory as on one.
func TestManyConnsShareTheirCompressors(t *testing.T) {
	const conns = 200
	payload := &Error{Msg: strings.Repeat("a plan well over the compression threshold; ", 400)}
	var sinks []*bytes.Buffer
	var keep []*Conn
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < conns; i++ {
		var out bytes.Buffer
		c := NewConn(strings.NewReader(""), &out, Options{})
		if err := c.Send(payload); err != nil {
			t.Fatal(err)
		}
		back := NewConn(bytes.NewReader(out.Bytes()), io.Discard, Options{})
		m, err := back.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got := m.(*Error).Msg; got != payload.Msg {
			t.Fatalf("round trip changed the message (%d bytes back)", len(got))
		}
		out.Reset()
		sinks = append(sinks, &out)
		keep = append(keep, c, back) // alive, as a run keeps its Conns
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	perConn := grown / conns
	t.Logf("heap grew %d KiB for %d conn pairs: %d bytes each", grown>>10, conns, perConn)
	if perConn > 16<<10 {
		t.Errorf("each Conn pair that compressed keeps %d KiB; want them to share their compressors (under 16 KiB each)", perConn>>10)
	}
	runtime.KeepAlive(keep)
	runtime.KeepAlive(sinks)
}
