package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func owner(t *testing.T, path string) (uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, TempPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWriteReplacesContentModeAndOwner(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	tests := []struct {
		name     string
		existing bool
		perm     os.FileMode
		uid, gid int
		wantUID  int
		wantGID  int
	}{
		{"new file gets exact mode despite umask", false, 0o644, Keep, Keep, os.Getuid(), os.Getgid()},
		{"setuid and sticky bits survive", false, 0o755 | os.ModeSetuid | os.ModeSticky, Keep, Keep, os.Getuid(), os.Getgid()},
		{"explicit owner on new file", false, 0o600, 65534, 65534, 65534, 65534},
		{"Keep keeps the existing owner", true, 0o640, Keep, Keep, 65534, 65534},
		{"explicit owner replaces existing owner", true, 0o640, 0, Keep, 0, 65534},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if tt.existing {
				if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(path, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			}
			perm := tt.perm
			if err := WriteBytes(path, []byte("new\n"), perm, tt.uid, tt.gid); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			if string(b) != "new\n" {
				t.Errorf("content = %q", b)
			}
			fi, _ := os.Lstat(path)
			if fi.Mode() != perm {
				t.Errorf("mode = %v, want %v", fi.Mode(), perm)
			}
			uid, gid := owner(t, path)
			if uid != tt.wantUID || gid != tt.wantGID {
				t.Errorf("owner = %d:%d, want %d:%d", uid, gid, tt.wantUID, tt.wantGID)
			}
			if left := tempFiles(t, filepath.Dir(path)); len(left) > 0 {
				t.Errorf("temp files left: %v", left)
			}
		})
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		n := min(len(p), r.n)
		for i := range n {
			p[i] = 'x'
		}
		r.n -= n
		return n, nil
	}
	return 0, errors.New("source broke")
}

func TestWriteErrorLeavesDestinationAndNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte("old"), 0o644)

	err := Write(path, &failingReader{n: 100000}, 0o644, Keep, Keep)
	if err == nil || !strings.Contains(err.Error(), "source broke") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want it to name %s and the cause", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("destination changed to %q", b)
	}
	if left := tempFiles(t, dir); len(left) > 0 {
		t.Errorf("temp files left: %v", left)
	}

	err = WriteBytes(filepath.Join(dir, "missing", "f"), []byte("x"), 0o644, Keep, Keep)
	if err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestCleanStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a")
	mine := filepath.Join(dir, TempName("a"))
	fresh := filepath.Join(dir, TempName("a"))
	other := filepath.Join(dir, TempName("a-b")) // temp of another file
	unrelated := filepath.Join(dir, TempPrefix+"a-notrandom")
	for _, p := range []string{mine, fresh, other, unrelated} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{mine, other, unrelated} {
		os.Chtimes(p, old, old)
	}

	removed, err := CleanStale(path, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != mine {
		t.Fatalf("removed = %v, want only %s", removed, mine)
	}
	for _, p := range []string{fresh, other, unrelated} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s should be kept: %v", p, err)
		}
	}
	if removed, err := CleanStale(filepath.Join(dir, "nodir", "x"), 0); err != nil || removed != nil {
		t.Errorf("missing dir: %v %v", removed, err)
	}
}
