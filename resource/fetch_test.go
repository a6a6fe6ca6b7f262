package resource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/herd-project/herd/plan"
)

// store stands in for the controller's file server: it serves contents by
// hash, from an offset, and records what was asked.
type store struct {
	mu      sync.Mutex
	files   map[string][]byte
	offsets []int64 // one per request
	sent    int64
	// cutAfter, when > 0, fails a request after that many bytes, as a lost
	// connection would, with cutErr (default "connection lost").
	cutAfter int64
	cutErr   error
}

func newStore(contents ...[]byte) *store {
	s := &store{files: map[string][]byte{}}
	for _, c := range contents {
		s.files[plan.Hash(c)] = c
	}
	return s
}

func (s *store) fetch(ctx context.Context, h string, off int64, w io.Writer) error {
	s.mu.Lock()
	b, ok := s.files[h]
	s.offsets = append(s.offsets, off)
	cut := s.cutAfter
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("refused: %s", h)
	}
	data := b[off:]
	if cut > 0 && int64(len(data)) > cut {
		data = data[:cut]
	}
	for len(data) > 0 {
		n := min(len(data), 64<<10)
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		s.mu.Lock()
		s.sent += int64(n)
		s.mu.Unlock()
		data = data[n:]
	}
	if cut > 0 && int64(len(b))-off > cut {
		if s.cutErr != nil {
			return s.cutErr
		}
		return errors.New("connection lost")
	}
	return nil
}

func (s *store) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.offsets)
}

func (s *store) env(t *testing.T) *Env {
	e := testEnv(t)
	e.Fetch = s.fetch
	return e
}

func remoteFile(t *testing.T, path string, content []byte, extra plan.Params) Resource {
	p := plan.Params{"blob": plan.Hash(content), "size": int64(len(content))}
	for k, v := range extra {
		p[k] = v
	}
	return build(t, "file", path, p, nil)
}

func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".herd-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// A file fetched by hash is compared by sha256 on the target: once it is
// there, no byte is requested again, and a mode change touches metadata only.
func TestRemoteFileIsFetchedOnlyWhenItDiffers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.bin")
	content := bigContent(7, 3<<20+5)
	s := newStore(content)
	env := s.env(t)

	r := remoteFile(t, path, content, plan.Params{"mode": "0640"})
	if c := applyIdempotent(t, r, env); !c.Changed || c.Summary != "create" {
		t.Fatalf("first apply: %+v", c)
	}
	if got := hashFile(t, path); got != hashFile(t, writeTemp(t, content)) {
		t.Fatal("content differs after fetch")
	}
	if s.requests() != 1 || s.sent != int64(len(content)) {
		t.Fatalf("requests=%d sent=%d", s.requests(), s.sent)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino

	r = remoteFile(t, path, content, plan.Params{"mode": "0600"})
	c := mustApply(t, r, env)
	if c.Summary != "mode 0640→0600" || s.requests() != 1 {
		t.Fatalf("metadata change: %+v, requests=%d", c, s.requests())
	}
	fi, _ = os.Stat(path)
	if fi.Sys().(*syscall.Stat_t).Ino != ino {
		t.Error("metadata-only change rewrote the file")
	}
	if c := mustCheck(t, r, env); c.Changed || s.requests() != 1 {
		t.Fatalf("re-run: %+v requests=%d", c, s.requests())
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}
}

// A transfer cut by a lost connection keeps the old file and a partial
// named after the content; the next run resumes from the partial's size
// and leaves nothing behind.
func TestCutTransferKeepsOldFileAndResumes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.tar")
	writeFile(t, path, "old\n", 0o644)
	content := bigContent(9, 2<<20)
	s := newStore(content)
	s.cutAfter = 1 << 20
	env := s.env(t)
	r := remoteFile(t, path, content, nil)

	// The agent process dies with the connection: simulate by failing the
	// fetch and keeping the partial as a killed process would.
	tmp := partialName(path, plan.Hash(content))
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.fetch(context.Background(), plan.Hash(content), 0, f); err == nil {
		t.Fatal("cut fetch succeeded")
	}
	f.Close()
	if b, _ := os.ReadFile(path); string(b) != "old\n" {
		t.Fatalf("old file changed: %q", b)
	}

	s.cutAfter = 0
	applyIdempotent(t, r, env)
	if got := s.offsets[len(s.offsets)-1]; got != 1<<20 {
		t.Errorf("resumed at %d, want %d", got, 1<<20)
	}
	if b, _ := os.ReadFile(path); plan.Hash(b) != plan.Hash(content) {
		t.Fatal("resumed content is wrong")
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}
}

// A fetch that fails while the agent lives leaves the old file. An
// interruption (connection lost, controller gone, run cancelled) keeps the
// partial, and the next run resumes from it; a refusal by the controller
// removes it.
func TestFailedFetchLeavesOldFileAndKeepsOnlyResumablePartials(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantKept bool
	}{
		{"connection lost", errors.New("connection to the controller lost: EOF"), true},
		{"run cancelled", context.Canceled, true},
		{"refused by the controller", RefusedError("not in this plan"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			writeFile(t, path, "old\n", 0o644)
			content := bigContent(3, 1<<20)
			s := newStore(content)
			s.cutAfter, s.cutErr = 300<<10, tt.err
			env := s.env(t)
			r := remoteFile(t, path, content, nil)
			if _, err := r.Apply(context.Background(), env); err == nil {
				t.Fatal("apply succeeded")
			}
			if b, _ := os.ReadFile(path); string(b) != "old\n" {
				t.Fatalf("old file changed: %q", b)
			}
			fi, err := os.Stat(partialName(path, plan.Hash(content)))
			if kept := err == nil; kept != tt.wantKept {
				t.Fatalf("partial kept: %v, want %v (stat: %v)", kept, tt.wantKept, err)
			}
			if tt.wantKept && fi.Size() != 300<<10 {
				t.Errorf("partial has %d bytes, want %d", fi.Size(), 300<<10)
			}
			if !tt.wantKept {
				if l := leftovers(t, dir); len(l) > 0 {
					t.Errorf("temp files left: %v", l)
				}
				return
			}
			s.cutAfter = 0
			applyIdempotent(t, r, env)
			if got := s.offsets[len(s.offsets)-1]; got != 300<<10 {
				t.Errorf("resumed at %d, want %d", got, 300<<10)
			}
			if b, _ := os.ReadFile(path); plan.Hash(b) != plan.Hash(content) {
				t.Fatal("resumed content is wrong")
			}
			if l := leftovers(t, dir); len(l) > 0 {
				t.Errorf("temp files left: %v", l)
			}
		})
	}
}

// A partial whose bytes are wrong is detected by the final hash and the
// transfer restarts once from the beginning; partials of other contents for
// the same file are removed.
func TestBadPartialRestartsAndStalePartialsGo(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	content := bigContent(4, 1<<20)
	h := plan.Hash(content)
	writeFile(t, partialName(path, h), strings.Repeat("x", 1000), 0o600)
	stale := partialName(path, plan.Hash([]byte("older version")))
	writeFile(t, stale, "zzz", 0o600)
	s := newStore(content)
	applyIdempotent(t, remoteFile(t, path, content, nil), s.env(t))
	if fmt.Sprint(s.offsets) != "[1000 0]" {
		t.Errorf("offsets = %v, want a resume at 1000 then a restart at 0", s.offsets)
	}
	if b, _ := os.ReadFile(path); plan.Hash(b) != h {
		t.Fatal("content wrong")
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}
}

// Two runs writing different contents to one file at the same time (two
// controllers) leave one whole version, never a mix.
func TestConcurrentWritersNeverMix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	a, b := bigContent(5, 4<<20), bigContent(6, 4<<20)
	s := newStore(a, b)
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		for _, c := range [][]byte{a, b, a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := remoteFile(t, path, c, nil)
				if _, err := r.Apply(context.Background(), s.env(t)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		got, _ := os.ReadFile(path)
		if h := plan.Hash(got); h != plan.Hash(a) && h != plan.Hash(b) {
			t.Fatalf("round %d: mixed content", round)
		}
	}
	if l := leftovers(t, dir); len(l) > 0 {
		t.Errorf("temp files left: %v", l)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "want")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A symlink or hard link planted where the partial goes (a directory others
// can write to) is replaced, never written through.
func TestPlantedPartialIsNotWrittenThrough(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	writeFile(t, victim, "precious\n", 0o600)
	content := bigContent(8, 1<<20)
	for _, plant := range []func(string) error{
		func(p string) error { return os.Symlink(victim, p) },
		func(p string) error { return os.Link(victim, p) },
	} {
		path := filepath.Join(dir, "f")
		os.Remove(path)
		if err := plant(partialName(path, plan.Hash(content))); err != nil {
			t.Fatal(err)
		}
		s := newStore(content)
		applyIdempotent(t, remoteFile(t, path, content, nil), s.env(t))
		if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
			t.Fatal("the planted link's target was written")
		}
		if s.offsets[0] != 0 {
			t.Errorf("resumed from a planted file at %d", s.offsets[0])
		}
		if l := leftovers(t, dir); len(l) > 0 {
			t.Errorf("temp files left: %v", l)
		}
	}
}
