package transport

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// listenMux listens on path; busy means a live mux already does. A socket
// nobody answers on is a dead mux's and is replaced.
func listenMux(path string) (ln net.Listener, busy bool, err error) {
	for range 2 {
		ln, err = net.Listen("unix", path)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			return ln, false, err
		}
		if c, derr := net.DialTimeout("unix", path, 2*time.Second); derr == nil {
			c.Close()
			return nil, true, nil
		}
		os.Remove(path)
	}
	return nil, false, err
}

// muxServer bridges the runs' local SSH connections onto up.
type muxServer struct {
	ln    net.Listener
	up    *Client
	cfg   *ssh.ServerConfig
	stop  chan struct{}
	halt  sync.Once
	idle  *time.Timer
	mu    sync.Mutex
	info  MuxInfo
	conns int
	// locals are the runs' connections, closed when the upstream goes.
	locals map[net.Conn]bool
	// keepAlive is the upstream's keepalive interval: a reply comes at
	// least that often from a live host. probeWait bounds the probe of
	// an upstream that has been silent longer (upstreamAlive).
	keepAlive, probeWait time.Duration
}

// localServerConfig is the SSH server side of a mux socket, with an
// ephemeral host key. No client authentication: the only clients are this
// uid's processes (SO_PEERCRED, checked on accept) reaching a socket in a
// 0700 directory.
func localServerConfig() (*ssh.ServerConfig, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ServerConfig{NoClientAuth: true, ServerVersion: "SSH-2.0-herd-mux"}
	cfg.AddHostKey(signer)
	return cfg, nil
}

func newMuxServer(up *Client, spec muxSpec, path string, keepAlive, probeWait time.Duration) (*muxServer, error) {
	cfg, err := localServerConfig()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &muxServer{up: up, cfg: cfg, stop: make(chan struct{}), idle: time.NewTimer(spec.Persist),
		locals:    map[net.Conn]bool{},
		keepAlive: keepAlive, probeWait: probeWait,
		info: MuxInfo{Socket: path, Pid: os.Getpid(), Host: up.e.name, Where: up.e.where(), HostKey: up.fingerprint,
			Since: now, Persist: spec.Persist, IdleSince: now}}, nil
}

func (s *muxServer) accept(ln net.Listener) {
	acceptOwn(ln, func(conn net.Conn) {
		s.mu.Lock()
		s.locals[conn] = true
		s.mu.Unlock()
		s.serve(conn)
		s.mu.Lock()
		delete(s.locals, conn)
		s.mu.Unlock()
	})
}

// acceptOwn serves each connection of ln made by a process of this uid
// (SO_PEERCRED) in a goroutine; others are closed before a byte is read.
func acceptOwn(ln net.Listener, serve func(net.Conn)) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		if uid, err := peerUID(conn); err != nil || uid != os.Getuid() {
			conn.Close() // another user reached the socket: nothing for them
			continue
		}
		go serve(conn)
	}
}

// closeLocals ends the runs' connections (the upstream is gone).
func (s *muxServer) closeLocals() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.locals {
		c.Close()
	}
}

// serve runs one local connection: its channels are bridged until it
// ends; then the idle period starts if no other run is connected.
func (s *muxServer) serve(conn net.Conn) {
	defer conn.Close()
	var isRun atomic.Bool // it said herd-mux-hello; list and stop do not
	defer func() {
		if !isRun.Load() {
			return
		}
		s.mu.Lock()
		if s.conns--; s.conns == 0 {
			s.info.IdleSince = time.Now()
			s.idle.Reset(s.info.Persist)
		}
		s.mu.Unlock()
	}()
	sc, chans, reqs, err := acceptLocal(conn, s.cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go s.globalRequests(reqs, &isRun)
	var wg sync.WaitGroup
	for nc := range chans {
		wg.Add(1)
		go func() { defer wg.Done(); s.bridge(nc) }()
	}
	wg.Wait()
}

func (s *muxServer) globalRequests(reqs <-chan *ssh.Request, isRun *atomic.Bool) {
	for r := range reqs {
		switch r.Type {
		case "keepalive@openssh.com":
			// Answered by the host, not by us: the run's keepalive then
			// finds a hung host as it would on its own connection. A
			// host that does not answer gets no reply passed on.
			go func() {
				if _, _, err := s.up.ssh.SendRequest(r.Type, true, nil); err == nil {
					r.Reply(true, nil)
				}
			}()
		case "herd-mux-hello":
			if !s.upstreamAlive() {
				s.ln.Close() // gone before the run starts the next mux
				r.Reply(false, nil)
				s.halt.Do(func() { close(s.stop) })
				continue
			}
			fallthrough
		case "herd-mux-info":
			s.mu.Lock()
			if r.Type == "herd-mux-hello" && isRun.CompareAndSwap(false, true) {
				s.conns++
				s.info.IdleSince = time.Time{}
				s.idle.Stop()
				if d, err := time.ParseDuration(string(r.Payload)); err == nil && d > 0 {
					s.info.Persist = d // the latest run's --persist applies
				}
			}
			info := s.info
			info.Conns = s.conns
			s.mu.Unlock()
			b, _ := json.Marshal(info)
			r.Reply(true, b)
		case "herd-mux-stop":
			r.Reply(true, nil)
			s.halt.Do(func() { close(s.stop) })
		default:
			r.Reply(false, nil)
		}
	}
}

// upstreamAlive says whether a run may use the upstream connection. One
// heard from within 1.5 keepalive intervals is; one silent for longer
// missed a keepalive reply and is probed, within probeWait:
// a host that died since its last reply is then found before a run
// waits on it rather than after (the keepalive alone takes three
// intervals).
func (s *muxServer) upstreamAlive() bool {
	if s.up.isClosed() {
		return false
	}
	if s.up.conn.silentFor() < s.keepAlive*3/2 {
		return true
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.up.ssh.SendRequest("keepalive@openssh.com", true, nil)
		done <- err
	}()
	select {
	case err := <-done:
		return err == nil
	case <-time.After(s.probeWait):
		return false
	}
}

// bridge opens nc's twin on the upstream connection and copies between
// them: data both ways, stderr, and requests both ways (exec, signals,
// exit-status). When the local channel goes — the run closed it or died —
// the upstream channel is closed, so sshd ends the command as it would
// on a dropped connection.
func (s *muxServer) bridge(nc ssh.NewChannel) {
	switch nc.ChannelType() {
	case "session", "direct-tcpip":
	default:
		nc.Reject(ssh.UnknownChannelType, "herd mux: only session and direct-tcpip channels")
		return
	}
	uch, ureqs, err := s.up.ssh.OpenChannel(nc.ChannelType(), nc.ExtraData())
	if err != nil {
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			nc.Reject(oce.Reason, oce.Message)
		} else {
			nc.Reject(ssh.ConnectionFailed, err.Error())
		}
		return
	}
	lch, lreqs, err := nc.Accept()
	if err != nil {
		uch.Close()
		return
	}
	var down sync.WaitGroup // upstream to local
	down.Add(2)
	go func() { defer down.Done(); io.Copy(lch, uch) }()
	go func() { defer down.Done(); io.Copy(lch.Stderr(), uch.Stderr()) }()
	reqsDone := make(chan struct{})
	go func() {
		defer close(reqsDone)
		forwardRequests(ureqs, lch)
	}()
	go func() {
		io.Copy(uch, lch)
		uch.CloseWrite()
	}()
	go func() {
		down.Wait()
		lch.CloseWrite()
		<-reqsDone // the upstream channel closed: exit-status was passed on
		lch.Close()
	}()
	forwardRequests(lreqs, uch) // until the local channel is closed
	uch.Close()
}

// forwardRequests passes channel requests on, with their replies, until
// reqs is closed.
func forwardRequests(reqs <-chan *ssh.Request, to ssh.Channel) {
	for r := range reqs {
		ok, err := to.SendRequest(r.Type, r.WantReply, r.Payload)
		if r.WantReply {
			r.Reply(ok && err == nil, nil)
		}
	}
}
