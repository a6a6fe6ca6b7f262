package exchange

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A controller SIGKILLed in the middle of publishing, while it holds a
// host lock on a 3-member cluster: every host's entries are whole (each
// publish is one transaction: all entries of one generation or the
// previous one, never a mix), the dead controller's lock frees itself
// within its lease's TTL, and the next controller's run converges.
func TestKilledControllerMidExchange(t *testing.T) {
	eps := startCluster(t)
	cmd := exec.Command(mustExecutable(t), "-test.run=^TestKillHelperController$")
	cmd.Env = append(os.Environ(), "HERD_XCH_KILL_ENDPOINTS="+strings.Join(eps, ","))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	gens := 0
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	for gens < 5 && lines.Scan() {
		if strings.HasPrefix(lines.Text(), "GEN ") {
			gens++
		}
	}
	deadline.Stop()
	if gens < 5 {
		t.Fatalf("the helper controller published %d generations", gens)
	}
	// Mid-publish: it publishes in a tight loop. SIGKILL, by PID.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed := time.Now()

	ctx := context.Background()
	s, err := Open(ctx, Config{Endpoints: eps[1:2], Cluster: "kill"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkWhole(t, s, 5, 8)

	l, err := s.NewLocker(ctx, Holder{User: "bob", Controller: "b", Pid: 2, Run: "next", Since: time.Now()}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Lock(ctx, "h0", 10*time.Second); err != nil {
		t.Fatalf("the killed controller's lock never expired: %v", err)
	}
	t.Logf("killed controller's lock expired %v after the kill", time.Since(killed).Round(time.Millisecond))
	// The next run converges: one more generation, whole everywhere.
	for h := 0; h < 5; h++ {
		if err := s.Publish(ctx, fmt.Sprintf("h%d", h), "r", genEntries(h, 8, 1_000_000), true); err != nil {
			t.Fatal(err)
		}
	}
	if g := checkWhole(t, s, 5, 8); g != 1_000_000 {
		t.Fatalf("after the next run: generation %d", g)
	}
}

func genEntries(host, n, gen int) []Entry {
	var es []Entry
	for i := 0; i < n; i++ {
		b, _ := json.Marshal(fmt.Sprintf("%d", gen))
		es = append(es, Entry{Kind: KindValue, Name: fmt.Sprintf("v%d", i), Host: fmt.Sprintf("h%d", host), Run: fmt.Sprintf("gen%d", gen), Time: time.Now(), Data: b})
	}
	return es
}

// checkWhole fails unless each of hosts has n entries of one generation;
// it returns the highest generation seen.
func checkWhole(t *testing.T, s *Store, hosts, n int) int {
	t.Helper()
	es, err := s.List(context.Background(), "value/")
	if err != nil {
		t.Fatal(err)
	}
	byHost := map[string]map[string]int{}
	for _, e := range es {
		if byHost[e.Host] == nil {
			byHost[e.Host] = map[string]int{}
		}
		byHost[e.Host][e.Run]++
	}
	top := 0
	for h := 0; h < hosts; h++ {
		runs := byHost[fmt.Sprintf("h%d", h)]
		if len(runs) != 1 {
			t.Fatalf("host h%d holds entries of %d runs %v: a half-written publish", h, len(runs), runs)
		}
		for run, c := range runs {
			if c != n {
				t.Fatalf("host h%d: %d entries of %s, want %d", h, c, run, n)
			}
			var g int
			fmt.Sscanf(run, "gen%d", &g)
			top = max(top, g)
		}
	}
	return top
}

// TestKillHelperController is the controller the test above kills: it
// locks h0 (TTL 2 s) and publishes generation after generation for five
// hosts until it dies. It does nothing without HERD_XCH_KILL_ENDPOINTS.
func TestKillHelperController(t *testing.T) {
	eps := os.Getenv("HERD_XCH_KILL_ENDPOINTS")
	if eps == "" {
		return
	}
	ctx := context.Background()
	s, err := Open(ctx, Config{Endpoints: strings.Split(eps, ",")[:1], Cluster: "kill"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.NewLocker(ctx, Holder{User: "alice", Controller: "a", Pid: os.Getpid(), Run: "dying", Since: time.Now()}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Lock(ctx, "h0", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	for gen := 1; ; gen++ {
		for h := 0; h < 5; h++ {
			if err := s.Publish(ctx, fmt.Sprintf("h%d", h), "r", genEntries(h, 8, gen), true); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Printf("GEN %d\n", gen)
	}
}

func mustExecutable(t *testing.T) string {
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
