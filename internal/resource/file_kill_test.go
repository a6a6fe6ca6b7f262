package resource

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/plan"
)

const (
	killTestEnv  = "HERD_TEST_KILLED_WRITER_PATH"
	killTestSize = 128 << 20
)

// bigContent is deterministic so parent and child agree without sharing it.
func bigContent(seed uint64, size int) []byte {
	b := make([]byte, size)
	x := seed | 1
	for i := 0; i+8 <= size; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
	return b
}

// TestHelperKilledWriter is the child of TestKilledApplyLeavesOldOrNew: it
// applies a file resource whose content is a large blob, through the same
// path the agent uses, and is SIGKILLed by its parent somewhere in the write.
func TestHelperKilledWriter(t *testing.T) {
	path := os.Getenv(killTestEnv)
	if path == "" {
		t.Skip("helper process for TestKilledApplyLeavesOldOrNew")
	}
	content := bigContent(2, killTestSize)
	h := plan.Hash(content)
	r, err := New(plan.Resource{Kind: "file", Name: path, Params: plan.Params{"blob": h, "mode": "0640"}},
		map[string][]byte{h: content})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(context.Background(), &Env{}); err != nil {
		t.Fatal(err)
	}
}

func hashFile(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// TestKilledApplyLeavesOldOrNew is the acceptance test for atomic writes: an
// apply killed with SIGKILL at any point of writing a large file leaves
// exactly the old or the new content, never a mix.
func TestKilledApplyLeavesOldOrNew(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 128 MiB several times")
	}
	oldContent := bigContent(1, 3<<20)
	oldSum := sha256.Sum256(oldContent)
	newSum := sha256.Sum256(bigContent(2, killTestSize))

	dir := t.TempDir()
	path := filepath.Join(dir, "big")
	// Kill when the temp file has reached these sizes; -1 lets the child
	// finish, which proves the child really writes the new content.
	killAt := []int64{0, 1 << 20, 16 << 20, 64 << 20, 120 << 20, killTestSize, -1}
	midWrite := 0
	for _, at := range killAt {
		if err := os.WriteFile(path, oldContent, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperKilledWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), killTestEnv+"="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()

		var waitErr error
		if at < 0 {
			waitErr = <-done
			if waitErr != nil {
				t.Fatalf("child that was not killed failed: %v", waitErr)
			}
		} else {
			waitErr = killWhenTempReaches(t, dir, at, cmd.Process, done)
		}
		leftTemp, _ := filepath.Glob(filepath.Join(dir, ".herd-tmp-big-*"))
		if len(leftTemp) > 0 {
			midWrite++
		}

		got := hashFile(t, path)
		switch got {
		case oldSum:
			t.Logf("killed at %d bytes (%v): old content, %d temp files left", at, waitErr, len(leftTemp))
		case newSum:
			t.Logf("killed at %d bytes (%v): new content", at, waitErr)
		default:
			t.Fatalf("killed at %d bytes: destination is torn (neither old nor new content)", at)
		}
		if at < 0 && got != newSum {
			t.Fatal("child finished but the new content is not there")
		}
		for _, p := range leftTemp {
			os.Remove(p)
		}
	}
	if midWrite == 0 {
		t.Fatal("no kill landed during a write; the test proved nothing (machine too fast?)")
	}
}

// killWhenTempReaches polls the child's temp file and SIGKILLs the child as
// soon as it holds at least size bytes (or the child ends by itself).
func killWhenTempReaches(t *testing.T, dir string, size int64, p *os.Process, done chan error) error {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return err // finished before we saw the threshold
		default:
		}
		tmps, _ := filepath.Glob(filepath.Join(dir, ".herd-tmp-big-*"))
		for _, tmp := range tmps {
			if fi, err := os.Stat(tmp); err == nil && fi.Size() >= size {
				p.Signal(syscall.SIGKILL)
				return <-done
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	p.Signal(syscall.SIGKILL)
	<-done
	t.Fatal("child never wrote its temp file")
	return nil
}
