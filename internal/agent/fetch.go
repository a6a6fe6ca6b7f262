package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herd-project/herd/internal/relay"
	"github.com/herd-project/herd/internal/resource"
	"github.com/herd-project/herd/internal/wire"
)

// inbox reads the controller's messages on its own goroutine, so that file
// chunks reach the resource waiting for them while the engine runs a plan;
// every other message is handed to Serve's loop in order.
//
// Back-pressure: a chunk is handed to its fetch through a small channel;
// when the target's disk is slower than the network, the reader blocks, stops
// reading stdin, the SSH channel window fills and the controller's writes
// block. Memory stays bounded on both sides without a window of our own.
type inbox struct {
	c    *wire.Conn
	msgs chan wire.Message
	err  error         // set before msgs is closed
	gone chan struct{} // closed when the controller's stream ends
	// relay takes the messages of child connections (relay.go), which
	// must flow while a plan runs too.
	relay *relay.Parent
	f     *fetcher
	// heard is when the last message came (unix nanoseconds); silent,
	// closed by the watch's watchdog (watch.go), ends recv as if the
	// stream had ended.
	heard      atomic.Int64
	silent     chan struct{}
	silentOnce sync.Once
}

func newInbox(c *wire.Conn, relay *relay.Parent) *inbox {
	in := &inbox{c: c, msgs: make(chan wire.Message, 16), gone: make(chan struct{}), f: &fetcher{c: c, waiting: map[uint64]*pending{}}, relay: relay, silent: make(chan struct{})}
	in.heard.Store(time.Now().UnixNano())
	go in.read()
	return in
}

func (in *inbox) read() {
	defer close(in.msgs)
	for {
		msg, err := in.c.Recv()
		in.heard.Store(time.Now().UnixNano())
		if err != nil {
			in.err = err
			in.end()
			in.f.fail(err)
			if in.relay != nil {
				in.relay.CloseInputs()
			}
			return
		}
		if ch, ok := msg.(*wire.FileChunk); ok {
			in.f.deliver(ch)
			continue
		}
		if in.relay != nil && in.relay.Handle(msg) {
			continue
		}
		in.msgs <- msg
	}
}

// recv returns the next message that is not a file chunk.
func (in *inbox) recv() (wire.Message, error) {
	select {
	case msg, ok := <-in.msgs:
		if !ok {
			return nil, in.err
		}
		return msg, nil
	case <-in.silent:
		return nil, errControllerSilent
	}
}

var errControllerSilent = errors.New("the controller has been silent too long; taking it for gone")

// end closes gone once, whoever sees the controller go first.
func (in *inbox) end() {
	in.silentOnce.Do(func() { close(in.gone) })
}

// giveUp is the watchdog's verdict: the controller is gone though its
// stream has not ended.
func (in *inbox) giveUp() {
	in.end()
	select {
	case <-in.silent:
	default:
		close(in.silent)
	}
}

// fetcher implements resource.Env.Fetch over the wire connection.
type fetcher struct {
	c  *wire.Conn
	mu sync.Mutex
	id uint64
	// waiting holds the requests in flight by ID; lost is set when the
	// connection ended, failing every later fetch at once.
	waiting map[uint64]*pending
	lost    error
}

type pending struct {
	chunks chan *wire.FileChunk
	done   chan struct{} // closed when the fetch gave up (cancelled)
}

// Fetch asks the controller for content h from offset and copies it to w.
// The caller checks the hash; Fetch checks that chunks arrive in order.
func (f *fetcher) Fetch(ctx context.Context, h string, offset int64, w io.Writer) error {
	return f.fetch(ctx, "", h, offset, w)
}

// forRole is Fetch for one role's plan in watch mode, where the controller
// serves each role's files from that role's plan.
func (f *fetcher) forRole(role string) func(context.Context, string, int64, io.Writer) error {
	return func(ctx context.Context, h string, offset int64, w io.Writer) error {
		return f.fetch(ctx, role, h, offset, w)
	}
}

func (f *fetcher) fetch(ctx context.Context, role, h string, offset int64, w io.Writer) error {
	p := &pending{chunks: make(chan *wire.FileChunk, 4), done: make(chan struct{})}
	f.mu.Lock()
	if f.lost != nil {
		f.mu.Unlock()
		return f.lost
	}
	f.id++
	id := f.id
	f.waiting[id] = p
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.waiting, id)
		f.mu.Unlock()
		close(p.done)
	}()
	if err := f.c.Send(&wire.FileRequest{ID: id, Hash: h, Offset: offset, Role: role}); err != nil {
		return fmt.Errorf("request content %.12s: %w", h, err)
	}
	at := offset
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ch, ok := <-p.chunks:
			if !ok {
				f.mu.Lock()
				err := f.lost
				f.mu.Unlock()
				return fmt.Errorf("connection to the controller lost while fetching %.12s at byte %d: %w", h, at, err)
			}
			if ch.Error != "" {
				return resource.RefusedError(ch.Error)
			}
			if ch.Offset != at {
				return fmt.Errorf("controller sent bytes %d+ of %.12s, expected %d", ch.Offset, h, at)
			}
			if _, err := w.Write(ch.Data); err != nil {
				return err
			}
			at += int64(len(ch.Data))
			if ch.EOF {
				return nil
			}
		}
	}
}

// deliver routes a chunk to its fetch; chunks for a fetch that gave up are
// dropped.
func (f *fetcher) deliver(ch *wire.FileChunk) {
	f.mu.Lock()
	p := f.waiting[ch.ID]
	f.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case p.chunks <- ch:
	case <-p.done:
	}
}

// fail ends every fetch in flight and every later one: the connection is gone.
func (f *fetcher) fail(err error) {
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lost = err
	for id, p := range f.waiting {
		close(p.chunks)
		delete(f.waiting, id)
	}
}
