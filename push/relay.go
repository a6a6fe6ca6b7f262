package push

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	sshagent "golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/herd-project/herd/inventory"
	"github.com/herd-project/herd/policy"
	"github.com/herd-project/herd/transport"
	"github.com/herd-project/herd/wire"
)

// Connection trees: a host whose herd_via names a parent is reached through
// the parent's agent (relay), unless herd_via_mode = "jump" asks for a plain
// ProxyJump through the parent's sshd (for bastions where nothing may be
// executed). Through a relay the agent binary crosses the controller's link
// once per parent: the parent installs children from its own cache.

// relayParentOf returns the host h is relayed through, if any.
func (r *runner) relayParentOf(h *inventory.Host) (*inventory.Host, bool, error) {
	if h.Conn.Via == "" {
		return nil, false, nil
	}
	if mode, _ := h.Vars["herd_via_mode"].(string); mode == "jump" {
		return nil, false, nil
	}
	parent, ok := r.lookupHost(h.Conn.Via)
	if !ok {
		return nil, false, fmt.Errorf("%s: herd_via names %q, which is not in the inventory", h.Name, h.Conn.Via)
	}
	return parent, true, nil
}

// relayStarter returns how to start h's agent (or become broker) through
// its parent's agent, starting the parent (and its own parents) first. What
// the controller keeps for the child connection (keys, host key check) is
// prepared here, once.
func (r *runner) relayStarter(ctx context.Context, role *policy.Role, h, parentHost *inventory.Host, broker bool) (func(string) (*transport.Session, error), error) {
	parent, err := r.agent(ctx, role, parentHost)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot reach its relay %s: %w", h.Name, parentHost.Name, err)
	}
	t, err := r.target(role, h, 0)
	if err != nil {
		return nil, err
	}
	// The parent dials, but the controller's ssh_config decides where and
	// as whom, as it would for a direct connection.
	explicitKeys := len(t.KeyFiles)
	t, err = transport.Resolve(t, r.o.Transport.SSHConfigFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	addr := net.JoinHostPort(t.Address, strconv.Itoa(t.Port))
	signers, err := r.relaySigners(t, explicitKeys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	check, err := hostKeyCheck(t, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	spec := relaySpec{
		name: h.Name, addr: addr, user: t.User, password: t.Password, agentDir: h.Conn.AgentDir,
		signers: signers, hostKey: check, timeout: max(30*time.Second, 3*r.o.Transport.ConnectTimeout),
		broker: broker, keepAlive: r.o.Transport.KeepAlive,
	}
	return func(string) (*transport.Session, error) { return parent.relay.open(ctx, spec) }, nil
}

// relaySigners are the controller's keys for t. They never leave this
// process: the relay sends what to sign and gets a signature back. The
// first explicit key files are the inventory's and must exist; the rest
// come from ssh_config, whose missing files ssh(1) ignores too.
func (r *runner) relaySigners(t transport.Target, explicit int) ([]ssh.Signer, error) {
	var files []string
	for i, f := range t.KeyFiles {
		if i < explicit || fileExists(f) {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		home, _ := os.UserHomeDir()
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			if p := filepath.Join(home, ".ssh", n); fileExists(p) {
				files = append(files, p)
			}
		}
	}
	var signers []ssh.Signer
	var skipped []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", f, err)
		}
		s, err := ssh.ParsePrivateKey(b)
		if err != nil {
			skipped = append(skipped, f) // passphrase-protected: use ssh-agent
			continue
		}
		signers = append(signers, s)
	}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" && !r.o.Transport.NoAgent {
		if c, err := net.Dial("unix", sock); err == nil {
			if ss, err := sshagent.NewClient(c).Signers(); err == nil {
				signers = append(signers, ss...)
			}
		}
	}
	if len(signers) == 0 {
		msg := "no usable SSH key for a relayed connection (relays need a key file or ssh-agent"
		if len(skipped) > 0 {
			msg += "; " + strings.Join(skipped, ", ") + " need a passphrase: add them to ssh-agent"
		}
		return nil, errors.New(msg + ")")
	}
	return signers, nil
}

// hostKeyCheck checks a child's key against the controller's known_hosts,
// as a direct connection would.
func hostKeyCheck(t transport.Target, addr string) (func(ssh.PublicKey) error, error) {
	if !t.CheckHostKeys {
		return func(ssh.PublicKey) error { return nil }, nil
	}
	files := t.KnownHosts
	if len(files) == 0 {
		home, _ := os.UserHomeDir()
		files = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	cb, err := knownhosts.New(files...)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	remote, _ := net.ResolveTCPAddr("tcp", addr)
	return func(key ssh.PublicKey) error {
		err := cb(addr, remote, key)
		var ke *knownhosts.KeyError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ke) && len(ke.Want) > 0:
			return fmt.Errorf("%w: %s presented %s, known_hosts (%s) has another key for it", transport.ErrHostKeyChanged, addr, ssh.FingerprintSHA256(key), strings.Join(files, ", "))
		case errors.As(err, &ke):
			return fmt.Errorf("%w: %s (%s) is not in %s", transport.ErrUnknownHostKey, addr, ssh.FingerprintSHA256(key), strings.Join(files, ", "))
		}
		return err
	}, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// relaySpec is one child connection as the controller knows it.
type relaySpec struct {
	name, addr, user, password, agentDir string
	signers                              []ssh.Signer
	hostKey                              func(ssh.PublicKey) error
	timeout                              time.Duration
	broker                               bool
	keepAlive                            time.Duration // the parent's keepalive interval to the child; 0 = its default
}

// relayHub is the controller's side of one parent agent's relayed children.
type relayHub struct {
	ac *agentConn

	mu       sync.Mutex
	next     uint64
	children map[uint64]*relayStream
	lost     error
}

// relayStream is one child's agent stream through the parent.
type relayStream struct {
	id      uint64
	spec    relaySpec
	out     *transport.Pipe   // the child's stdout
	credit  *transport.Credit // what the parent can still take of the child's stdin
	mu      sync.Mutex
	signed  int           // signatures made for this connection
	started bool          // the child's agent has spoken: no more signing
	spoke   chan struct{} // closed when started is set
	done    chan struct{}
	err     error
}

// maxSignatures bounds what a parent can have signed for one child
// connection: one per key tried, with room for a retry.
const maxSignatures = 8

func (s *relayStream) finish(err error) {
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
}

func (h *relayHub) open(ctx context.Context, spec relaySpec) (*transport.Session, error) {
	var keys [][]byte
	for _, s := range spec.signers {
		keys = append(keys, s.PublicKey().Marshal())
	}
	h.mu.Lock()
	if h.lost != nil {
		h.mu.Unlock()
		return nil, h.lost
	}
	h.next++
	st := h.newStream(h.next, spec)
	h.children[st.id] = st
	h.mu.Unlock()
	if err := h.ac.wc.Send(&wire.RelayOpen{
		ID: st.id, Name: spec.name, Addr: spec.addr, User: spec.user, Keys: keys, Password: spec.password,
		AgentDir: spec.agentDir, TimeoutMS: spec.timeout.Milliseconds(), Broker: spec.broker,
		KeepAliveMS: spec.keepAlive.Milliseconds(),
	}); err != nil {
		h.remove(st.id)
		return nil, fmt.Errorf("relay %s: %w", h.ac.name, err)
	}
	closeOnce := sync.OnceValue(func() error {
		if h.remove(st.id) != nil {
			h.ac.wc.Send(&wire.RelayClose{ID: st.id})
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
	stdout := transport.AckReader(st.out, wire.RelayAckEvery, func(n int) {
		h.ac.wc.Send(&wire.RelayData{ID: st.id, Ack: int64(n)})
	})
	return transport.NewSession(&relayWriter{h: h, st: st}, stdout, strings.NewReader(""), wait, closeOnce), nil
}

// newStream is a child stream whose output may hold at most the window it
// granted the parent.
func (h *relayHub) newStream(id uint64, spec relaySpec) *relayStream {
	st := &relayStream{id: id, spec: spec, out: transport.NewPipe(), credit: transport.NewCredit(wire.RelayWindow),
		spoke: make(chan struct{}), done: make(chan struct{})}
	st.out.SetLimit(wire.RelayWindow, fmt.Errorf("relay buffer for %s exceeded %d MiB: %s ignored flow control", spec.name, wire.RelayWindow>>20, h.ac.name))
	return st
}

func (h *relayHub) remove(id uint64) *relayStream {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.children[id]
	delete(h.children, id)
	return st
}

func (h *relayHub) child(id uint64) *relayStream {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.children[id]
}

// handle consumes relay messages from the parent; false for others.
func (h *relayHub) handle(msg wire.Message) bool {
	switch m := msg.(type) {
	case *wire.RelayAsk:
		if st := h.child(m.ID); st != nil {
			go h.answer(st, m)
		}
	case *wire.RelayData:
		if st := h.child(m.ID); st != nil {
			st.credit.Grant(int(m.Ack))
			if len(m.Data) > 0 {
				st.mu.Lock()
				if !st.started {
					st.started = true
					close(st.spoke)
				}
				st.mu.Unlock()
				if _, err := st.out.Write(m.Data); err != nil && h.remove(m.ID) != nil {
					st.finish(err)
					go h.ac.wc.Send(&wire.RelayClose{ID: m.ID})
				}
			}
			if m.EOF {
				st.out.Close()
			}
		}
	case *wire.RelayClose:
		if st := h.remove(m.ID); st != nil {
			if m.Error != "" {
				st.finish(fmt.Errorf("via %s: %s", h.ac.name, m.Error))
			} else {
				st.finish(nil)
			}
		}
	default:
		return false
	}
	return true
}

// relayLost says which relay of a chain went away, so hosts deep in a tree
// name the hop that failed rather than the chain of consequences.
type relayLost struct {
	via   string
	cause error
}

func (e *relayLost) Error() string {
	cause := e.cause.Error()
	if errors.Is(e.cause, io.EOF) {
		cause = "its connection ended (link down or host gone)"
	}
	return fmt.Sprintf("relay %s lost: %s", e.via, cause)
}

func (e *relayLost) Unwrap() error { return e.cause }

// fail ends every child when the parent's own connection is gone.
func (h *relayHub) fail(err error) {
	var lost *relayLost
	if !errors.As(err, &lost) {
		lost = &relayLost{via: h.ac.name, cause: err}
	}
	h.mu.Lock()
	h.lost = lost
	children := h.children
	h.children = map[uint64]*relayStream{}
	h.mu.Unlock()
	for _, st := range children {
		st.finish(lost)
	}
}

// answer checks a host key or signs for a child connection that is still
// authenticating; anything else is refused, so a compromised parent cannot
// use the controller's keys for connections of its own choosing beyond the
// handshake the controller asked for.
func (h *relayHub) answer(st *relayStream, m *wire.RelayAsk) {
	reply := &wire.RelayAnswer{ID: m.ID, Seq: m.Seq}
	refuse := func(format string, args ...any) {
		reply.Error = fmt.Sprintf(format, args...)
		h.ac.wc.Send(reply)
	}
	key, err := ssh.ParsePublicKey(m.Key)
	if err != nil {
		refuse("bad key: %v", err)
		return
	}
	switch m.What {
	case "hostkey":
		if err := st.spec.hostKey(key); err != nil {
			refuse("%v", err)
			return
		}
	case "sign":
		st.mu.Lock()
		ok := !st.started && st.signed < maxSignatures
		st.signed++
		st.mu.Unlock()
		if !ok {
			refuse("signature refused: connection %s is not authenticating", st.spec.name)
			return
		}
		var signer ssh.Signer
		for _, s := range st.spec.signers {
			if string(s.PublicKey().Marshal()) == string(m.Key) {
				signer = s
			}
		}
		if signer == nil {
			refuse("signature refused: not a key offered for %s", st.spec.name)
			return
		}
		var sig *ssh.Signature
		if as, ok := signer.(ssh.AlgorithmSigner); ok && m.Algorithm != "" {
			sig, err = as.SignWithAlgorithm(rand.Reader, m.Data, m.Algorithm)
		} else {
			sig, err = signer.Sign(rand.Reader, m.Data)
		}
		if err != nil {
			refuse("sign: %v", err)
			return
		}
		reply.Signature = ssh.Marshal(sig)
	default:
		refuse("unknown question %q", m.What)
		return
	}
	h.ac.wc.Send(reply)
}

// relayWriter is a child's stdin: RelayData frames within the credit the
// parent grants, so a child that does not read cannot make its parent
// buffer what the controller sends it.
type relayWriter struct {
	h  *relayHub
	st *relayStream
}

func (w *relayWriter) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		k, err := w.st.credit.Take(len(b) - done)
		if err != nil {
			return done, err
		}
		if err := w.h.ac.wc.Send(&wire.RelayData{ID: w.st.id, Data: b[done : done+k]}); err != nil {
			return done, err
		}
		done += k
	}
	return done, nil
}

func (w *relayWriter) Close() error {
	return w.h.ac.wc.Send(&wire.RelayData{ID: w.st.id, EOF: true})
}

// startReader reads the agent's messages on their own goroutine: relay
// traffic for children must flow while the parent runs a plan of its own,
// or while it runs none. Everything else is handed to recv in order.
func (ac *agentConn) startReader() {
	ac.relay = &relayHub{ac: ac, children: map[uint64]*relayStream{}}
	ac.inbox = make(chan wire.Message, 64)
	go func() {
		for {
			msg, err := ac.wc.Recv()
			if err != nil {
				ac.relay.fail(err)
				ac.readErr = err
				close(ac.inbox)
				return
			}
			if !ac.relay.handle(msg) {
				ac.inbox <- msg
			}
		}
	}()
}

func (ac *agentConn) recv() (wire.Message, error) {
	msg, ok := <-ac.inbox
	if !ok {
		return nil, ac.readErr
	}
	return msg, nil
}
