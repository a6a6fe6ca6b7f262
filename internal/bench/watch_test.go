package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"

	"github.com/herd-project/herd/internal/policy"
)

// The watch bench's policy plans a directory, the template and
// WatchFiles files per host.
func TestWatchPolicyPlans(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "site.star"), []byte(WatchPolicy()), 0o644)
	os.WriteFile(filepath.Join(dir, "app.conf.tmpl"), []byte(WatchTemplate(0, "")), 0o644)
	pol, err := policy.Load(filepath.Join(dir, "site.star"), policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := pol.Plan(pol.Roles[0], policy.Host{Name: "host1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Resources) != 2+WatchFiles {
		t.Errorf("%d resources, want %d", len(p.Resources), 2+WatchFiles)
	}
}

// Consecutive one-host edits change that host's rendering only; an
// every-host edit changes every host's.
func TestWatchTemplateEdits(t *testing.T) {
	render := func(n int, target, host string) string {
		tm := template.Must(template.New("t").Parse(WatchTemplate(n, target)))
		var b strings.Builder
		if err := tm.Execute(&b, map[string]any{"host": map[string]any{"name": host}}); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	hosts := []string{"host1", "host2", "host3"}
	for n := 1; n <= 3; n++ {
		for _, h := range hosts {
			changed := render(n, "host1", h) != render(n-1, "host1", h)
			if n == 1 {
				changed = render(1, "host1", h) != render(0, "", h)
			}
			if changed != (h == "host1") {
				t.Errorf("one-host edit %d: %s changed = %v", n, h, changed)
			}
			if render(n+3, "", h) == render(n, "host1", h) {
				t.Errorf("every-host edit %d left %s as it was", n+3, h)
			}
		}
	}
}

// ParseProcStat reads this process's own counters.
func TestParseProcStat(t *testing.T) {
	stat, _ := os.ReadFile("/proc/self/stat")
	status, _ := os.ReadFile("/proc/self/status")
	ticks, rss, err := ParseProcStat(string(stat), string(status))
	if err != nil || ticks < 0 || rss <= 0 {
		t.Fatalf("ticks %d, rss %d, %v", ticks, rss, err)
	}
	if _, _, err := ParseProcStat("garbage", ""); err == nil {
		t.Error("garbage parsed")
	}
}
