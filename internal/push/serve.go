package push

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/fileserver"
	"github.com/herd-project/herd/internal/transport"
	"github.com/herd-project/herd/internal/wire"
)

// ChunkSize is the payload of one FileChunk: large enough that framing and
// JSON cost little, small enough that a chunk never holds up the events
// sharing the connection for long.
const ChunkSize = 256 << 10

// maxPendingRequests bounds the file requests an agent may queue; an honest
// agent has at most a few dozen in flight.
const maxPendingRequests = 4096

// fileServer answers one plan's file requests on its own goroutine, so the
// run loop keeps relaying events while a large file streams. Answers go out
// in request order, one chunk at a time: the SSH channel's flow-control
// window is the back-pressure (a slow target stops reading, our writes
// block), so memory stays at one chunk whatever the file size.
type fileServer struct {
	host, role string
	ix         *fileserver.Index
	wc         *wire.Conn
	emit       func(event.Event)

	mu      sync.Mutex
	queue   []*wire.FileRequest
	wake    chan struct{}
	stopped bool
	done    chan struct{}

	enc     *zstd.Encoder // for compresses; used by loop only
	served  atomic.Int64  // content bytes sent
	refused atomic.Int64
}

func newFileServer(host, role string, ix *fileserver.Index, wc *wire.Conn, emit func(event.Event)) *fileServer {
	s := &fileServer{host: host, role: role, ix: ix, wc: wc, emit: emit, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go s.loop()
	return s
}

// request queues req without blocking the caller (the event relay).
func (s *fileServer) request(req *wire.FileRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= maxPendingRequests {
		s.refuse(req, fmt.Sprintf("more than %d file requests pending", maxPendingRequests))
		return fmt.Errorf("agent queued more than %d file requests", maxPendingRequests)
	}
	s.queue = append(s.queue, req)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// stop ends the loop after the request being served, and waits for it.
func (s *fileServer) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.done
}

func (s *fileServer) loop() {
	defer close(s.done)
	buf := make([]byte, ChunkSize)
	for range s.wake {
		for {
			s.mu.Lock()
			if s.stopped {
				s.mu.Unlock()
				return
			}
			if len(s.queue) == 0 {
				s.mu.Unlock()
				break
			}
			req := s.queue[0]
			s.queue = s.queue[1:]
			s.mu.Unlock()
			if err := s.serve(req, buf); err != nil {
				return // the connection is gone; the run loop sees it too
			}
		}
	}
}

// serve answers one request; it returns an error only when sending failed.
func (s *fileServer) serve(req *wire.FileRequest, buf []byte) error {
	st, err := s.ix.Open(req.Hash, req.Offset)
	if err != nil {
		var refused *fileserver.RefusedError
		if errors.As(err, &refused) {
			s.refuse(req, refused.Why)
			return s.wc.Send(&wire.FileChunk{ID: req.ID, Hash: req.Hash, Offset: req.Offset, Error: "refused: " + refused.Why})
		}
		return s.wc.Send(&wire.FileChunk{ID: req.ID, Hash: req.Hash, Offset: req.Offset, Error: err.Error()})
	}
	defer st.Close()
	compress := false
	for first := true; ; first = false {
		off := st.Offset()
		n, eof, err := st.Next(buf)
		if err != nil {
			return s.wc.Send(&wire.FileChunk{ID: req.ID, Hash: req.Hash, Offset: off, Size: st.Size(), Error: err.Error()})
		}
		if first {
			compress = s.compresses(buf[:n])
		}
		if err := s.wc.Send(&wire.FileChunk{ID: req.ID, Hash: req.Hash, Offset: off, Size: st.Size(), Data: buf[:n], EOF: eof, Compress: compress}); err != nil {
			return err
		}
		s.served.Add(int64(n))
		if eof {
			return nil
		}
	}
}

// compresses samples a file's first chunk: text and configuration compress
// well and gain on slow links; archives, images and random data would cost
// CPU on both sides (about a third of the throughput) for nothing.
func (s *fileServer) compresses(b []byte) bool {
	sample := b[:min(len(b), 64<<10)]
	if len(sample) < 4<<10 {
		return false // a frame this small is not worth it either way
	}
	if s.enc == nil {
		s.enc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	}
	return len(s.enc.EncodeAll(sample, nil)) < len(sample)*9/10
}

// refuse logs a request outside the plan on the controller: an honest agent
// never makes one, so it is a sign of a compromised or confused target.
func (s *fileServer) refuse(req *wire.FileRequest, why string) {
	s.refused.Add(1)
	s.emit(event.Event{Type: event.Log, Host: s.host, Role: s.role, Time: time.Now(),
		Msg: fmt.Sprintf("refused file request from %s for %.80q at offset %d: %s", s.host, req.Hash, req.Offset, why)})
}

// serveFiles starts the file server of one plan: it serves exactly the
// files the plan references (files, made when the plan was), re-checked
// against the role's serving rules; nil serves nothing.
func (r *runner) serveFiles(role, host string, files *fileserver.Index, ac *agentConn) *fileServer {
	if files == nil {
		files = fileserver.NewIndex(nil, nil)
	}
	emit := func(e event.Event) { r.emit(e) }
	return newFileServer(host, role, files, ac.wc, emit)
}

// bytesSent is what the host's SSH connection has carried so far.
func (r *runner) bytesSent(host string) int64 {
	if c, ok := r.clients.Load(host); ok {
		return c.(*transport.Client).BytesSent()
	}
	return 0
}

// account stops the plan's file server and adds its figures to the host's.
func (r *runner) account(hr *HostResult, host string, files *fileServer, sent0 int64) {
	files.stop()
	sent := r.bytesSent(host) - sent0
	r.mu.Lock()
	defer r.mu.Unlock()
	hr.BytesSent += sent
	hr.FileBytes += files.served.Load()
	hr.Refused += int(files.refused.Load())
}
