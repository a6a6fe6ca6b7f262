package transport

import "io"

// NewSession wraps streams that are neither an SSH channel nor a local
// process — an agent reached through a relay — so that bootstrap.Start and the
// agent protocol run over them unchanged. wait and close have the meaning
// of Session.Wait and Session.Close.
func NewSession(stdin io.WriteCloser, stdout, stderr io.Reader, wait, close func() error) *Session {
	return &Session{Stdin: stdin, Stdout: stdout, Stderr: stderr, wait: wait, close: close}
}
