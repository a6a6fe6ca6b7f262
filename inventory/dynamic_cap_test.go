package inventory

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// A dynamic inventory that prints without end (a bug, or hundreds of MB)
// must fail with an error naming the script, soon, and without the
// controller's memory growing far past the cap.
func TestDynamicInventoryOutputIsCapped(t *testing.T) {
	dir := project(t, map[string]string{"inv.sh": "#!/bin/sh\nprintf '{\"web\": {\"hosts\": ['\ncat /dev/zero\n"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := LoadContext(ctx, filepath.Join(dir, "inv.sh"))
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	if want := "inv.sh --list: output exceeds 64 MiB"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if took > 20*time.Second {
		t.Errorf("Load took %s: the script was drained instead of stopped", took)
	}
	alloc := (after.TotalAlloc - before.TotalAlloc) >> 20
	t.Logf("stopped after %s, %d MiB allocated in total", took.Round(time.Millisecond), alloc)
	if alloc > 256 {
		t.Errorf("Load allocated %d MiB for a 64 MiB cap", alloc)
	}
}
