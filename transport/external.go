package transport

import (
	"io"
	"sync"
)

// NewSession wraps streams that are neither an SSH channel nor a local
// process — an agent reached through a relay — so that Bootstrap and the
// agent protocol run over them unchanged. wait and close have the meaning
// of Session.Wait and Session.Close.
func NewSession(stdin io.WriteCloser, stdout, stderr io.Reader, wait, close func() error) *Session {
	return &Session{Stdin: stdin, Stdout: stdout, Stderr: stderr, wait: wait, close: close}
}

// Pipe is an in-memory pipe whose writes never block: a relay demultiplexing
// many streams from one connection must not let one slow reader stall the
// others. Memory is bounded by what the peers send, which the agent
// protocol keeps small (plans and events; binaries are not relayed).
type Pipe struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte
	err  error // set by CloseWithError; reads return it once buf is empty
}

// NewPipe returns an empty open pipe.
func NewPipe() *Pipe {
	p := &Pipe{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// Write appends b; it fails only after the pipe was closed.
func (p *Pipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return 0, io.ErrClosedPipe
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
