package policy

import (
	"bytes"
	"errors"
	"fmt"
)

// maxInline bounds one string argument of a resource (file content=, a
// command) and one rendered template. They travel inside the plan, whose
// wire frame is limited to 64 MiB, and a policy that builds hundreds of MB
// is a bug that should stop at its line, not as an out-of-memory
// controller or an unexplained failure on the wire. Bigger files belong in
// a file served by hash (source=).
const maxInline = 16 << 20

func inlineTooLarge(what, key string, n int) error {
	return fmt.Errorf("%s: %s is %.1f MiB; inline values are limited to %d MiB (put large content in a file and use source=)",
		what, key, float64(n)/(1<<20), maxInline>>20)
}

var errTemplateTooLarge = errors.New("output too large")

// cappedBuffer fails a write that would take it past maxInline, which
// stops a runaway template (a range over a huge list) at the cap.
type cappedBuffer struct{ bytes.Buffer }

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if c.Len()+len(p) > maxInline {
		return 0, errTemplateTooLarge
	}
	return c.Buffer.Write(p)
}
