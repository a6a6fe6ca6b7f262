package bench

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// DelayProxy forwards TCP connections to Target with Delay each way and
// records, as the client sees it, when each chunk left the client and when
// each chunk reached it. Unlike a latency proxy that only delays data, it
// also makes TCP's own handshake cost what it costs on a real link: the
// target sees the connection 1.5 × RTT after the client dialled (SYN,
// SYN-ACK, ACK), so the server's first bytes reach the client at 2 × RTT,
// as they would.
type DelayProxy struct {
	Target string
	Delay  time.Duration // one way; RTT is twice this

	ln    net.Listener
	mu    sync.Mutex
	start time.Time
	log   []Chunk
}

// Chunk is one read on one side of the proxy.
type Chunk struct {
	At     time.Duration // since the first connection was accepted
	ToHost bool          // client → host (sent at At) or host → client (received at At)
	Bytes  int
}

// Listen starts the proxy on 127.0.0.1 and returns its address.
func (p *DelayProxy) Listen() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	p.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return ln.Addr().String(), nil
}

// Close stops accepting.
func (p *DelayProxy) Close() error { return p.ln.Close() }

// Log returns the chunks recorded so far, in time order per direction.
func (p *DelayProxy) Log() []Chunk {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Chunk(nil), p.log...)
}

func (p *DelayProxy) now() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.start.IsZero() {
		p.start = time.Now()
	}
	return time.Since(p.start)
}

func (p *DelayProxy) record(c Chunk) {
	p.mu.Lock()
	p.log = append(p.log, c)
	p.mu.Unlock()
}

func (p *DelayProxy) serve(client net.Conn) {
	defer client.Close()
	p.now()
	// The client may send once its connect returns (1 RTT on a real link),
	// which here is at once: what it sends reaches the host no earlier than
	// the host saw the connection.
	open := time.Now().Add(3 * p.Delay) // SYN, SYN-ACK, ACK
	var host net.Conn
	ready := make(chan struct{})
	go func() {
		defer close(ready)
		time.Sleep(time.Until(open))
		h, err := net.Dial("tcp", p.Target)
		if err != nil {
			client.Close()
			return
		}
		host = h
	}()
	hostf := func() net.Conn {
		<-ready
		return host
	}
	done := make(chan struct{}, 2)
	go func() { p.pipe(func() net.Conn { return client }, hostf, false, open); done <- struct{}{} }()
	go func() { p.pipe(hostf, func() net.Conn { return client }, true, open); done <- struct{}{} }()
	<-done
	<-done
	if h := hostf(); h != nil {
		h.Close()
	}
}

// pipe copies src to dst, each chunk Delay after it was read and not
// before open.
func (p *DelayProxy) pipe(dstf, srcf func() net.Conn, toHost bool, open time.Time) {
	type chunk struct {
		due time.Time
		b   []byte
	}
	q := make(chan chunk, 1024)
	wdone := make(chan struct{})
	defer func() { <-wdone }()
	go func() {
		defer close(wdone)
		dst := dstf()
		if dst == nil {
			for range q {
			}
			return
		}
		defer func() {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
		}()
		for c := range q {
			time.Sleep(time.Until(c.due))
			if !toHost {
				p.record(Chunk{At: p.now(), ToHost: false, Bytes: len(c.b)})
			}
			if _, err := dst.Write(c.b); err != nil {
				for range q {
				}
				return
			}
		}
	}()
	src := srcf()
	if src == nil {
		close(q)
		return
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if toHost {
				p.record(Chunk{At: p.now(), ToHost: true, Bytes: n})
			}
			due := time.Now().Add(p.Delay)
			if due.Before(open) {
				due = open
			}
			q <- chunk{due, append([]byte(nil), buf[:n]...)}
		}
		if err != nil {
			close(q)
			return
		}
	}
}

// Flight is a run of chunks in one direction with no gap longer than a
// third of the RTT: one message or a pipelined group of them.
type Flight struct {
	Start, End time.Duration
	ToHost     bool
	Bytes      int
	Chunks     int
}

// Flights groups a proxy log into flights.
func Flights(log []Chunk, rtt time.Duration) []Flight {
	var out []Flight
	for _, c := range sortChunks(log) {
		if n := len(out); n > 0 && out[n-1].ToHost == c.ToHost && c.At-out[n-1].End < rtt/3 {
			out[n-1].End = c.At
			out[n-1].Bytes += c.Bytes
			out[n-1].Chunks++
			continue
		}
		out = append(out, Flight{Start: c.At, End: c.At, ToHost: c.ToHost, Bytes: c.Bytes, Chunks: 1})
	}
	return out
}

func sortChunks(log []Chunk) []Chunk {
	s := append([]Chunk(nil), log...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].At < s[j-1].At; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// WriteFlights prints flights with their start in RTTs from the dial.
func WriteFlights(w io.Writer, fl []Flight, rtt time.Duration) {
	for _, f := range fl {
		dir := "host → controller"
		if f.ToHost {
			dir = "controller → host"
		}
		fmt.Fprintf(w, "  %6.2f RTT  %-18s %7d bytes in %d chunk(s)\n", float64(f.Start)/float64(rtt), dir, f.Bytes, f.Chunks)
	}
}

// Turns counts the controller's flights that follow a flight from the
// host: the times the controller had to hear from the host before it could
// go on, which is what costs a round trip each.
func Turns(fl []Flight) int {
	n := 0
	for i, f := range fl {
		if f.ToHost && i > 0 && !fl[i-1].ToHost {
			n++
		}
	}
	return n
}
