package policy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRunawayEvaluationStops(t *testing.T) {
	dir := t.TempDir()
	loop := "x = []\nfor i in range(1000000000):\n    x.append(i % 7)\n    x.pop()\n"
	tests := []struct {
		name, src string
		stop      bool
		maxSteps  uint64
		want      string
	}{
		{"the step limit ends a loop at the top level", loop, false, 1_000_000,
			": evaluation exceeded 1000000 steps (an endless loop?); raise the limit with --max-steps"},
		{"the default step limit ends a loop too", loop, false, 0,
			": evaluation exceeded 10000000 steps"},
		{"a stop ends a loop at once", loop, true, 1 << 62, ": interrupted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "p.star")
			os.WriteFile(path, []byte(tt.src), 0o644)
			stop := make(chan struct{})
			if tt.stop {
				time.AfterFunc(100*time.Millisecond, func() { close(stop) })
			}
			start := time.Now()
			_, err := Load(path, LoadOptions{MaxSteps: tt.maxSteps, Stop: stop})
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if !regexp.MustCompile(`^` + regexp.QuoteMeta(path) + `:[234]:\d+: `).MatchString(err.Error()) {
				t.Errorf("err = %v, want it to name the loop's file:line", err)
			}
			if took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			t.Logf("%v after %v", err, took)
		})
	}
}
