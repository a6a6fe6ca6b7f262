package transport

import (
	"io"
	"strings"
	"sync"
)

// Tail keeps the last bytes of a stream, a command's stderr, to explain a
// failure in one line.
type Tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

// NewTail keeps at most max bytes.
func NewTail(max int) *Tail { return &Tail{max: max} }

// Drain reads r to its end, keeping the tail; run it on its own goroutine.
func (t *Tail) Drain(r io.Reader) {
	b := make([]byte, 1024)
	for {
		n, err := r.Read(b)
		t.mu.Lock()
		t.buf = append(t.buf, b[:n]...)
		if len(t.buf) > t.max {
			t.buf = t.buf[len(t.buf)-t.max:]
		}
		t.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// String is what was kept so far, with whitespace runs (newlines too)
// folded into single spaces.
func (t *Tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(strings.Fields(string(t.buf)), " ")
}
