package wire

import (
	"fmt"
	"io"
)

// Expect receives the next message and requires it to be a *T. A peer's
// *Error is returned as an error carrying its text, so callers waiting for a
// reply see why the peer gave up.
func Expect[T any, PT interface {
	*T
	Message
}](c *Conn) (PT, error) {
	msg, err := c.Recv()
	if err != nil {
		return nil, err
	}
	if m, ok := msg.(PT); ok {
		return m, nil
	}
	if e, ok := msg.(*Error); ok {
		return nil, &PeerError{Msg: e.Msg}
	}
	var want PT = new(T)
	return nil, fmt.Errorf("wire: expected %s message, got %s", want.Type(), msg.Type())
}

// PeerError is an Error message received where another message was expected.
type PeerError struct{ Msg string }

func (e *PeerError) Error() string { return "peer error: " + e.Msg }

// Handshake sends our Hello and reads the peer's, concurrently so that two
// peers on unbuffered pipes do not deadlock. It fails when the versions
// differ, naming both. If the peer never answers, the caller's timeout
// closes the stream, which also unblocks our pending send.
func (c *Conn) Handshake(ours Hello) (*Hello, error) {
	if ours.Version == 0 {
		ours.Version = Version
	}
	sent := make(chan error, 1)
	go func() { sent <- c.Send(&ours) }()
	theirs, err := Expect[Hello](c)
	if err != nil {
		if err == io.EOF {
			err = fmt.Errorf("wire: peer closed the connection before its hello: %w", io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	if err := <-sent; err != nil {
		return nil, err
	}
	if theirs.Version != ours.Version {
		return nil, &VersionError{Ours: ours.Version, Theirs: theirs.Version}
	}
	return theirs, nil
}

// VersionError means the two sides speak different protocol versions; the
// usual cause is a stale cached agent or an older controller.
type VersionError struct{ Ours, Theirs int }

func (e *VersionError) Error() string {
	return fmt.Sprintf("wire: protocol version mismatch: this side speaks version %d, the peer speaks version %d (upgrade the older herd)", e.Ours, e.Theirs)
}
