package relay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herd-project/herd/wire"
)

// countingZeros is a child that writes n bytes as fast as it is read,
// counting what it was made to produce.
type countingZeros struct {
	left int64
	read atomic.Int64
}

func (c *countingZeros) Read(b []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), c.left))
	clear(b[:n])
	c.left -= int64(n)
	c.read.Add(int64(n))
	return n, nil
}

// dataFrom reads RelayData frames from c on one goroutine; next returns
// the next one, or nil if none comes within wait.
func dataFrom(t *testing.T, c *wire.Conn) (next func(wait time.Duration) *wire.RelayData) {
	got := make(chan *wire.RelayData, 1)
	go func() {
		defer close(got)
		for {
			m, err := c.Recv()
			if err != nil {
				return
			}
			d, ok := m.(*wire.RelayData)
			if !ok {
				t.Errorf("got %T, want RelayData", m)
				return
			}
			got <- d
		}
	}()
	return func(wait time.Duration) *wire.RelayData {
		t.Helper()
		select {
		case d, ok := <-got:
			if !ok {
				t.Fatal("stream ended")
			}
			return d
		case <-time.After(wait):
			return nil
		}
	}
}

// A child flooding its output is read only as fast as the controller
// acknowledges: the parent never has more than a window in flight, so a
// 50 MB burst costs neither the parent nor the controller 50 MB.
func TestRelayPumpWaitsForTheControllersCredit(t *testing.T) {
	const total = 50 << 20
	r, w := io.Pipe()
	defer r.Close()
	h := &Parent{c: wire.NewConn(nil, w, wire.Options{})}
	ch := newChild(1, "rack3")
	defer ch.cancel()
	child := &countingZeros{left: total}
	ended := make(chan error, 1)
	go func() { ended <- h.pump(ch, child) }()
	next := dataFrom(t, wire.NewConn(r, nil, wire.Options{}))

	// Without acknowledgements the pump stops after one window.
	var got int64
	for got < wire.RelayWindow {
		d := next(5 * time.Second)
		if d == nil {
			t.Fatalf("pump stalled after %d bytes, want a full window of %d", got, wire.RelayWindow)
		}
		got += int64(len(d.Data))
	}
	if d := next(300 * time.Millisecond); d != nil {
		t.Fatalf("pump sent %d bytes beyond the window without an acknowledgement", len(d.Data))
	}
	if n := child.read.Load(); n > wire.RelayWindow+64<<10 {
		t.Errorf("the child was read %d bytes ahead, want at most a window and one read buffer", n)
	}

	// Acknowledging as it reads, the controller gets everything, with
	// never more than a window outstanding.
	acked := int64(0)
	for got < total {
		if got-acked >= wire.RelayAckEvery {
			ch.credit.Grant(int(got - acked))
			acked = got
		}
		d := next(5 * time.Second)
		if d == nil {
			t.Fatalf("pump stalled after %d of %d bytes", got, total)
		}
		got += int64(len(d.Data))
		if got-acked > wire.RelayWindow {
			t.Fatalf("%d bytes outstanding, above the window of %d", got-acked, wire.RelayWindow)
		}
	}
	select {
	case err := <-ended:
		if !errors.Is(err, io.EOF) {
			t.Errorf("pump ended with %v, want io.EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("pump did not end after the child's EOF")
	}
}

// A controller that ignores the window fails that child, with an error
// naming it, instead of growing the parent's buffer.
func TestRelayChildFailsWhenTheControllerOverrunsItsBuffer(t *testing.T) {
	r, w := io.Pipe()
	defer r.Close()
	h := &Parent{c: wire.NewConn(nil, w, wire.Options{}), children: map[uint64]*child{}}
	ch := newChild(7, "rack3")
	h.children[7] = ch
	chunk := bytes.Repeat([]byte{'x'}, 256<<10)
	for range 4 {
		h.Handle(&wire.RelayData{ID: 7, Data: chunk}) // exactly the window: fine
	}
	if h.child(7) == nil {
		t.Fatal("a full window failed the child")
	}
	closed := make(chan *wire.RelayClose, 1)
	go func() {
		m, err := wire.Expect[wire.RelayClose](wire.NewConn(r, nil, wire.Options{}))
		if err != nil {
			t.Error(err)
		}
		closed <- m
	}()
	h.Handle(&wire.RelayData{ID: 7, Data: []byte("one more")})
	var m *wire.RelayClose
	select {
	case m = <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("no RelayClose after the controller overran the window")
	}
	if m == nil {
		return
	}
	if m.ID != 7 || !strings.Contains(m.Error, "relay buffer for rack3 exceeded 1 MiB") {
		t.Errorf("close %+v, want one naming rack3's buffer", m)
	}
	if ch.ctx.Err() == nil {
		t.Error("the child's connection was not cancelled")
	}
	if _, err := ch.in.Read(make([]byte, 10)); err == nil {
		t.Error("the child's stdin still reads after the overrun")
	}
}

// A parent sets up at most parallel children at once, so a rack of a
// hundred hosts does not trip their sshd MaxStartups: with children whose
// sshd never answers, the ninth dial waits for a slot.
func TestRelayBoundsParallelChildSetUps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // never answers: the handshake hangs
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	accepted := func() int { mu.Lock(); defer mu.Unlock(); return len(conns) }

	h := NewParent(wire.NewConn(nil, io.Discard, wire.Options{}), "")
	const children = 3 * parallel
	for i := 1; i <= children; i++ {
		h.Handle(&wire.RelayOpen{ID: uint64(i), Name: fmt.Sprintf("rack%d", i), Addr: ln.Addr().String(), User: "root", TimeoutMS: 60_000})
	}
	defer func() {
		for i := 1; i <= children; i++ {
			h.Handle(&wire.RelayClose{ID: uint64(i)})
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for accepted() < parallel && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // room for any dial beyond the bound
	if n := accepted(); n != parallel {
		t.Fatalf("%d children dialled at once, want %d", n, parallel)
	}
	// A set-up that ends (here: its server hangs up) frees its slot for
	// the next. (Which eight children got the slots is up to the scheduler,
	// so the test ends one from the server side.)
	mu.Lock()
	conns[0].Close()
	mu.Unlock()
	deadline = time.Now().Add(5 * time.Second)
	for accepted() < parallel+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := accepted(); n != parallel+1 {
		t.Errorf("%d children dialled after one hung up, want %d", n, parallel+1)
	}
}
