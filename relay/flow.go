package relay

import (
	"io"
	"sync"
)

// Pipe is an in-memory pipe whose writes never block: a relay demultiplexing
// many streams from one connection must not let one slow reader stall the
// others. Memory is bounded by the sender's Credit (the receiver grants
// only what it has read) and, against a peer that ignores it, by SetLimit.
type Pipe struct {
	mu       sync.Mutex
	cond     *sync.Cond
	buf      []byte
	err      error // set by CloseWithError; reads return it once buf is empty
	limit    int   // 0 = unbounded
	overflow error
}

// NewPipe returns an empty open pipe.
func NewPipe() *Pipe {
	p := &Pipe{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// SetLimit bounds the bytes held for the reader: a write that would hold
// more fails the pipe with overflow at once (the reader gets it too, without
// the rest), so a sender that ignores flow control costs one stream, not
// the process's memory.
func (p *Pipe) SetLimit(max int, overflow error) {
	p.mu.Lock()
	p.limit, p.overflow = max, overflow
	p.mu.Unlock()
}

// Write appends b; it fails after the pipe was closed, or with the
// SetLimit error when b does not fit.
func (p *Pipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return 0, io.ErrClosedPipe
	}
	if p.limit > 0 && len(p.buf)+len(b) > p.limit {
		p.err, p.buf = p.overflow, nil
		p.cond.Broadcast()
		return 0, p.overflow
	}
	p.buf = append(p.buf, b...)
	p.cond.Broadcast()
	return len(b), nil
}

// Read blocks until there are bytes or the pipe is closed.
func (p *Pipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.buf) == 0 && p.err == nil {
		p.cond.Wait()
	}
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		if len(p.buf) == 0 {
			p.buf = nil
		}
		return n, nil
	}
	return 0, p.err
}

// CloseWithError ends the pipe: readers get the rest, then err (io.EOF if
// nil). Only the first close counts.
func (p *Pipe) CloseWithError(err error) {
	if err == nil {
		err = io.EOF
	}
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Close is CloseWithError(nil).
func (p *Pipe) Close() error { p.CloseWithError(nil); return nil }

// Credit is a sender's window on one relayed stream: it may have at most
// the granted bytes in flight, and the receiver grants more as its reader
// consumes them. A flooding child then waits on its own SSH channel
// instead of filling the parent's and the controller's memory.
type Credit struct {
	mu    sync.Mutex
	cond  *sync.Cond
	avail int
	err   error
}

// NewCredit starts with a window of n bytes.
func NewCredit(n int) *Credit {
	c := &Credit{avail: n}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Take waits until some credit is available and takes up to n bytes of it;
// it fails once the credit was closed.
func (c *Credit) Take(n int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.avail == 0 && c.err == nil {
		c.cond.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	n = min(n, c.avail)
	c.avail -= n
	return n, nil
}

// Grant returns n bytes of credit, the receiver having consumed them.
func (c *Credit) Grant(n int) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	c.avail += n
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Close wakes waiting senders with err; only the first close counts.
func (c *Credit) Close(err error) {
	if err == nil {
		err = io.ErrClosedPipe
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.cond.Broadcast()
	c.mu.Unlock()
}

// AckReader reads r and reports consumed bytes to ack in batches of at
// least every bytes, so the receiver of a relayed stream returns credit
// without a message per read. every must be well below the sender's window
// (a quarter, say): bytes read but not yet acknowledged still count
// against it.
func AckReader(r io.Reader, every int, ack func(n int)) io.Reader {
	return &ackReader{r: r, every: every, ack: ack}
}

type ackReader struct {
	r       io.Reader
	every   int
	pending int
	ack     func(int)
}

func (a *ackReader) Read(b []byte) (int, error) {
	n, err := a.r.Read(b)
	a.pending += n
	if a.pending >= a.every {
		a.ack(a.pending)
		a.pending = 0
	}
	return n, err
}
