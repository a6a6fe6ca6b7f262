package agent

import (
	"context"
	"sync"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/wire"
)

// mailbox keeps the other hosts' exports the controller pushed to this
// agent (wire.Collected), for the engine's resources that wait for them
// (engine.Collector). It lives as long as the agent: a value may arrive
// before the plan that waits for it. The latest value per role, host and
// name wins (watch mode pushes changes).
type mailbox struct {
	mu    sync.Mutex
	slots map[string]*slot
}

type slot struct {
	set   chan struct{} // closed once a value (or its absence) is known
	value string
	ok    bool
}

func newMailbox() *mailbox { return &mailbox{slots: map[string]*slot{}} }

func (m *mailbox) slot(key string) *slot {
	s := m.slots[key]
	if s == nil {
		s = &slot{set: make(chan struct{})}
		m.slots[key] = s
	}
	return s
}

// deliver records what the controller sent.
func (m *mailbox) deliver(c *wire.Collected) {
	key := (&plan.Collected{Role: c.Role, Host: c.Host, Name: c.Name}).Key()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.slot(key)
	select {
	case <-s.set:
		// Known already: a later value replaces it in place.
		s.value, s.ok = c.Value, !c.Missing
		return
	default:
	}
	s.value, s.ok = c.Value, !c.Missing
	close(s.set)
}

// Await implements engine.Collector.
func (m *mailbox) Await(ctx context.Context, c *plan.Collected) (string, bool, error) {
	m.mu.Lock()
	s := m.slot(c.Key())
	m.mu.Unlock()
	select {
	case <-s.set:
		m.mu.Lock()
		defer m.mu.Unlock()
		return s.value, s.ok, nil
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
}
