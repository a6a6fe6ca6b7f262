package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// herd watch sets up the exchange as herd apply does (an embedded etcd
// under ~/.herd/etcd here): a policy with export and collect runs instead
// of failing with "this run has no exchange". The command's output host1
// exports is known once it ran; the watch then gives host1 the collected
// value, and says so in --json, before the converged timeout ends it.
func TestWatchCommandExchange(t *testing.T) {
	l := getStopLab(t)
	herd := herdCommand(t)
	h := l.Host("host1")
	dir := t.TempDir()
	writeStopLabProject(t, l, dir, `inv = inventory("inventory.toml")
def main(h):
    c = exec("addr", command = "echo 10.1.2.3")
    export("addr", c.stdout)
    vals = collect("addr")
    file("/tmp/watch-xch", content = "".join(["%s=%s" % (k, vals[k]) for k in sorted(vals)]))
role("w", hosts = inv.hosts, main = main)
`, "host1")
	os.MkdirAll(filepath.Join(dir, "home"), 0o755)
	h.Exec(context.Background(), "rm", "-f", "/tmp/watch-xch")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, herd, "watch", "site.star", "--json", "--ssh-config", "none", "--known-hosts", l.KnownHosts, "--converged-timeout", "1s")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(dir, "home"), "NO_COLOR=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("herd watch: %v\n%s%s", err, out, stderr.String())
	}
	if !strings.Contains(stderr.String(), "herd: exchange: cluster inventory-") {
		t.Errorf("stderr does not name the exchange's cluster:\n%s", stderr.String())
	}
	if b, _ := h.ReadFile("/tmp/watch-xch"); string(b) != "host1=10.1.2.3\n" {
		t.Fatalf("/tmp/watch-xch = %q\n%s", b, out)
	}
	found := false
	for _, ln := range strings.Split(string(out), "\n") {
		var e struct{ Type, Host, Msg string }
		if json.Unmarshal([]byte(ln), &e) == nil && e.Type == "log" && e.Host == "host1" && strings.Contains(e.Msg, "collected value from host1 changed") {
			found = true
		}
	}
	if !found {
		t.Errorf("no JSON event naming the exporter:\n%s", out)
	}
}
