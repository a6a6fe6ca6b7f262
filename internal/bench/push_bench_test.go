package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/agent"
	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/push"
	"github.com/herd-project/herd/internal/transport"
)

// TestMain lets this test binary stand in for herd on lab hosts: the
// bootstrap copies it there and runs it as "agent".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "agent" {
		os.Exit(agent.Main(context.Background(), os.Args[2:], os.Stderr))
	}
	os.Exit(m.Run())
}

// BenchmarkHundredExecs is lan1 in process: one lab host, 100 sequential
// exec steps, agent cached, connection set-up included (a fresh push.Run
// per iteration, as each herd apply is). cmd/herd-bench measures the CLI
// and the other scenarios.
//
//	go test ./internal/bench -run '^$' -bench HundredExecs -benchtime 5x
func BenchmarkHundredExecs(b *testing.B) {
	if ok, why := lab.Available(); !ok {
		b.Skip("lab: " + why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := lab.Up(ctx, lab.Spec{Name: fmt.Sprintf("bb%d", os.Getpid()%100000), Flat: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Down() })
	h := l.Hosts[0]
	// See cmd/herd-bench: the machine's /root/.bashrc is not the target's.
	if out, err := h.Exec(ctx, "sh", "-c", ": > /root/.bashrc"); err != nil {
		b.Fatalf("%s: %v: %s", h.Name, err, out)
	}
	p, err := WriteProject(b.TempDir(), []Target{{Name: h.Name, Addr: h.Addr, Port: h.Port, HostKey: h.HostKey}}, l.KeyFile, Steps)
	if err != nil {
		b.Fatal(err)
	}
	pol, err := policy.Load(p.Policy, policy.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	inv, err := inventory.LoadWith(p.Inventory, inventory.Options{})
	if err != nil {
		b.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	bin := &push.Binary{Path: exe}
	once := func() {
		res, err := push.Run(ctx, pol, push.Options{
			Inventory: inv,
			Agent:     bin,
			Defaults:  push.Defaults{KnownHosts: []string{p.KnownHosts}},
			Transport: transport.Config{SSHConfigFile: "none", NoAgent: true},
		})
		if err != nil {
			b.Fatal(err)
		}
		if c := res.Hosts[h.Name].Counts; c.Changed != Steps || c.Failed != 0 {
			b.Fatalf("%s: %+v, want %d changed", h.Name, c, Steps)
		}
	}
	once() // installs the agent in the host's cache
	for b.Loop() {
		once()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/Steps, "µs/step")
}
