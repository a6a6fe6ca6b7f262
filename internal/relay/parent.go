package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/herd-project/herd/internal/bootstrap"
	"github.com/herd-project/herd/internal/transport"
	"github.com/herd-project/herd/internal/wire"
)

// parallel bounds the child connections a parent sets up at once, so
// a rack of a hundred hosts does not trip their sshd MaxStartups or the
// parent's CPU.
const parallel = 8

// keepAlive is the default interval of keepalives to children (the
// controller sends its own in RelayOpen.KeepAliveMS): after three
// unanswered ones the child connection is closed, so a child whose link
// died fails its role instead of hanging it (the controller does the same
// for its own links).
const keepAlive = 5 * time.Second

// Parent is the parent's end of a trusted relay (herd_via_mode =
// "trusted"): on the controller's RelayOpen it dials a child over SSH,
// starts the child's agent from this agent's own binary (so the binary
// crosses the controller's link once per parent, not once per child), and
// carries the child's stream in RelayData frames. It holds no private key:
// the controller checks the child's host key and signs its login
// (RelayAsk), like ssh-agent forwarding restricted to the user and keys the
// controller named for that child. The parent sees the child's session in
// clear text: that is why this mode is an opt-in.
type Parent struct {
	c   *wire.Conn
	sem chan struct{}
	// self is this agent's own executable, read when a child first needs
	// a copy and checked against the hash it was started as.
	self *bootstrap.Binary

	mu       sync.Mutex
	children map[uint64]*child
}

type child struct {
	id     uint64
	in     *Pipe   // the controller's bytes for the child's stdin
	credit *Credit // what the controller can still take of the child's stdout
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	seq  uint64
	asks map[uint64]chan *wire.RelayAnswer
}

// NewParent serves relay requests arriving on c; hash is the agent
// binary's own (children run the same one).
func NewParent(c *wire.Conn, hash string) *Parent {
	return &Parent{c: c, self: bootstrap.Running(hash), sem: make(chan struct{}, parallel), children: map[uint64]*child{}}
}

// Handle consumes the relay messages and reports false for any other.
func (h *Parent) Handle(msg wire.Message) bool {
	switch m := msg.(type) {
	case *wire.RelayOpen:
		ch := newChild(m.ID, m.Name)
		h.mu.Lock()
		_, dup := h.children[m.ID]
		if !dup {
			h.children[m.ID] = ch
		}
		h.mu.Unlock()
		if dup {
			ch.cancel()
			h.c.Send(&wire.RelayClose{ID: m.ID, Error: fmt.Sprintf("relay: connection %d is already open", m.ID)})
			return true
		}
		go h.open(ch, m)
	case *wire.RelayAnswer:
		if ch := h.child(m.ID); ch != nil {
			ch.mu.Lock()
			wait := ch.asks[m.Seq]
			delete(ch.asks, m.Seq)
			ch.mu.Unlock()
			if wait != nil {
				wait <- m
			}
		}
	case *wire.RelayData:
		if ch := h.child(m.ID); ch != nil {
			ch.credit.Grant(int(m.Ack))
			if len(m.Data) > 0 {
				if _, err := ch.in.Write(m.Data); err != nil && h.remove(m.ID) != nil {
					ch.cancel()
					go h.c.Send(&wire.RelayClose{ID: m.ID, Error: err.Error()})
				}
			}
			if m.EOF {
				ch.in.Close()
			}
		}
	case *wire.RelayClose:
		if ch := h.remove(m.ID); ch != nil {
			ch.cancel()
			ch.in.CloseWithError(errors.New("closed by the controller"))
		}
	default:
		return false
	}
	return true
}

// newChild holds at most a window of the controller's bytes for the
// child's stdin and may send a window of its stdout before an Ack.
func newChild(id uint64, name string) *child {
	ctx, cancel := context.WithCancel(context.Background())
	ch := &child{id: id, in: NewPipe(), credit: NewCredit(wire.RelayWindow), ctx: ctx, cancel: cancel, asks: map[uint64]chan *wire.RelayAnswer{}}
	ch.in.SetLimit(wire.RelayWindow, fmt.Errorf("relay buffer for %s exceeded %d MiB: the controller ignored flow control", name, wire.RelayWindow>>20))
	context.AfterFunc(ctx, func() { ch.credit.Close(errors.New("relay connection closed")) })
	return ch
}

func (h *Parent) child(id uint64) *child {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.children[id]
}

func (h *Parent) remove(id uint64) *child {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := h.children[id]
	delete(h.children, id)
	return ch
}

// open connects to the child and then pumps its stream until either side
// ends; every ending is reported with one RelayClose.
func (h *Parent) open(ch *child, m *wire.RelayOpen) {
	defer ch.cancel()
	where := fmt.Sprintf("%s (%s as %s)", m.Name, m.Addr, m.User)
	sess, client, err := h.connect(ch, m)
	if err != nil {
		h.remove(ch.id)
		h.c.Send(&wire.RelayClose{ID: ch.id, Error: fmt.Sprintf("relay to %s: %v", where, err)})
		return
	}
	defer client.Close()
	context.AfterFunc(ch.ctx, func() { client.Close() })
	interval := keepAlive
	if m.KeepAliveMS > 0 {
		interval = time.Duration(m.KeepAliveMS) * time.Millisecond
	}
	var silent atomic.Bool
	go transport.KeepAlive(ch.ctx.Done(), client, interval, func(time.Duration) { silent.Store(true) })
	stderr := transport.NewTail(2048)
	go stderr.Drain(sess.Stderr)
	go func() {
		io.Copy(sess.Stdin, AckReader(ch.in, wire.RelayAckEvery, func(n int) {
			h.c.Send(&wire.RelayData{ID: ch.id, Ack: int64(n)})
		}))
		sess.Stdin.Close()
	}()
	readErr := h.pump(ch, sess.Stdout)
	msg := ""
	if !errors.Is(readErr, io.EOF) || ch.ctx.Err() != nil {
		msg = fmt.Sprintf("relay to %s: %v", where, readErr)
	}
	if waitErr := sess.Wait(); waitErr != nil && ch.ctx.Err() == nil {
		msg = fmt.Sprintf("relay to %s: agent ended: %v", where, waitErr)
	}
	if silent.Load() && ch.ctx.Err() == nil {
		msg = fmt.Sprintf("relay to %s: no answer to keepalives for %s (link down or host gone)", where, 3*interval)
	}
	if s := stderr.String(); msg != "" && s != "" {
		msg += " (stderr: " + s + ")"
	}
	if h.remove(ch.id) != nil {
		h.c.Send(&wire.RelayClose{ID: ch.id, Error: msg})
	}
}

// pump carries the child's stdout to the controller within the credit it
// grants: when the controller (or a relay above) reads slowly, pump stops
// reading and the child's SSH channel window stops the child, so nothing
// piles up here. It returns the error that ended the stream (io.EOF when
// the child closed it).
func (h *Parent) pump(ch *child, stdout io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := stdout.Read(buf)
		for b := buf[:n]; len(b) > 0; {
			k, cerr := ch.credit.Take(len(b))
			if cerr != nil {
				return cerr
			}
			if serr := h.c.Send(&wire.RelayData{ID: ch.id, Data: b[:k]}); serr != nil {
				return serr
			}
			b = b[k:]
		}
		if err != nil {
			return err
		}
	}
}

// connect dials the child, authenticates with the controller's help and
// starts its agent from this binary, within the request's timeout and one
// of the parent's set-up slots.
func (h *Parent) connect(ch *child, m *wire.RelayOpen) (*transport.Session, *ssh.Client, error) {
	timeout := time.Duration(m.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ch.ctx, timeout)
	defer cancel()
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("waiting for a set-up slot: %w", ctx.Err())
	}
	defer func() { <-h.sem }()

	hash, err := h.self.Hash()
	if err != nil {
		return nil, nil, err
	}
	var signers []ssh.Signer
	for _, k := range m.Keys {
		pub, err := ssh.ParsePublicKey(k)
		if err != nil {
			return nil, nil, fmt.Errorf("bad public key from the controller: %w", err)
		}
		signers = append(signers, &remoteSigner{h: h, ch: ch, pub: pub})
	}
	auth := []ssh.AuthMethod{ssh.PublicKeys(signers...)}
	if m.Password != "" {
		auth = append(auth, ssh.Password(m.Password))
	}
	cfg := &ssh.ClientConfig{
		User:            m.User,
		Auth:            auth,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error { return h.checkHostKey(ch, key) },
		// The controller's known_hosts decides which key types to accept.
		HostKeyAlgorithms: m.HostKeyAlgorithms,
		ClientVersion:     "SSH-2.0-herd-relay",
	}
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	conn, chans, reqs, err := ssh.NewClientConn(raw, m.Addr, cfg)
	if err != nil {
		stop()
		raw.Close()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("SSH handshake did not finish within %s", timeout)
		}
		return nil, nil, err
	}
	client := ssh.NewClient(conn, chans, reqs)
	start := func(cmd string) (*transport.Session, error) {
		if m.Broker {
			var err error
			if cmd, err = bootstrap.BrokerCommand(cmd); err != nil {
				return nil, err
			}
		}
		return startSSH(client, cmd)
	}
	sess, _, err := bootstrap.Start(ctx, start, hash, h.self.Payload, m.AgentDir)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return sess, client, nil
}

func (h *Parent) ask(ch *child, m *wire.RelayAsk) (*wire.RelayAnswer, error) {
	wait := make(chan *wire.RelayAnswer, 1)
	ch.mu.Lock()
	ch.seq++
	m.ID, m.Seq = ch.id, ch.seq
	ch.asks[m.Seq] = wait
	ch.mu.Unlock()
	if err := h.c.Send(m); err != nil {
		return nil, err
	}
	select {
	case a := <-wait:
		if a.Error != "" {
			return nil, errors.New(a.Error)
		}
		return a, nil
	case <-ch.ctx.Done():
		return nil, ch.ctx.Err()
	}
}

func (h *Parent) checkHostKey(ch *child, key ssh.PublicKey) error {
	_, err := h.ask(ch, &wire.RelayAsk{What: "hostkey", Key: key.Marshal()})
	return err
}

// remoteSigner signs with a key only the controller holds.
type remoteSigner struct {
	h   *Parent
	ch  *child
	pub ssh.PublicKey
}

func (s *remoteSigner) PublicKey() ssh.PublicKey { return s.pub }

func (s *remoteSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return s.SignWithAlgorithm(rand, data, "")
}

func (s *remoteSigner) SignWithAlgorithm(_ io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	a, err := s.h.ask(s.ch, &wire.RelayAsk{What: "sign", Key: s.pub.Marshal(), Data: data, Algorithm: algorithm})
	if err != nil {
		return nil, err
	}
	sig := new(ssh.Signature)
	if err := ssh.Unmarshal(a.Signature, sig); err != nil {
		return nil, fmt.Errorf("bad signature from the controller: %w", err)
	}
	return sig, nil
}

// startSSH runs cmd on the child in the shape bootstrap.Start wants.
func startSSH(c *ssh.Client, cmd string) (*transport.Session, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	stdin, err1 := s.StdinPipe()
	stdout, err2 := s.StdoutPipe()
	stderr, err3 := s.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Start(cmd); err != nil {
		s.Close()
		return nil, err
	}
	wait := func() error {
		err := s.Wait()
		var exit *ssh.ExitError
		if errors.As(err, &exit) {
			return &transport.ExitError{Code: exit.ExitStatus(), Signal: exit.Signal()}
		}
		return err
	}
	return transport.NewSession(stdin, stdout, stderr, wait, s.Close), nil
}

// CloseInputs ends the input of every child relayed through this parent,
// when the parent's own controller stream ended: each child then stops as
// its controller's stream ending would stop it directly (package agent).
func (h *Parent) CloseInputs() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ch := range h.children {
		ch.in.Close()
	}
}
