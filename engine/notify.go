package engine

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herd-project/herd/event"
	"github.com/herd-project/herd/resource"
	"github.com/herd-project/herd/safefile"
)

// Notifications are crash-proof (as in mgmt): when a notifier changes, the
// refresh it owes its targets is written to disk before the run moves on,
// and removed only once the target was refreshed. A run that stops in
// between — a failure upstream of the target, a cancelled run, a killed
// agent, a power cut — leaves the refresh pending, and the next run of the
// role delivers it, even if nothing changes then. Without this, a config
// file changed by a run that died would never get its service reloaded.

// pendingVersion is the format of the pending file.
const pendingVersion = 1

type pendingFile struct {
	Version int                 `json:"version"`
	Role    string              `json:"role"`
	Pending map[string][]string `json:"pending"` // target ID → notifier IDs
}

// pendingStore is the set of refreshes owed, per target. In check mode it
// lives in memory only.
type pendingStore struct {
	mu      sync.Mutex
	path    string
	role    string
	persist bool
	owed    map[string][]string
}

// pendingPath is one file per role, so roles sharing a machine (and the
// same resource IDs) do not deliver each other's refreshes.
func pendingPath(stateDir, role string) string {
	return filepath.Join(stateDir, "notify-"+fileSafe(role)+".json")
}

// fileSafe keeps readable role names as they are and hex-encodes others,
// so a role name can never walk out of the state directory.
func fileSafe(role string) string {
	ok := role != "" && !strings.HasPrefix(role, ".")
	for _, c := range role {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			ok = false
			break
		}
	}
	if ok {
		return role
	}
	return "x" + hex.EncodeToString([]byte(role))
}

func loadPending(stateDir, role string, persist bool) (*pendingStore, error) {
	s := &pendingStore{path: pendingPath(stateDir, role), role: role, persist: persist}
	owed, err := s.read()
	if err != nil {
		return nil, err
	}
	s.owed = owed
	return s, nil
}

// read returns what the pending file holds (nothing if there is none).
func (s *pendingStore) read() (map[string][]string, error) {
	owed := map[string][]string{}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return owed, nil
	}
	if err != nil {
		return nil, fmt.Errorf("engine: pending notifications: %w", err)
	}
	var f pendingFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("engine: pending notifications %s is corrupt (%v); fix or remove it, and refresh its targets by hand", s.path, err)
	}
	if f.Version != pendingVersion {
		return nil, fmt.Errorf("engine: pending notifications %s has version %d, this herd reads %d", s.path, f.Version, pendingVersion)
	}
	for target, from := range f.Pending {
		if len(from) > 0 {
			owed[target] = from
		}
	}
	return owed, nil
}

func (s *pendingStore) has(target string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.owed[target]) > 0
}

func (s *pendingStore) notifiers(target string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.owed[target])
}

// add records that from owes a refresh to each target, durably before it
// returns (in apply mode).
func (s *pendingStore) add(targets []string, from string) error {
	return s.update(func(owed map[string][]string) {
		for _, t := range targets {
			if !slices.Contains(owed[t], from) {
				owed[t] = append(owed[t], from)
				slices.Sort(owed[t])
			}
		}
	})
}

// clear forgets the refreshes that the notifiers from owed target, durably
// (in apply mode); nil from forgets all of target's. Refreshes recorded
// since from was read (by another run on this machine) stay.
func (s *pendingStore) clear(target string, from []string) error {
	return s.update(func(owed map[string][]string) {
		if from == nil {
			delete(owed, target)
			return
		}
		owed[target] = slices.DeleteFunc(owed[target], func(n string) bool { return slices.Contains(from, n) })
		if len(owed[target]) == 0 {
			delete(owed, target)
		}
	})
}

// update changes the set with edit. In apply mode it is a read-modify-write
// of the file under a lock on the state directory, so two runs that share
// the directory (the agent's run lock normally keeps them apart; a local
// run does not take it) merge their refreshes instead of overwriting each
// other's. The view in memory becomes the merged set.
func (s *pendingStore) update(edit func(map[string][]string)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.persist {
		edit(s.owed)
		return nil
	}
	unlock, err := lockDir(filepath.Dir(s.path), 10*time.Second)
	if err != nil {
		return err
	}
	defer unlock()
	owed, err := s.read()
	if err != nil {
		return err
	}
	edit(owed)
	if err := s.save(owed); err != nil {
		return err
	}
	s.owed = owed
	return nil
}

// save writes the whole set; the caller holds mu and the directory lock.
// An empty set removes the file so a clean machine has no leftover state.
func (s *pendingStore) save(owed map[string][]string) error {
	if len(owed) == 0 {
		err := os.Remove(s.path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return safefile.SyncDir(filepath.Dir(s.path))
	}
	b, err := json.MarshalIndent(pendingFile{Version: pendingVersion, Role: s.role, Pending: owed}, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(s.path, append(b, '\n'), 0o600, safefile.Keep, safefile.Keep)
}

// writeFile is safefile.WriteBytes; the unit tests of a full disk replace
// it (the lab test fills a real one).
var writeFile = safefile.WriteBytes

// lockDir takes an exclusive flock on directory dir, waiting at most wait
// (holders keep it only for one small read and write).
func lockDir(dir string, wait time.Duration) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("engine: lock %s: %w", dir, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("engine: lock %s: %w", dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dropStalePending forgets refreshes owed to resources that are no longer in
// the plan (renamed or removed from the policy) and says so: delivering one
// later to a resource that reappears would surprise more than losing it.
func (r *runner) dropStalePending() error {
	var stale []string
	r.pending.mu.Lock()
	for target := range r.pending.owed {
		if _, ok := r.prep.index[target]; !ok {
			stale = append(stale, target)
		}
	}
	r.pending.mu.Unlock()
	if len(stale) == 0 {
		return nil
	}
	slices.Sort(stale)
	for _, t := range stale {
		r.emit(event.Event{Type: event.Log, Resource: t, Check: r.o.Check,
			Msg: fmt.Sprintf("pending refresh of %s (from %s) dropped: %s is not in this plan",
				t, strings.Join(r.pending.notifiers(t), ", "), t)})
	}
	for _, t := range stale {
		if err := r.pending.clear(t, nil); err != nil {
			return fmt.Errorf("engine: pending notifications: %w", err)
		}
	}
	return nil
}

// deliverRefresh runs after the target's own check/apply. In check mode it
// only says a refresh would happen. Otherwise it calls Refresh (kinds with
// nothing to do on refresh just acknowledge it) and then clears the pending
// entry; if Refresh fails the entry stays for the next run.
func (r *runner) deliverRefresh(ctx context.Context, i int, inst resource.Resource, env *resource.Env) (resource.Change, error) {
	id := r.p.Resources[i].ID
	notifiers := r.pending.notifiers(id)
	from := "notified by " + strings.Join(notifiers, ", ")
	if r.o.Check {
		r.report(i, event.Event{Type: event.Refresh, Check: true, Msg: "would refresh (" + from + ")"}, true)
		return resource.Change{}, nil
	}
	var change resource.Change
	if rf, ok := inst.(resource.Refresher); ok {
		var err error
		change, err = r.withRetry(ctx, i, func(ctx context.Context) (resource.Change, error) {
			return rf.Refresh(ctx, env)
		})
		if err != nil {
			return change, fmt.Errorf("refresh (%s): %w", from, err)
		}
	}
	if err := r.pending.clear(id, notifiers); err != nil {
		return resource.Change{}, fmt.Errorf("refreshed, but clearing the pending refresh failed (it will be delivered again): %w", err)
	}
	msg := "refreshed (" + from + ")"
	if change.Summary != "" {
		msg = change.Summary + " (" + from + ")"
	}
	r.report(i, event.Event{Type: event.Refresh, Msg: msg, Stdout: change.Stdout, Stderr: change.Stderr}, change.Summary == "")
	// The refresh's output is on the Refresh event; keep it off the
	// terminal event so it is not shown twice.
	return resource.Change{Changed: change.Changed, Summary: change.Summary}, nil
}
