package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/herd-project/herd/transport"
	"github.com/herd-project/herd/wire"
)

// Controller is the controller's end of one trusted parent's children:
// it opens child connections through the parent's agent, answers the
// parent's questions about them (host key, signature) with transport's
// checks and keys, and carries the children's streams.
type Controller struct {
	parent string // the parent's inventory name, for messages
	wc     *wire.Conn
	logf   func(host, msg string)

	mu       sync.Mutex
	next     uint64
	children map[uint64]*stream
	lost     error
}

// NewController serves the relay messages of the parent agent on wc. logf
// records every signature made and every one refused (host is the child,
// or the parent for asks about no open child); the controller's log is
// where a user learns what a trusted parent asked for.
func NewController(parent string, wc *wire.Conn, logf func(host, msg string)) *Controller {
	if logf == nil {
		logf = func(string, string) {}
	}
	return &Controller{parent: parent, wc: wc, logf: logf, children: map[uint64]*stream{}}
}

// Child is one child connection to open through the parent.
type Child struct {
	Login     *transport.Login // keys, host key check and pinning; closed by the relay
	AgentDir  string
	Timeout   time.Duration // connect, handshake and agent start, on the parent
	Broker    bool          // start the become broker instead of the agent
	KeepAlive time.Duration // the parent's keepalive interval to the child; 0 = its default
}

// stream is one child's agent stream through the parent.
type stream struct {
	id     uint64
	child  Child
	out    *Pipe   // the child's stdout
	credit *Credit // what the parent can still take of the child's stdin
	mu     sync.Mutex
	signed int           // signatures asked for this connection
	spoke  chan struct{} // closed when the child's agent first speaks: no more signing
	done   chan struct{}
	err    error
	// endLogin closes the login (its ssh-agent connection) once, when
	// the child has authenticated or the stream ended.
	endLogin func()
}

func (s *stream) started() bool {
	select {
	case <-s.spoke:
		return true
	default:
		return false
	}
}

func (s *stream) finish(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return
	default:
	}
	s.err = err
	s.out.CloseWithError(err)
	if err == nil {
		err = errors.New("closed")
	}
	s.credit.Close(err)
	close(s.done)
	s.endLogin()
}

// Open asks the parent to connect to the child and start its agent (or
// broker); the session is the child's stream.
func (c *Controller) Open(ctx context.Context, child Child) (*transport.Session, error) {
	c.mu.Lock()
	if c.lost != nil {
		c.mu.Unlock()
		child.Login.Close()
		return nil, c.lost
	}
	c.next++
	st := c.newStream(c.next, child)
	c.children[st.id] = st
	c.mu.Unlock()
	l := child.Login
	var keys [][]byte
	for _, s := range l.Signers {
		keys = append(keys, s.PublicKey().Marshal())
	}
	if err := c.wc.Send(&wire.RelayOpen{
		ID: st.id, Name: l.Name, Addr: l.Addr, User: l.User, Keys: keys, Password: l.Password,
		AgentDir: child.AgentDir, TimeoutMS: child.Timeout.Milliseconds(), Broker: child.Broker,
		KeepAliveMS: child.KeepAlive.Milliseconds(), HostKeyAlgorithms: l.HostKeyAlgorithms,
	}); err != nil {
		c.remove(st.id)
		st.finish(err)
		return nil, fmt.Errorf("relay %s: %w", c.parent, err)
	}
	closeOnce := sync.OnceValue(func() error {
		if c.remove(st.id) != nil {
			c.wc.Send(&wire.RelayClose{ID: st.id})
		}
		st.finish(errors.New("closed"))
		return nil
	})
	stop := context.AfterFunc(ctx, func() { closeOnce() })
	wait := func() error {
		<-st.done
		stop()
		return st.err
	}
	// Wait for the child's first word, so that a failed connection is
	// reported as the relay's own error, not as a silent agent.
	select {
	case <-st.spoke:
	case <-st.done:
		stop()
		if st.err != nil {
			return nil, st.err
		}
	case <-ctx.Done():
		closeOnce()
		return nil, ctx.Err()
	}
	stdout := AckReader(st.out, wire.RelayAckEvery, func(n int) {
		c.wc.Send(&wire.RelayData{ID: st.id, Ack: int64(n)})
	})
	return transport.NewSession(&writer{c: c, st: st}, stdout, strings.NewReader(""), wait, closeOnce), nil
}

// newStream is a child stream whose output may hold at most the window it
// granted the parent.
func (c *Controller) newStream(id uint64, child Child) *stream {
	st := &stream{id: id, child: child, out: NewPipe(), credit: NewCredit(wire.RelayWindow),
		spoke: make(chan struct{}), done: make(chan struct{})}
	st.endLogin = sync.OnceFunc(func() {
		if child.Login != nil {
			child.Login.Close()
		}
	})
	st.out.SetLimit(wire.RelayWindow, fmt.Errorf("relay buffer for %s exceeded %d MiB: %s ignored flow control", st.name(), wire.RelayWindow>>20, c.parent))
	return st
}

func (s *stream) name() string {
	if s.child.Login == nil {
		return fmt.Sprintf("connection %d", s.id)
	}
	return s.child.Login.Name
}

func (c *Controller) remove(id uint64) *stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.children[id]
	delete(c.children, id)
	return st
}

func (c *Controller) stream(id uint64) *stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.children[id]
}

// Handle consumes relay messages from the parent; false for others.
func (c *Controller) Handle(msg wire.Message) bool {
	switch m := msg.(type) {
	case *wire.RelayAsk:
		if st := c.stream(m.ID); st != nil {
			go c.answer(st, m)
		} else {
			go c.refuseStray(m)
		}
	case *wire.RelayData:
		if st := c.stream(m.ID); st != nil {
			c.data(st, m)
		}
	case *wire.RelayClose:
		if st := c.remove(m.ID); st != nil {
			if m.Error != "" {
				st.finish(fmt.Errorf("via %s: %s", c.parent, m.Error))
			} else {
				st.finish(nil)
			}
		}
	default:
		return false
	}
	return true
}

func (c *Controller) data(st *stream, m *wire.RelayData) {
	st.credit.Grant(int(m.Ack))
	if len(m.Data) > 0 {
		st.mu.Lock()
		if !st.started() {
			close(st.spoke)
		}
		st.mu.Unlock()
		st.endLogin() // authenticated: no signature will be made any more
		if _, err := st.out.Write(m.Data); err != nil && c.remove(m.ID) != nil {
			st.finish(err)
			go c.wc.Send(&wire.RelayClose{ID: m.ID})
		}
	}
	if m.EOF {
		st.out.Close()
	}
}

// Lost says which relay of a chain went away, so hosts deep in a tree
// name the hop that failed rather than the chain of consequences.
type Lost struct {
	Via   string
	Cause error
}

func (e *Lost) Error() string {
	cause := e.Cause.Error()
	if errors.Is(e.Cause, io.EOF) {
		cause = "its connection ended (link down or host gone)"
	}
	return fmt.Sprintf("relay %s lost: %s", e.Via, cause)
}

func (e *Lost) Unwrap() error { return e.Cause }

// Fail ends every child when the parent's own connection is gone.
func (c *Controller) Fail(err error) {
	var lost *Lost
	if !errors.As(err, &lost) {
		lost = &Lost{Via: c.parent, Cause: err}
	}
	c.mu.Lock()
	c.lost = lost
	children := c.children
	c.children = map[uint64]*stream{}
	c.mu.Unlock()
	for _, st := range children {
		st.finish(lost)
	}
}

// writer is a child's stdin: RelayData frames within the credit the
// parent grants, so a child that does not read cannot make its parent
// buffer what the controller sends it.
type writer struct {
	c  *Controller
	st *stream
}

func (w *writer) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		k, err := w.st.credit.Take(len(b) - done)
		if err != nil {
			return done, err
		}
		if err := w.c.wc.Send(&wire.RelayData{ID: w.st.id, Data: b[done : done+k]}); err != nil {
			return done, err
		}
		done += k
	}
	return done, nil
}

func (w *writer) Close() error {
	return w.c.wc.Send(&wire.RelayData{ID: w.st.id, EOF: true})
}

// keyName renders a key for the log: "ssh-ed25519 SHA256:…".
func keyName(k ssh.PublicKey) string { return k.Type() + " " + ssh.FingerprintSHA256(k) }
