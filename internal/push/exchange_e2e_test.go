package push_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/exchange"
	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/push"
)

// withExchange gives a run an embedded etcd under dir (started by the run,
// when the policy first needs it) in namespace "t".
func withExchange(o push.Options, dir string) push.Options {
	o.Exchange = embeddedAt(dir)
	return o
}

// embeddedAt opens an embedded member whose data lives in dir.
func embeddedAt(dir string) func(context.Context) (*exchange.Store, error) {
	return func(ctx context.Context) (*exchange.Store, error) {
		return exchange.Open(ctx, exchange.Config{DataDir: dir, Cluster: "t"})
	}
}

// externalAt reaches the member serving dir through its client socket, as
// a second controller reaches an external cluster.
func externalAt(dir string) func(context.Context) (*exchange.Store, error) {
	return func(ctx context.Context) (*exchange.Store, error) {
		return exchange.Open(ctx, exchange.Config{Endpoints: []string{"unix://" + dir + "/client.sock"}, Cluster: "t"})
	}
}

// oneFileProject is host1 alone, given one file to write at path: what
// the lock tests run while another controller holds host1.
func oneFileProject(t *testing.T, l *lab.Lab, path string) string {
	t.Helper()
	return project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": {"host1"}}),
		"site.star": `
inv = inventory("inventory.toml")
def main(host):
    file("` + path + `", content = "x\n")
role("r", hosts = inv.hosts, main = main)
`})
}

// aliceHolder is the other controller of the lock tests, named in refusals.
var aliceHolder = exchange.Holder{User: "alice", Controller: "laptop-a", Pid: 4242, Run: "other"}

// sharedMember starts, for the whole test, the member under dir that
// the runs under test reach with externalAt.
func sharedMember(t *testing.T, dir string) *exchange.Store {
	t.Helper()
	st, err := embeddedAt(dir)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func readOn(t *testing.T, tl interface{ ReadFile(string) ([]byte, error) }, path string) string {
	t.Helper()
	b, err := tl.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

// The seed's example (mgmt's remote2a/remote2b): each host writes its own
// file and exports one for the others; each ends up with both exported
// files, naming their exporter, in the first run; the second run changes
// nothing.
func TestExchangeSeedExportedFiles(t *testing.T) {
	l := flatLab(t)
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": {"host1", "host2"}}),
		"site.star": `
inv = inventory("inventory.toml")
def main(host):
    x = {"host1": "a", "host2": "b"}[host.name]
    directory("/tmp/exc-seed")
    file("/tmp/exc-seed/file1" + x, content = "i am file1" + x + "\n")
    export_resource("file", "/tmp/exc-seed/file2" + x, tag = "seed",
                    content = "i am file2%s, exported from host %s\n" % (x, x), mode = 0o640)
    collect_resources(kind = "file", tag = "seed")
role("seed", hosts = inv.hosts, main = main)
`})
	etcdDir := filepath.Join(t.TempDir(), "etcd")
	for i, wantChanged := range []bool{true, false} {
		rec := &recorder{}
		res := run(t, load(t, dir), withExchange(options(t, l, rec), etcdDir))
		c := total(res)
		if c.Failed != 0 || c.Unreachable != 0 {
			t.Fatalf("run %d: %+v\n%s", i+1, c, rec.dump())
		}
		if (c.Changed > 0) != wantChanged {
			t.Fatalf("run %d: changed=%d, want changes=%v\n%s", i+1, c.Changed, wantChanged, rec.dump())
		}
	}
	for _, h := range []string{"host1", "host2"} {
		lh := l.Host(h)
		if got := readOn(t, lh, "/tmp/exc-seed/file2a"); got != "i am file2a, exported from host a\n" {
			t.Fatalf("%s file2a = %q", h, got)
		}
		if got := readOn(t, lh, "/tmp/exc-seed/file2b"); got != "i am file2b, exported from host b\n" {
			t.Fatalf("%s file2b = %q", h, got)
		}
	}
	if _, err := l.Host("host1").ReadFile("/tmp/exc-seed/file1b"); err == nil {
		t.Fatal("host1 has host2's own (not exported) file")
	}
}

// Three hosts generate a key pair on the target, export the public half
// (a value only the target knows), and a later role collects the others'
// into a config file with their hostnames (facts of other hosts). The
// second run changes nothing; a run limited to one host still collects
// what the others exported earlier.
func TestExchangeCollectsGeneratedKeys(t *testing.T) {
	l := flatLab(t)
	hosts := []string{"host1", "host2", "host3"}
	for _, h := range hosts {
		l.Host(h).Exec(context.Background(), "rm", "-rf", "/etc/exc")
	}
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": hosts}),
		"site.star": `
inv = inventory("inventory.toml")
def keys(host):
    directory("/etc/exc", mode = 0o700)
    gen = exec("keygen", command = "ssh-keygen -q -t ed25519 -N '' -C " + host.name + " -f /etc/exc/id && cat /etc/exc/id.pub",
               creates = "/etc/exc/id")
    export("pubkey", gen.stdout)
def config(host):
    lines = []
    for h, key in sorted(collect("pubkey", hosts = inv.hosts).items()):
        if h != host.name:
            lines.append("%s %s %s" % (h, host_facts(h).hostname, key.strip()))
    file("/etc/exc/peers", content = "\n".join(lines) + "\n")
role("keys", hosts = inv.hosts, main = keys)
role("config", hosts = inv.hosts, main = config)
`})
	etcdDir := filepath.Join(t.TempDir(), "etcd")
	pol := load(t, dir)
	for i, wantChanged := range []bool{true, false} {
		rec := &recorder{}
		res := run(t, pol, withExchange(options(t, l, rec), etcdDir))
		c := total(res)
		if c.Failed != 0 || c.Unreachable != 0 || (c.Changed > 0) != wantChanged {
			t.Fatalf("run %d: %+v, want changes=%v\n%s", i+1, c, wantChanged, rec.dump())
		}
	}
	pub := map[string]string{}
	for _, h := range hosts {
		pub[h] = strings.TrimSpace(readOn(t, l.Host(h), "/etc/exc/id.pub"))
	}
	for _, h := range hosts {
		got := readOn(t, l.Host(h), "/etc/exc/peers")
		for _, o := range hosts {
			if o == h {
				if strings.Contains(got, pub[o]) {
					t.Fatalf("%s lists its own key:\n%s", h, got)
				}
				continue
			}
			if !strings.Contains(got, pub[o]) || !strings.Contains(got, o+" ") {
				t.Fatalf("%s's peers lack %s's key %q:\n%s", h, o, pub[o], got)
			}
		}
	}
	before := readOn(t, l.Host("host1"), "/etc/exc/peers")

	// host3 gets a new key; a run limited to host1 and host3 still lists
	// host2 from its earlier export, and host1 learns host3's new key.
	l.Host("host3").Exec(context.Background(), "rm", "-f", "/etc/exc/id", "/etc/exc/id.pub")
	rec := &recorder{}
	o := withExchange(options(t, l, rec), etcdDir)
	o.Limit = push.Limit{Hosts: []string{"host1", "host3"}}
	res := run(t, pol, o)
	if c := total(res); c.Failed != 0 || res.Hosts["host2"] != nil {
		t.Fatalf("limited run: %+v hosts %v\n%s", c, slices.Sorted(maps.Keys(res.Hosts)), rec.dump())
	}
	after := readOn(t, l.Host("host1"), "/etc/exc/peers")
	newKey := strings.TrimSpace(readOn(t, l.Host("host3"), "/etc/exc/id.pub"))
	if newKey == pub["host3"] || !strings.Contains(after, newKey) || !strings.Contains(after, pub["host2"]) {
		t.Fatalf("host1 peers after limited run:\n%s\nbefore:\n%s\nnew host3 key %q", after, before, newKey)
	}

	// What the store holds: one value per host, with host, run and time.
	st, err := embeddedAt(etcdDir)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	es, err := st.Find(context.Background(), exchange.Match{Kind: exchange.KindValue, Name: "pubkey"})
	if err != nil || len(es) != 3 {
		t.Fatalf("pubkey entries %d %v, want 3", len(es), err)
	}
	for _, e := range es {
		if e.Run == "" || e.Time.IsZero() || !strings.Contains(string(e.Data), "ssh-ed25519") {
			t.Fatalf("entry %+v lacks run, time or key", e)
		}
	}
	if fs, _ := st.Find(context.Background(), exchange.Match{Kind: exchange.KindFacts}); len(fs) != 3 {
		t.Fatalf("facts entries: %d, want 3", len(fs))
	}
}

// With a shared exchange, a run locks each host there before changing it:
// while another controller holds host1, the run waits --lock-wait, fails
// host1 naming the holder and changes nothing on it; once released, the
// next run applies.
func TestExchangeHostLockAcrossControllers(t *testing.T) {
	l := flatLab(t)
	l.Host("host1").Exec(context.Background(), "rm", "-f", "/tmp/exc-locked")
	dir := oneFileProject(t, l, "/tmp/exc-locked")
	ctx := context.Background()
	etcdDir := filepath.Join(t.TempDir(), "etcd")
	shared := sharedMember(t, etcdDir)
	other, err := shared.NewLocker(ctx, aliceHolder, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Lock(ctx, "host1", time.Second); err != nil {
		t.Fatal(err)
	}
	opts := func(rec *recorder) push.Options {
		o := options(t, l, rec)
		o.Exchange = externalAt(etcdDir)
		o.ExchangeLocks = true
		wait := 700 * time.Millisecond
		o.Defaults.LockWait = &wait
		return o
	}
	rec := &recorder{}
	res := run(t, load(t, dir), opts(rec))
	hr := res.Hosts["host1"]
	if hr == nil || !hr.Failed || !strings.Contains(hr.Err, "alice@laptop-a pid 4242") {
		t.Fatalf("host1 %+v, want failed naming alice@laptop-a pid 4242\n%s", hr, rec.dump())
	}
	if _, err := l.Host("host1").ReadFile("/tmp/exc-locked"); err == nil {
		t.Fatal("host1 was changed while another controller held its lock")
	}
	other.Close()
	rec = &recorder{}
	if res := run(t, load(t, dir), opts(rec)); res.Hosts["host1"].Failed {
		t.Fatalf("after release: %+v\n%s", res.Hosts["host1"], rec.dump())
	}
	if got := readOn(t, l.Host("host1"), "/tmp/exc-locked"); got != "x\n" {
		t.Fatalf("file = %q", got)
	}
}
