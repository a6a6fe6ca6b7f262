// Package wire is the protocol between controller and agent over an SSH
// channel's stdin/stdout: length-prefixed frames carrying JSON messages,
// compressed when large. Everything read is treated as hostile: sizes are
// checked before allocation, decompression is bounded by the same limit, and
// only known message types are decoded.
//
// A frame is
//
//	length  uint32 big-endian  (bytes of payload, excluding this header)
//	type    byte               (low 7 bits: Type; high bit: payload is zstd)
//	payload [length]byte       (JSON of the message)
package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

const (
	// DefaultMaxFrame bounds a frame's payload, compressed or not. Plans
	// carry small files inline, so this is generous; big files travel as
	// FileChunks.
	DefaultMaxFrame = 64 << 20
	// DefaultCompressAbove is the JSON size from which payloads are
	// compressed; below it zstd costs more CPU than it saves in bytes.
	DefaultCompressAbove = 4 << 10

	headerSize     = 5
	compressedFlag = 0x80
)

// Options tune a Conn. Zero values mean the defaults.
type Options struct {
	// MaxFrame is the largest payload accepted or sent, both on the wire and
	// after decompression.
	MaxFrame int
	// CompressAbove is the JSON size above which payloads are compressed.
	// Negative disables compression.
	CompressAbove int
}

// Conn sends and receives messages over a byte stream. Send is safe for
// concurrent use; Recv must be called from one goroutine at a time.
type Conn struct {
	r    io.Reader
	w    io.Writer
	opts Options

	wmu sync.Mutex

	header [headerSize]byte
}

// One zstd encoder, and one decoder per frame limit, serve every Conn of
// the process: a coder holds megabytes of tables, and a controller holds a
// Conn per host for the whole run (1.6 MiB per host when each Conn had its
// own). EncodeAll and DecodeAll are safe for concurrent use; each coder
// keeps at most GOMAXPROCS states.
var (
	coderMu  sync.Mutex
	encoder  *zstd.Encoder
	decoders = map[int]*zstd.Decoder{}
)

func sharedEncoder() (*zstd.Encoder, error) {
	coderMu.Lock()
	defer coderMu.Unlock()
	if encoder == nil {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
		if err != nil {
			return nil, err
		}
		encoder = e
	}
	return encoder, nil
}

// sharedDecoder is the decoder for frames of at most maxFrame bytes: it
// refuses windows and output beyond that.
func sharedDecoder(maxFrame int) (*zstd.Decoder, error) {
	coderMu.Lock()
	defer coderMu.Unlock()
	if d := decoders[maxFrame]; d != nil {
		return d, nil
	}
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderMaxMemory(uint64(maxFrame)),
		zstd.WithDecoderMaxWindow(max(uint64(maxFrame), zstd.MinWindowSize)))
	if err != nil {
		return nil, err
	}
	decoders[maxFrame] = d
	return d, nil
}

// NewConn wraps a stream. It does not take ownership: closing r and w is the
// caller's job.
func NewConn(r io.Reader, w io.Writer, opts Options) *Conn {
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = DefaultMaxFrame
	}
	if opts.CompressAbove == 0 {
		opts.CompressAbove = DefaultCompressAbove
	}
	return &Conn{r: r, w: w, opts: opts}
}

// Send writes one message as one frame. JSON encoding happens outside the
// lock so that concurrent senders only serialise on the write itself.
func (c *Conn) Send(msg Message) error {
	if msg == nil {
		return errors.New("wire: send: nil message")
	}
	t := msg.Type()
	var payload []byte
	var err error
	compress := c.opts.CompressAbove > 0
	if re, ok := msg.(rawEncoder); ok { // binary.go: bulk data skips JSON
		payload = re.appendRaw(nil)
		compress = compress && re.compressible()
	} else if payload, err = json.Marshal(msg); err != nil {
		return fmt.Errorf("wire: send %s: %w", t, err)
	}
	typeByte := byte(t)

	c.wmu.Lock()
	defer c.wmu.Unlock()
	if compress && len(payload) > c.opts.CompressAbove {
		enc, err := sharedEncoder()
		if err != nil {
			return fmt.Errorf("wire: send %s: %w", t, err)
		}
		if len(payload) > c.opts.MaxFrame {
			// The peer would refuse to inflate it, even if it compresses well.
			return &TooLargeError{Type: t, Size: len(payload), Limit: c.opts.MaxFrame}
		}
		payload = enc.EncodeAll(payload, make([]byte, 0, len(payload)/4+64))
		typeByte |= compressedFlag
	}
	if len(payload) > c.opts.MaxFrame {
		return &TooLargeError{Type: t, Size: len(payload), Limit: c.opts.MaxFrame}
	}
	// One Write per frame: a writer that is itself shared (or a pipe) never
	// sees a frame interleaved with another.
	frame := make([]byte, headerSize+len(payload))
	binary.BigEndian.PutUint32(frame, uint32(len(payload)))
	frame[4] = typeByte
	copy(frame[headerSize:], payload)
	if _, err := c.w.Write(frame); err != nil {
		return fmt.Errorf("wire: send %s: %w", t, err)
	}
	return nil
}

// Recv reads the next message. It returns io.EOF, unwrapped, when the stream
// ends cleanly between frames; a stream ending inside a frame is an error
// wrapping io.ErrUnexpectedEOF.
func (c *Conn) Recv() (Message, error) {
	if _, err := io.ReadFull(c.r, c.header[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("wire: reading frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(c.header[:4])
	t := Type(c.header[4] &^ compressedFlag)
	compressed := c.header[4]&compressedFlag != 0
	msg := newMessage(t)
	if msg == nil {
		return nil, fmt.Errorf("wire: unknown message type %d (is the peer a newer herd?)", c.header[4]&^compressedFlag)
	}
	if uint64(n) > uint64(c.opts.MaxFrame) {
		return nil, fmt.Errorf("wire: %s frame of %d bytes exceeds the limit of %d bytes", t, n, c.opts.MaxFrame)
	}
	// Grow the buffer as bytes arrive rather than trusting the header: a
	// peer announcing 64 MiB and sending nothing costs us nothing.
	buf := bytes.NewBuffer(make([]byte, 0, min(int(n), 1<<20)))
	if got, err := io.CopyN(buf, c.r, int64(n)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("wire: reading %s frame of %d bytes (got %d): %w", t, n, got, err)
	}
	payload := buf.Bytes()
	if compressed {
		var err error
		payload, err = c.decompress(payload)
		if err != nil {
			return nil, fmt.Errorf("wire: decompressing %s frame: %w", t, err)
		}
	}
	var err error
	if rd, ok := msg.(rawDecoder); ok {
		err = rd.decodeRaw(payload)
	} else {
		err = json.Unmarshal(payload, msg)
	}
	if err != nil {
		return nil, fmt.Errorf("wire: decoding %s message: %w", t, err)
	}
	return msg, nil
}

// decompress inflates a payload, refusing output beyond MaxFrame so that a
// small frame cannot expand into a memory bomb.
func (c *Conn) decompress(b []byte) ([]byte, error) {
	dec, err := sharedDecoder(c.opts.MaxFrame)
	if err != nil {
		return nil, err
	}
	out, err := dec.DecodeAll(b, nil)
	if err != nil {
		return nil, err
	}
	if len(out) > c.opts.MaxFrame {
		return nil, fmt.Errorf("decompressed size %d exceeds the limit of %d bytes", len(out), c.opts.MaxFrame)
	}
	return out, nil
}
