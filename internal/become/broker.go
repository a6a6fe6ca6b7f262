package become

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SocketPrefix starts every broker socket name; the agent refuses others.
const SocketPrefix = "@herd-become-"

// ServeOptions configure the broker (`herd agent --become`).
type ServeOptions struct {
	In  io.Reader // the controller's stream (SSH stdin)
	Out io.Writer // to the controller (SSH stdout)
	Log io.Writer // the tool's and the privileged agent's terminal output
	// Exe and Hash are the agent binary the tool runs (the broker's own).
	Exe, Hash string
}

// Serve runs the broker: become, then relay until either side ends. It
// returns nil after a clean relay and after a become failure it reported to
// the controller.
func Serve(ctx context.Context, o ServeOptions) error {
	if _, err := io.WriteString(o.Out, greeting); err != nil {
		return err
	}
	line, err := readLine(o.In, maxRequestLine)
	if err != nil {
		return fmt.Errorf("become broker: reading the request: %w", err)
	}
	req, err := decodeRequest(line)
	if err != nil {
		return fmt.Errorf("become broker: bad request")
	}
	s, rep := start(ctx, req, o)
	b, _ := json.Marshal(rep)
	if _, err := o.Out.Write(append(b, '\n')); err != nil {
		if s != nil {
			s.close()
		}
		return err
	}
	if s == nil {
		return nil
	}
	s.relay(o)
	return nil
}

// session is a become that succeeded: the tool, its pty and the privileged
// agent's connection.
type session struct {
	cmd    *exec.Cmd
	master *os.File
	conn   *net.UnixConn
	exited chan error
	output chan []byte // the pty's output, closed at EOF
}

func (s *session) close() {
	if s.conn != nil {
		s.conn.Close()
	}
	// Closing the master hangs up the tool's terminal: SIGHUP reaches it
	// even when it runs setuid root and a plain kill would be refused.
	s.master.Close()
	s.cmd.Process.Kill()
	select {
	case <-s.exited:
	case <-time.After(2 * time.Second):
	}
}

// relay copies the controller's stream to the privileged agent and back,
// and the terminal's output to the log, until the agent or the controller
// ends.
func (s *session) relay(o ServeOptions) {
	go func() {
		for b := range s.output {
			o.Log.Write(b)
		}
	}()
	go func() {
		io.Copy(s.conn, o.In)
		s.conn.CloseWrite()
	}()
	if _, err := io.Copy(o.Out, s.conn); err != nil {
		// The controller is gone (our stdout broke), and so is our stdin:
		// the agent sees its input end and stops after the resources in
		// flight. Stay until it does, so no privileged agent outlives its
		// broker, but not for ever.
		s.conn.SetReadDeadline(time.Now().Add(AgentStopWait))
		io.Copy(io.Discard, s.conn)
	}
	s.conn.Close()
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
	s.master.Close()
}

// AgentStopWait bounds how long a broker whose controller went away waits
// for the privileged agent to finish the resources it has in flight (the
// agent's own bound, agent.StopGrace, is shorter).
var AgentStopWait = 90 * time.Second

// start becomes req.User and waits for the privileged agent to connect.
// Exactly one of the results is set meaningfully: a session with an ok
// reply, or nil with a failure reply.
func start(ctx context.Context, req Request, o ServeOptions) (*session, reply) {
	fail := func(k Kind, whose, format string, args ...any) (*session, reply) {
		return nil, reply{Kind: k, Whose: whose, Detail: scrub(fmt.Sprintf(format, args...), req.Password)}
	}
	if err := Validate(req.Method, req.User); err != nil {
		return fail(Failed, "", "%v", err)
	}
	whose := req.User // su asks for the target's password
	if req.Method != Su {
		if u, err := user.Current(); err == nil {
			whose = u.Username
		}
	}
	target, err := user.Lookup(req.User)
	if err != nil {
		return fail(Failed, whose, "unknown user %s on this host", req.User)
	}
	uid, _ := strconv.Atoi(target.Uid)
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}

	var rnd [12]byte
	rand.Read(rnd[:])
	name := SocketPrefix + hex.EncodeToString(rnd[:])
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return fail(Failed, whose, "listen on %s: %v", name, err)
	}
	defer ln.Close()

	args := []string{o.Exe, "agent"}
	if o.Hash != "" {
		args = append(args, "--hash", o.Hash)
	}
	argv, err := Command(req.Method, req.User, append(args, "--become-socket", name))
	if err != nil {
		return fail(Failed, whose, "%v", err)
	}
	master, slave, err := openPty()
	if err != nil {
		return fail(Failed, whose, "%v", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// English messages, so failures are classified alike everywhere.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		slave.Close()
		master.Close()
		return fail(Failed, whose, "cannot run %s: %v", argv[0], err)
	}
	slave.Close()
	s := &session{cmd: cmd, master: master, exited: make(chan error, 1), output: make(chan []byte, 16)}
	go func() { s.exited <- cmd.Wait(); close(s.exited) }()
	go func() {
		defer close(s.output)
		for {
			b := make([]byte, 4096)
			n, err := master.Read(b)
			if n > 0 {
				s.output <- b[:n]
			}
			if err != nil {
				return
			}
		}
	}()
	conns := make(chan *net.UnixConn, 1)
	go acceptAgent(ln, uid, cmd.Process.Pid, conns)

	failed := func(k Kind, format string, args ...any) (*session, reply) {
		s.close()
		return fail(k, whose, format, args...)
	}
	var since, all bytes.Buffer // output since the last answer; all of it
	typed := false
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case c := <-conns:
			s.conn = c
			return s, reply{OK: true}
		case b, ok := <-s.output:
			if !ok {
				s.output = nil
				continue
			}
			since.Write(b)
			all.Write(b)
			if !isPrompt(req.Method, since.String()) {
				continue
			}
			switch {
			case req.Password == "":
				return failed(NeedPassword, "")
			case typed:
				return failed(WrongPassword, "%s", toolWords(all.String(), req.Method))
			}
			typed = true
			since.Reset()
			if _, err := io.WriteString(master, req.Password+"\n"); err != nil {
				return failed(Failed, "typing the password: %v", err)
			}
		case err := <-s.exited:
			// The tool ended before the agent connected; give its last
			// words a moment to arrive.
			collect(s.output, &all, 300*time.Millisecond)
			return failed(classify(all.String(), typed), "%s; %s", toolWords(all.String(), req.Method), exitText(err))
		case <-timer.C:
			return failed(TimedOut, "%s", toolWords(all.String(), req.Method))
		case <-ctx.Done():
			return failed(Failed, "%v", ctx.Err())
		}
	}
}

func collect(out chan []byte, into *bytes.Buffer, d time.Duration) {
	t := time.After(d)
	for {
		select {
		case b, ok := <-out:
			if !ok {
				return
			}
			into.Write(b)
		case <-t:
			return
		}
	}
}

// acceptAgent hands over the first connection made by a process running as
// uid that descends from the tool; anything else is closed unread.
func acceptAgent(ln *net.UnixListener, uid, toolPid int, out chan<- *net.UnixConn) {
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		if peerOK(c, uid, toolPid) {
			out <- c
			return
		}
		c.Close()
	}
}

func peerOK(c *net.UnixConn, uid, toolPid int) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil || cred == nil || int(cred.Uid) != uid {
		return false
	}
	pid := int(cred.Pid)
	for i := 0; i < 16 && pid > 1; i++ {
		if pid == toolPid {
			return true
		}
		pid = parentOf(pid)
	}
	return false
}

func parentOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may contain spaces and parentheses: fields start
	// after the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// classify reads a tool's last words.
func classify(out string, typed bool) Kind {
	o := strings.ToLower(out)
	switch {
	case strings.Contains(o, "password is required"):
		return NeedPassword
	case typed && (strings.Contains(o, "incorrect password") || strings.Contains(o, "sorry, try again") ||
		strings.Contains(o, "authentication fail")):
		return WrongPassword
	case strings.Contains(o, "not in the sudoers") || strings.Contains(o, "not allowed") ||
		strings.Contains(o, "not permitted") || strings.Contains(o, "operation not permitted"):
		return Denied
	}
	return Failed
}

// promptRE matches the prompts of su and doas, which say nothing useful in
// an error message.
var promptRE = regexp.MustCompile(`(?i)(doas \([^)]*\) )?password: ?`)

// toolWords is the tool's output without our own prompt, for messages.
func toolWords(out, method string) string {
	out = promptRE.ReplaceAllString(strings.ReplaceAll(out, sudoPrompt, ""), "")
	out = strings.TrimSpace(strings.ReplaceAll(out, "\r", ""))
	if out == "" {
		return method + " printed nothing"
	}
	return method + " said: " + out
}

func exitText(err error) string {
	if err == nil {
		return "it exited with status 0"
	}
	return "it ended: " + err.Error()
}

// Dial connects a privileged agent (`herd agent --become-socket NAME`) to
// its broker.
func Dial(name string) (*net.UnixConn, error) {
	if !strings.HasPrefix(name, SocketPrefix) {
		return nil, fmt.Errorf("become socket %q does not start with %s", name, SocketPrefix)
	}
	return net.DialUnix("unix", nil, &net.UnixAddr{Name: name, Net: "unix"})
}
