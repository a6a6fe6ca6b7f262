package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Client is one live SSH connection from a Pool. It is safe for concurrent
// use; sshd limits sessions per connection (MaxSessions, default 10).
type Client struct {
	ssh         *ssh.Client
	conn        *countingConn
	e           *endpoint
	fingerprint string
	done        chan struct{} // closed when the connection has ended
	lost        atomic.Pointer[string]
}

func newClient(sc *ssh.Client, cc *countingConn, e *endpoint, fingerprint string, cfg Config) *Client {
	c := &Client{ssh: sc, conn: cc, e: e, fingerprint: fingerprint, done: make(chan struct{})}
	go func() {
		sc.Wait()
		close(c.done)
	}()
	go KeepAlive(c.done, sc, cfg.KeepAlive, func(silent time.Duration) {
		reason := fmt.Sprintf("no answer to keepalives for %s", silent.Round(time.Millisecond))
		c.lost.Store(&reason)
		cfg.Debugf("%s: closing connection: %s", e.where(), reason)
	})
	return c
}

func (c *Client) isClosed() bool {
	if c.lost.Load() != nil {
		return true // the keepalive gave up; done follows shortly
	}
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *Client) close() error { return c.ssh.Close() }

// String names the connection for messages: "host web1 (10.0.0.1:22)".
func (c *Client) String() string { return c.e.where() }

// HostKey is the fingerprint of the key the server presented, recorded even
// when host key checking was turned off so logs can show what was accepted.
func (c *Client) HostKey() string { return c.fingerprint }

// BytesSent counts bytes written to the connection, SSH framing and
// encryption included. For a target behind a jump host this is what crossed
// the tunnel; the controller's own link also carries the jump connection's
// overhead, which the jump host's Client counts.
func (c *Client) BytesSent() int64 { return c.conn.sent.Load() }

// BytesReceived counts bytes read from the connection; see BytesSent.
func (c *Client) BytesReceived() int64 { return c.conn.received.Load() }

// Dial opens a TCP connection from the target to addr, e.g. to chain a
// further hop or relay a file server.
func (c *Client) Dial(network, addr string) (net.Conn, error) {
	conn, err := c.ssh.Dial(network, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: forwarding to %s: %w", c.e.where(), addr, c.lostErr(err))
	}
	return conn, nil
}

// Start runs command on the target with the login shell of the remote user.
// The caller must drain Stdout and Stderr: both share one flow-control
// window, so an unread Stderr eventually stalls Stdout. Cancelling ctx ends
// the session.
func (c *Client) Start(ctx context.Context, command string) (*Session, error) {
	s, err := c.ssh.NewSession()
	if err != nil {
		return nil, fmt.Errorf("%s: cannot open a session: %w", c.e.where(), c.lostErr(err))
	}
	stdin, err1 := s.StdinPipe()
	stdout, err2 := s.StdoutPipe()
	stderr, err3 := s.StderrPipe()
	if err := errors.Join(err1, err2, err3); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: %w", c.e.where(), err)
	}
	if err := s.Start(command); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: cannot start command: %w", c.e.where(), c.lostErr(err))
	}
	// sshd keeps a channel we closed open until the command exits, and
	// x/crypto's readers wait for the server: a command stuck before its
	// first output (a hanging login shell) would block its reader forever.
	// Reading through pipes that Close breaks frees the reader at once.
	outR, errR := detachable(stdout), detachable(stderr)
	closeAll := func() error {
		err := s.Close()
		outR.CloseWithError(io.EOF)
		errR.CloseWithError(io.EOF)
		return err
	}
	stop := context.AfterFunc(ctx, func() {
		// Honoured by OpenSSH ≥ 7.9 for non-root logins; otherwise the command
		// runs on until it notices its closed stdin/stdout.
		s.Signal(ssh.SIGKILL)
		closeAll()
	})
	return &Session{
		Stdin:  stdin,
		Stdout: outR,
		Stderr: errR,
		wait: func() error {
			// sshd keeps a session whose channel we closed until the command
			// exits, so a cancelled Wait must not wait for the server.
			waited := make(chan error, 1)
			go func() { waited <- s.Wait() }()
			var err error
			select {
			case err = <-waited:
			case <-ctx.Done():
				err = ctx.Err()
			}
			stop()
			var exit *ssh.ExitError
			switch {
			case err == nil:
				return nil
			case ctx.Err() != nil:
				return fmt.Errorf("%s: %w", c.e.where(), ctx.Err())
			case errors.As(err, &exit):
				return &ExitError{Code: exit.ExitStatus(), Signal: exit.Signal()}
			}
			return fmt.Errorf("%s: connection lost before the command finished: %w", c.e.where(), c.lostErr(err))
		},
		close: closeAll,
	}, nil
}

// detachable copies r into a pipe whose reader can be closed while a Read
// waits; the copy goroutine ends when r does.
func detachable(r io.Reader) *io.PipeReader {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err)
	}()
	return pr
}

// lostErr explains an error caused by the keepalive closing the connection.
func (c *Client) lostErr(err error) error {
	if r := c.lost.Load(); r != nil {
		return fmt.Errorf("%s (%w)", *r, err)
	}
	return err
}

// countingConn counts what crosses the wire so push can report how much of
// the controller's link each host used.
type countingConn struct {
	net.Conn
	sent, received atomic.Int64
	lastRead       atomic.Int64 // UnixNano of the last read that got bytes
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.received.Add(int64(n))
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

// silentFor is how long nothing came from the server.
func (c *countingConn) silentFor() time.Duration {
	return time.Since(time.Unix(0, c.lastRead.Load()))
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.sent.Add(int64(n))
	return n, err
}
