package push_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/push"
	"github.com/herd-project/herd/internal/transport"
)

// lazyLab is a lab shared by the tests that need its topology, brought up
// on first use and taken down by TestMain (labs made by tests also die with
// the test process).
type lazyLab struct {
	mu   sync.Mutex
	spec lab.Spec
	lab  *lab.Lab
	err  error
}

func (z *lazyLab) get(t *testing.T) *lab.Lab {
	t.Helper()
	if ok, why := lab.Available(); !ok {
		t.Skip("lab: " + why)
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.lab == nil && z.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		start := time.Now()
		z.lab, z.err = lab.Up(ctx, z.spec)
		if z.err != nil {
			t.Fatalf("lab up: %v", z.err)
		}
		t.Logf("lab %s up: %d hosts in %v", z.spec.Name, len(z.lab.Hosts), time.Since(start).Round(time.Millisecond))
	}
	if z.err != nil {
		t.Fatalf("lab up: %v", z.err)
	}
	return z.lab
}

func (z *lazyLab) down() {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.lab != nil {
		z.lab.Down()
	}
}

// flat has ten flat hosts; tree is controller → bastion → racktop →
// rack1..10, plus two flat hosts, with rack hosts unreachable directly.
var (
	flat = &lazyLab{spec: lab.Spec{Name: fmt.Sprintf("p%d", os.Getpid()%100000), Flat: 10}}
	tree = &lazyLab{spec: lab.Spec{Name: fmt.Sprintf("r%d", os.Getpid()%100000), Flat: 2,
		Bastion: &lab.BastionSpec{RackTop: true, RackHosts: 10}}}
)

func flatLab(t *testing.T) *lab.Lab { return flat.get(t) }
func treeLab(t *testing.T) *lab.Lab { return tree.get(t) }

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []event.Event
}

func (r *recorder) sink(e event.Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }

func (r *recorder) hosts(t event.Type) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, e := range r.events {
		if e.Type == t && !seen[e.Host] {
			seen[e.Host] = true
			out = append(out, e.Host)
		}
	}
	sort.Strings(out)
	return out
}

func (r *recorder) count(host string, t event.Type) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Host == host && e.Type == t {
			n++
		}
	}
	return n
}

func (r *recorder) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.events {
		fmt.Fprintf(&b, "%s %s %s %s\n", e.Host, e.Type, e.Resource, e.Msg)
	}
	return b.String()
}

// project writes files (inventory, policy, templates) into a temp dir.
func project(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tomlInventory lists lab hosts in OpsMop's layout; groups maps a group to
// host names.
func tomlInventory(l *lab.Lab, groups map[string][]string) string {
	var b strings.Builder
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	for _, g := range names {
		fmt.Fprintf(&b, "[groups.%s.hosts]\n", g)
		for _, h := range groups[g] {
			addr := "127.0.0.1 herd_port=1" // unreachable placeholder
			if lh := l.Host(h); lh != nil {
				addr = lh.Addr
			}
			fmt.Fprintf(&b, "%q = \"herd_host=%s\"\n", h, addr)
		}
	}
	return b.String()
}

// agentBinary is what the tests ship to lab hosts: the lean herd-agent,
// built once for the package, as an installed herd ships it. It is a
// seventh of this test binary's size (which carries etcd and the tests),
// and every first contact uploads it and every agent start hashes it.
func agentBinary(t *testing.T) *push.Binary {
	path, _ := nativeAgent(t)
	return &push.Binary{Path: path}
}

// testBinaryAgent ships this test binary instead, for the tests whose
// hosts run a rogue agent or relay from it (TestMain).
func testBinaryAgent(t *testing.T) *push.Binary {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &push.Binary{Path: exe}
}

// options returns push options that log in as user with the lab's key and
// known_hosts and nothing from the user's own ssh setup.
func options(t *testing.T, l *lab.Lab, rec *recorder) push.Options {
	return push.Options{
		Sink:      rec.sink,
		Agent:     agentBinary(t),
		Defaults:  push.Defaults{SSHUser: "root", KeyFile: l.KeyFile, KnownHosts: []string{l.KnownHosts}},
		Transport: transport.Config{SSHConfigFile: "none", NoAgent: true, ConnectTimeout: 10 * time.Second},
	}
}

func load(t *testing.T, dir string) *policy.Policy {
	t.Helper()
	pol, err := policy.Load(filepath.Join(dir, "site.star"), policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func run(t *testing.T, pol *policy.Policy, o push.Options) *push.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := push.Run(ctx, pol, o)
	t.Logf("push.Run: %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("push.Run: %v", err)
	}
	return res
}

func hostNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i+1)
	}
	return out
}

func total(res *push.Result) event.Counts {
	var c event.Counts
	for _, h := range res.Hosts {
		c.Merge(h.Counts)
	}
	return c
}
