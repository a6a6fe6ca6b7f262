package agent

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/herd-project/herd/wire"
)

func TestRunLock(t *testing.T) {
	alice := &wire.RunLock{User: "alice", Host: "laptop", Pid: 42, Run: "run-a"}
	tests := []struct {
		name     string
		second   wire.RunLock
		release  time.Duration // the first run releases after this (0: never)
		wantErr  string        // regexp; "" for success
		minWait  time.Duration
		maxWait  time.Duration
		wantHeld bool // the second holds a lock of its own
	}{
		{"a second run fails after its wait, naming the holder",
			wire.RunLock{Wait: 300 * time.Millisecond, User: "bob", Host: "desk", Pid: 7, Run: "run-b"}, 0,
			`^locked by alice@laptop pid 42 since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: another herd run is applying to this host \(waited 300ms; see --lock-wait\)$`,
			300 * time.Millisecond, 2 * time.Second, false},
		{"a second run gets the lock when the first ends within its wait",
			wire.RunLock{Wait: 5 * time.Second, Run: "run-b"}, 200 * time.Millisecond, "",
			200 * time.Millisecond, 2 * time.Second, true},
		{"another agent of the same run does not wait",
			wire.RunLock{Wait: 5 * time.Second, Run: "run-a"}, 0, "",
			0, time.Second, false},
		{"no wait fails at once",
			wire.RunLock{Run: "run-b"}, 0, `^locked by alice@laptop pid 42 `,
			0, time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			first, err := TakeRunLock(context.Background(), dir, alice, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer first.Release()
			if tt.release > 0 {
				time.AfterFunc(tt.release, first.Release)
			}
			start := time.Now()
			second, err := TakeRunLock(context.Background(), dir, &tt.second, nil)
			took := time.Since(start)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("second run: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !regexp.MustCompile(tt.wantErr).MatchString(err.Error())) {
				t.Fatalf("second run: error %v, want %s", err, tt.wantErr)
			}
			if took < tt.minWait || took > tt.maxWait {
				t.Errorf("second run returned after %v, want %v..%v", took, tt.minWait, tt.maxWait)
			}
			if held := second != nil && second.f != nil; held != tt.wantHeld {
				t.Errorf("second run holds a lock: %v, want %v", held, tt.wantHeld)
			}
			second.Release()
		})
	}
}

// The holder's line is written for others to read; what a controller says
// about itself cannot put anything else there.
func TestRunLockHolderIsSanitised(t *testing.T) {
	dir := t.TempDir()
	l, err := TakeRunLock(context.Background(), dir, &wire.RunLock{User: "ev\x1b[31mil\nrun x", Host: "h h", Pid: 1, Run: "r"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	b, err := os.ReadFile(filepath.Join(dir, LockFile))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^ev\?\?31mil\?run\?x@h\?h pid 1 since \S+\nrun r\n$`).Match(b) {
		t.Errorf("lock file = %q", b)
	}
	if fi, _ := os.Stat(filepath.Join(dir, LockFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v", fi.Mode().Perm())
	}
}

// A wait ends at once when the controller goes away or the run is
// cancelled.
func TestRunLockWaitEndsWhenTheControllerGoes(t *testing.T) {
	dir := t.TempDir()
	first, err := TakeRunLock(context.Background(), dir, &wire.RunLock{Run: "a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	gone := make(chan struct{})
	time.AfterFunc(100*time.Millisecond, func() { close(gone) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, stop := range []struct {
		name string
		ctx  context.Context
		gone chan struct{}
	}{{"controller gone", context.Background(), gone}, {"cancelled", ctx, nil}} {
		if stop.gone == nil {
			time.AfterFunc(100*time.Millisecond, cancel)
		}
		start := time.Now()
		_, err := TakeRunLock(stop.ctx, dir, &wire.RunLock{Wait: time.Minute, Run: "b"}, stop.gone)
		if err == nil || time.Since(start) > 2*time.Second {
			t.Errorf("%s: waited %v, err %v", stop.name, time.Since(start), err)
		}
	}
}
