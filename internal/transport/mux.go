package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// Connection persistence (Config.Persist), herd's ControlPersist: the SSH
// login to a host is made by the user's `herd mux serve` process (muxd.go),
// which keeps it open after the run and serves it on a unix socket in
// ~/.herd/mux. A run dials that socket, runs a local SSH handshake with the
// mux (no network round trip) and gets an *ssh.Client whose every channel
// the mux bridges onto its upstream connection; so the code above is the
// same with or without persistence. A cached run on a persisted
// connection then costs the channel open, the exec and the plan: 3 round
// trips instead of 10.
//
// The mux dials with this package's own Pool (the same auth and host key
// checks); it is told the endpoint as the run resolved it, on its stdin,
// never a secret: endpoints with a password are not persisted, and the
// mux's environment keeps only what the login needs (SSH_AUTH_SOCK, HOME).
// Both ends check the other is the same uid (SO_PEERCRED); the directory
// is 0700, refused when it is a symlink or not the user's own.

// muxEndpoint is an endpoint as the mux is told it (JSON on its stdin).
type muxEndpoint struct {
	Name           string       `json:"name"`
	Host           string       `json:"host"`
	Port           int          `json:"port"`
	User           string       `json:"user"`
	KeyFiles       []string     `json:"key_files,omitempty"`
	KnownHosts     []string     `json:"known_hosts,omitempty"`
	Check          bool         `json:"check"`
	AcceptNew      bool         `json:"accept_new,omitempty"`
	HashKnownHosts bool         `json:"hash_known_hosts,omitempty"`
	Jump           *muxEndpoint `json:"jump,omitempty"`
}

// muxSpec is everything a mux needs: what to dial and how long to stay.
type muxSpec struct {
	Endpoint       muxEndpoint   `json:"endpoint"`
	NoAgent        bool          `json:"no_agent,omitempty"`
	ConnectTimeout time.Duration `json:"connect_timeout"`
	KeepAlive      time.Duration `json:"keepalive"`
	DialRetries    int           `json:"dial_retries"`
	Persist        time.Duration `json:"persist"`
	Dir            string        `json:"dir"`
}

func toMuxEndpoint(e *endpoint) *muxEndpoint {
	if e == nil {
		return nil
	}
	return &muxEndpoint{Name: e.name, Host: e.host, Port: e.port, User: e.user, KeyFiles: absPaths(e.keyFiles),
		KnownHosts: absPaths(e.knownHosts), Check: e.check, AcceptNew: e.acceptNew, HashKnownHosts: e.hashKnownHosts,
		Jump: toMuxEndpoint(e.jump)}
}

// absPaths makes relative key and known_hosts paths absolute: the mux
// does not run in the run's directory for long, and the socket's name
// must tell two projects' keys/id apart.
func absPaths(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p
		if a, err := filepath.Abs(p); err == nil && p != "/dev/null" {
			out[i] = a
		}
	}
	return out
}

func (m *muxEndpoint) endpoint() *endpoint {
	if m == nil {
		return nil
	}
	return &endpoint{name: m.Name, host: m.Host, port: m.Port, user: m.User, keyFiles: m.KeyFiles,
		knownHosts: m.KnownHosts, check: m.Check, acceptNew: m.AcceptNew, hashKnownHosts: m.HashKnownHosts,
		jump: m.Jump.endpoint()}
}

// persistable says whether e may be handed to a mux: a password (the
// host's or a jump host's) would have to be given to it, so it is not.
func persistable(e *endpoint) bool {
	for ; e != nil; e = e.jump {
		if e.password != "" {
			return false
		}
	}
	return true
}

// muxName is the socket's base name: a hash of everything that makes the
// connection (user@host:port, jump chain, identities, known_hosts, host
// key policy, agent use), so a run never reuses a login it would not have
// made itself.
func muxName(s muxSpec) string {
	b, _ := json.Marshal(struct {
		E       muxEndpoint
		NoAgent bool
	}{s.Endpoint, s.NoAgent})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// DefaultMuxDir is where persisted connections listen: ~/.herd/mux.
func DefaultMuxDir() string { return filepath.Join(homeDir(), ".herd", "mux") }

// sunPathMax is the longest unix socket path Linux takes (sun_path less
// its NUL).
const sunPathMax = 107

// secureMuxDir makes dir (0700) if missing and refuses one that another
// user could reach: a symlink, not a directory, not owned by this uid, or
// open to group or others.
func secureMuxDir(dir string, create bool) error {
	if create {
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return fmt.Errorf("persist: %v", err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("persist: %v", err)
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("persist: %v", err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("persist: refusing %s: it is a symlink", dir)
	case !fi.IsDir():
		return fmt.Errorf("persist: refusing %s: not a directory", dir)
	case st == nil || int(st.Uid) != os.Getuid():
		return fmt.Errorf("persist: refusing %s: not owned by uid %d", dir, os.Getuid())
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("persist: refusing %s: mode %v lets other users in; chmod 700 it", dir, fi.Mode().Perm())
	}
	return nil
}

// dialOwnSocket connects to the unix socket at path and keeps the
// connection only if the process serving it runs as this uid
// (SO_PEERCRED): the one check every client of a mux socket makes.
func dialOwnSocket(ctx context.Context, path string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	if uid, err := peerUID(conn); err != nil || uid != os.Getuid() {
		conn.Close()
		return nil, fmt.Errorf("refusing %s: served by uid %d, not ours (%v)", path, uid, err)
	}
	return conn, nil
}

// peerUID is the uid of the process at the other end of a unix socket.
func peerUID(c net.Conn) (int, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return -1, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if cerr != nil {
		return -1, cerr
	}
	return int(cred.Uid), nil
}

// muxError is a failure the mux reported for its upstream login, carried
// across the process boundary with its kind (errors.Is works as for a
// direct dial).
type muxError struct {
	msg  string
	kind error
}

func (e *muxError) Error() string { return e.msg }
func (e *muxError) Unwrap() error { return e.kind }

var muxKinds = map[string]error{"unknown-host-key": ErrUnknownHostKey, "host-key-changed": ErrHostKeyChanged,
	"auth-failed": ErrAuthFailed, "unreachable": ErrUnreachable}

func muxKind(err error) string {
	for k, v := range muxKinds {
		if errors.Is(err, v) {
			return k
		}
	}
	return "other"
}

// muxWait bounds how long a run waits for a mux to log in: its whole
// retried dial, with the pauses between attempts.
func (c Config) muxWait() time.Duration {
	r := max(c.DialRetries, 0)
	return c.ConnectTimeout*time.Duration(r+1) + time.Duration(r)*8*time.Second + 5*time.Second
}

// viaMux gets e's connection from its mux, starting one if none is
// running. handled is false when the caller should dial directly: e cannot
// be persisted, the mux directory is unusable, or the mux could not log in
// where the run itself might (a password prompt). Any other failure of a
// fresh mux's login is the host's error, as a direct dial would report it.
func (p *Pool) viaMux(ctx context.Context, e *endpoint) (c *Client, err error, handled bool) {
	if !persistable(e) {
		return nil, nil, false
	}
	dir := p.cfg.MuxDir
	if dir == "" {
		dir = DefaultMuxDir()
	}
	spec := muxSpec{Endpoint: *toMuxEndpoint(e), NoAgent: p.cfg.NoAgent, ConnectTimeout: p.cfg.ConnectTimeout,
		KeepAlive: p.cfg.KeepAlive, DialRetries: p.cfg.DialRetries, Persist: p.cfg.Persist, Dir: dir}
	path := filepath.Join(dir, muxName(spec)+".sock")
	if len(path) > sunPathMax {
		p.cfg.Debugf("%s: not persisted: socket path %s is too long", e.where(), path)
		return nil, nil, false
	}
	if err := secureMuxDir(dir, true); err != nil {
		p.cfg.Debugf("%s: not persisted: %v", e.where(), err)
		return nil, nil, false
	}
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", e.where(), ctx.Err()), true
	}
	defer func() { <-p.sem }()

	if c, err := p.dialMux(ctx, path, e); err == nil {
		p.cfg.Debugf("%s: reusing the persisted connection %s", e.where(), path)
		return c, nil, true
	} else {
		p.cfg.Debugf("%s: no usable persisted connection (%v); starting one", e.where(), err)
	}
	state, err := p.addMux(ctx, spec)
	if err != nil {
		var me *muxError
		if errors.As(err, &me) && !(errors.Is(err, ErrAuthFailed) && p.cfg.PasswordPrompt != nil) {
			return nil, err, true
		}
		p.cfg.Debugf("%s: not persisted: %v", e.where(), err)
		return nil, nil, false
	}
	c, err = p.dialMux(ctx, path, e)
	if err != nil {
		p.cfg.Debugf("%s: not persisted: mux %s: %v", e.where(), state, err)
		return nil, nil, false
	}
	return c, nil, true
}

// MuxInfo is what a mux tells about itself (herd-mux-info), for runs and
// for `herd mux list`.
type MuxInfo struct {
	Socket  string        `json:"socket"`
	Pid     int           `json:"pid"`
	Host    string        `json:"host"` // inventory name
	Where   string        `json:"where"`
	HostKey string        `json:"host_key"`
	Since   time.Time     `json:"since"`
	Persist time.Duration `json:"persist"`
	Conns   int           `json:"conns"`
	// IdleSince is when the last run left; zero while one is connected.
	IdleSince time.Time `json:"idle_since,omitzero"`
}

// dialMux connects to the mux at path and logs in to it: a local SSH
// handshake, then herd-mux-hello, which renews its idle period with ours.
func (p *Pool) dialMux(ctx context.Context, path string, e *endpoint) (*Client, error) {
	conn, err := dialOwnSocket(ctx, path)
	if err != nil {
		return nil, err
	}
	// The mux answers once its upstream is up; a mux still logging in for
	// another run is waited for, within the time its login may take.
	conn.SetDeadline(time.Now().Add(p.cfg.muxWait()))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	cc := &countingConn{Conn: conn}
	sc, chans, reqs, err := ssh.NewClientConn(cc, "mux", &ssh.ClientConfig{
		User: e.user,
		// The server was checked above to run as this uid; its host key
		// is an ephemeral one and proves nothing more.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		ClientVersion:   "SSH-2.0-herd",
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("mux handshake: %w", err)
	}
	client := ssh.NewClient(sc, chans, reqs)
	ok, payload, err := client.SendRequest("herd-mux-hello", true, []byte(p.cfg.Persist.String()))
	var info MuxInfo
	if err == nil && ok {
		err = json.Unmarshal(payload, &info)
	} else if err == nil {
		err = errors.New("mux refused hello")
	}
	if err != nil {
		client.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	if ctx.Err() != nil {
		client.Close()
		return nil, ctx.Err()
	}
	return newClient(client, cc, e, info.HostKey, p.cfg), nil
}

// addMux asks the user's mux process to log in for spec, starting the
// process if none runs, and returns its answer: "ready" (logged in,
// listening), "busy" (another run's login for the same socket is under
// way or done: use it), else the mux's error for the login.
func (p *Pool) addMux(ctx context.Context, spec muxSpec) (string, error) {
	ctl := filepath.Join(spec.Dir, ctlName)
	c, closeCtl, err := p.dialCtl(ctx, ctl)
	if err != nil {
		if err := p.startMux(ctx, spec.Dir); err != nil {
			return "", err
		}
		if c, closeCtl, err = p.dialCtl(ctx, ctl); err != nil {
			return "", fmt.Errorf("the mux's control socket: %w", err)
		}
	}
	defer closeCtl()
	in, err := json.Marshal(spec)
	if err != nil {
		return "", err
	}
	ok, answer, err := c.SendRequest("herd-mux-add", true, in)
	if err != nil || !ok {
		return "", fmt.Errorf("the mux did not answer (%v)", err)
	}
	switch word, rest, _ := strings.Cut(string(answer), " "); word {
	case "ready", "busy":
		return word, nil
	case "error":
		kind, msg, _ := strings.Cut(rest, " ")
		return "", &muxError{msg: msg, kind: muxKinds[kind]}
	}
	return "", fmt.Errorf("the mux answered %q", answer)
}

// dialCtl logs in to the control socket at path, checking its server is
// this uid; the connection's deadline is the mux's login time (muxWait),
// and ctx's end closes it. The returned close ends both the connection
// and that watch on ctx, so a long run keeps nothing per control dial.
func (p *Pool) dialCtl(ctx context.Context, path string) (*ssh.Client, func(), error) {
	conn, err := dialOwnSocket(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Now().Add(p.cfg.muxWait()))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, "mux", &ssh.ClientConfig{
		User:            "herd",
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // the server's uid was checked above
		ClientVersion:   "SSH-2.0-herd",
	})
	if err != nil {
		stop()
		conn.Close()
		return nil, nil, err
	}
	c := ssh.NewClient(sc, chans, reqs)
	return c, func() { stop(); c.Close() }, nil
}

// startMux starts the user's mux process for dir, detached, and waits
// (bounded) for its first line: "ready" or "busy" (another run started
// one just now) both mean its control socket is up.
func (p *Pool) startMux(ctx context.Context, dir string) error {
	argv := p.cfg.MuxCommand
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		argv = []string{exe, "mux", "serve"}
	}
	in, err := json.Marshal(map[string]string{"dir": dir})
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = muxEnv()
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	// Its own session: the terminal's Ctrl-C and hangup are for the run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the mux: %w", err)
	}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	var l string
	select {
	case l = <-line:
	case <-ctx.Done():
		cmd.Process.Kill()
		cmd.Wait()
		return ctx.Err()
	case <-timer.C:
		cmd.Process.Kill()
		cmd.Wait()
		return errors.New("the mux did not start within 10s")
	}
	go cmd.Wait() // reaped when it exits while this run lasts
	if l != "ready" && l != "busy" {
		return fmt.Errorf("the mux did not start: %q", l)
	}
	return nil
}

// muxEnv is the mux's environment: what a login needs, nothing else (a
// run's environment may hold HERD_SUDO_PASSWORD or vault passwords).
func muxEnv() []string {
	var env []string
	for _, k := range []string{"HOME", "USER", "LOGNAME", "PATH", "SSH_AUTH_SOCK", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
