package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// One mux process per user serves every persisted connection: a run asks
// it, on its control socket (ctlName in the mux directory), to log in to a
// host (herd-mux-add, the muxSpec as payload); the process then serves
// that connection on the host's own socket until it has been idle for the
// spec's Persist. The process exits once it serves no connection.

// ctlName is the control socket's name in the mux directory.
const ctlName = "ctl"

// muxGrace is how long a mux process serving nothing waits for a run to
// add a connection before it exits; startGrace is the same at its start.
const (
	muxGrace   = 300 * time.Millisecond
	startGrace = 10 * time.Second
)

// ServeMux is `herd mux serve`: it reads {"dir": DIR} from in, listens on
// DIR's control socket, says "ready" (or "busy": another process serves
// it) on out, calls onReady (which closes out: a run gone meanwhile must
// not SIGPIPE the mux) and serves until it has no connection left, or on
// SIGTERM/SIGINT.
func ServeMux(in io.Reader, out io.Writer, onReady func()) error {
	var opts struct {
		Dir string `json:"dir"`
	}
	err := json.NewDecoder(io.LimitReader(in, 1<<16)).Decode(&opts)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		if onReady != nil {
			onReady()
		}
	}
	if err == nil && opts.Dir == "" {
		err = errors.New("no directory")
	}
	if err == nil {
		err = secureMuxDir(opts.Dir, false)
	}
	if err != nil {
		say("error other %v", err)
		return err
	}
	syscall.Umask(0o177) // sockets are made 0600
	ln, busy, err := listenMux(filepath.Join(opts.Dir, ctlName))
	switch {
	case busy:
		say("busy")
		return nil
	case err != nil:
		say("error other %v", err)
		return err
	}
	defer ln.Close()
	cfg, err := localServerConfig()
	if err != nil {
		say("error other %v", err)
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	d := &muxDaemon{ctx: ctx, dir: opts.Dir, cfg: cfg, empty: time.NewTimer(startGrace)}
	say("ready")
	os.Chdir("/") // hold no directory of the run's busy
	go acceptOwn(ln, d.control)
	select {
	case <-sigs:
	case <-d.empty.C:
	}
	ln.Close() // no more adds
	cancel()
	d.wg.Wait()
	return nil
}

// muxDaemon is the process: its persisted connections and their count.
type muxDaemon struct {
	ctx   context.Context
	dir   string
	cfg   *ssh.ServerConfig
	wg    sync.WaitGroup // the connections being served
	mu    sync.Mutex
	n     int         // connections being added or served
	empty *time.Timer // fires muxGrace after n fell to 0
}

func (d *muxDaemon) enter() {
	d.mu.Lock()
	d.n++
	d.empty.Stop()
	d.mu.Unlock()
	d.wg.Add(1)
}

func (d *muxDaemon) leave() {
	d.mu.Lock()
	if d.n--; d.n == 0 {
		d.empty.Reset(muxGrace)
	}
	d.mu.Unlock()
	d.wg.Done()
}

// acceptLocal does the SSH handshake of a mux socket's client, which has
// 10 s to finish it: a client that connects and stalls holds nothing.
func acceptLocal(conn net.Conn, cfg *ssh.ServerConfig) (*ssh.ServerConn, <-chan ssh.NewChannel, <-chan *ssh.Request, error) {
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	conn.SetDeadline(time.Time{})
	return sc, chans, reqs, nil
}

// control serves one control connection: herd-mux-add requests, each
// answered with the line a run expects ("ready", "busy", "error ...").
func (d *muxDaemon) control(conn net.Conn) {
	defer conn.Close()
	sc, chans, reqs, err := acceptLocal(conn, d.cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go func() {
		for nc := range chans {
			nc.Reject(ssh.Prohibited, "the control socket opens no channels")
		}
	}()
	for r := range reqs {
		if r.Type != "herd-mux-add" {
			r.Reply(false, nil)
			continue
		}
		var spec muxSpec
		answer := "error other bad spec"
		if err := json.Unmarshal(r.Payload, &spec); err == nil {
			answer = d.add(spec)
		}
		r.Reply(true, []byte(answer))
	}
}

// add logs in to spec's host and serves the connection on its socket, or
// says why not.
func (d *muxDaemon) add(spec muxSpec) string {
	if spec.Persist <= 0 || filepath.Clean(spec.Dir) != filepath.Clean(d.dir) {
		return "error other the spec has no persist duration or another directory"
	}
	d.enter()
	path := filepath.Join(d.dir, muxName(spec)+".sock")
	ln, busy, err := listenMux(path)
	if busy || err != nil {
		d.leave()
		if busy {
			return "busy"
		}
		return fmt.Sprintf("error other %v", err)
	}
	cfg := Config{SSHConfigFile: "none", NoAgent: spec.NoAgent, ConnectTimeout: spec.ConnectTimeout,
		KeepAlive: spec.KeepAlive, DialRetries: spec.DialRetries}.withDefaults()
	pool := NewPool(cfg)
	up, err := pool.get(d.ctx, spec.Endpoint.endpoint())
	var s *muxServer
	if err == nil {
		s, err = newMuxServer(up, spec, path, cfg.KeepAlive, min(cfg.ConnectTimeout, cfg.KeepAlive))
	}
	if err != nil {
		ln.Close()
		pool.Close()
		d.leave()
		return fmt.Sprintf("error %s %s", muxKind(err), strings.ReplaceAll(err.Error(), "\n", " "))
	}
	// A mux lives long and mostly idle: give back what the program's
	// start-up and the login used (herd's inits are heavy).
	debug.FreeOSMemory()
	s.ln = ln
	go func() {
		defer d.leave()
		go s.accept(ln)
		select {
		case <-up.done:
		case <-s.idle.C:
		case <-s.stop:
		case <-d.ctx.Done():
		}
		ln.Close()
		pool.Close()
		s.closeLocals()
	}()
	return "ready"
}
