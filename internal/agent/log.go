package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/herd-project/herd/internal/event"
)

// eventLog keeps the full event history on the target (~/.herd/herd.log) so
// an operator on the machine can see what herd did without the controller.
// It rotates by size: herd.log → herd.log.1 → … → herd.log.<keep>.
type eventLog struct {
	mu     sync.Mutex
	path   string
	max    int64
	keep   int
	f      *os.File
	size   int64
	broken error // first write error; logging never fails a run
}

func openEventLog(path string, max int64, keep int) *eventLog {
	l := &eventLog{path: path, max: max, keep: keep}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		l.broken = err
		return l
	}
	l.broken = l.open()
	return l
}

func (l *eventLog) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, st.Size()
	return nil
}

// Write appends one event as a JSON line. Events are already masked for
// no_log by the engine, so the log holds nothing the stream did not.
func (l *eventLog) Write(e event.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil || l.f == nil {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	b = append(b, '\n')
	if l.size+int64(len(b)) > l.max && l.size > 0 {
		if err := l.rotate(); err != nil {
			l.broken = err
			return
		}
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err != nil {
		l.broken = err
	}
}

func (l *eventLog) rotate() error {
	l.f.Close()
	l.f = nil
	for i := l.keep - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("%s.%d", l.path, i+1))
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil && !os.IsNotExist(err) {
		return err
	}
	return l.open()
}

func (l *eventLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		return l.f.Close()
	}
	return nil
}
