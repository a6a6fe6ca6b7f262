package push_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/facts"
	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/policy"
	"github.com/herd-project/herd/internal/push"
	"github.com/herd-project/herd/internal/transport"
	"github.com/herd-project/herd/internal/wire"
)

var fileLabs atomic.Int32

// fileLab is a private two-host lab for one file-transfer test.
func fileLab(t testing.TB) *lab.Lab {
	t.Helper()
	if ok, why := lab.Available(); !ok {
		t.Skip("lab: " + why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	name := fmt.Sprintf("f%d%c", os.Getpid()%100000, 'a'+fileLabs.Add(1)%26)
	l, err := lab.Up(ctx, lab.Spec{Name: name, Flat: 2})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() { l.Down() })
	return l
}

// writeRandom writes size pseudo-random (incompressible) bytes and returns
// their sha256.
func writeRandom(t testing.TB, path string, seed uint64, size int64) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sum := sha256.New()
	w := io.MultiWriter(f, sum)
	buf := make([]byte, 1<<20)
	x := seed*2 + 1
	for left := size; left > 0; {
		for i := 0; i+8 <= len(buf); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			binary.LittleEndian.PutUint64(buf[i:], x)
		}
		n := min(left, int64(len(buf)))
		if _, err := w.Write(buf[:n]); err != nil {
			t.Fatal(err)
		}
		left -= n
	}
	return hex.EncodeToString(sum.Sum(nil))
}

func hostHash(t testing.TB, h *lab.Host, p string) string {
	t.Helper()
	f, err := os.Open(h.Path(p))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.Copy(s, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(s.Sum(nil))
}

// herdTemps lists herd's temp and partial files under dir on a host.
func herdTemps(t testing.TB, h *lab.Host, dir string) []string {
	var out []string
	filepath.WalkDir(h.Path(dir), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".herd-") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// A 200 MiB file and a tree of 5,000 small files arrive intact (sha256 on
// the host's disk); the second run sends under 1% of the bytes and changes
// nothing; the large file's throughput is printed next to scp's.
func TestLargeFileAndTreeTransferAndRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("200 MiB transfer")
	}
	l := fileLab(t)
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"web": {"host1"}}),
		"site.star": `
inv = inventory("inventory.toml")
def web(host):
    directory("/srv/data", mode = 0o755)
    file("/srv/data/big.bin", source = "files/big.bin", mode = 0o640)
    copy("/srv/data/tree", source = "tree", delete_extra = True, mode = 0o644)
role("web", hosts = inv.hosts, main = web)
`,
	})
	bigHash := writeRandom(t, filepath.Join(dir, "files", "big.bin"), 1, 200<<20)
	tree := map[string]string{}
	for i := range 5000 {
		rel := fmt.Sprintf("d%02d/f%04d.txt", i%50, i)
		body := strings.Repeat(fmt.Sprintf("line %d of file %d\n", i%17, i), 1+i%40)
		tree[rel] = plan.Hash([]byte(body))
		p := filepath.Join(dir, "tree", rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pol := load(t, dir)
	h := l.Host("host1")

	rec := &recorder{}
	start := time.Now()
	res := run(t, pol, options(t, l, rec))
	first := time.Since(start)
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("first run failed:\n%s", rec.dump())
	}
	if got := hostHash(t, h, "/srv/data/big.bin"); got != bigHash {
		t.Fatalf("big.bin on host: sha256 %s, want %s", got, bigHash)
	}
	for rel, want := range tree {
		b, err := h.ReadFile("/srv/data/tree/" + rel)
		if err != nil || plan.Hash(b) != want {
			t.Fatalf("tree/%s on host: %v", rel, err)
		}
	}
	sent1 := res.Hosts["host1"].BytesSent
	t.Logf("first run: %v, %.1f MiB sent (%.1f MiB of file contents)", first.Round(time.Millisecond),
		float64(sent1)/(1<<20), float64(res.Hosts["host1"].FileBytes)/(1<<20))

	rec2 := &recorder{}
	res2 := run(t, pol, options(t, l, rec2))
	c := total(res2)
	sent2 := res2.Hosts["host1"].BytesSent
	t.Logf("second run: %d bytes sent (%.3f%% of the first), %+v", sent2, 100*float64(sent2)/float64(sent1), c)
	if c.Changed != 0 || c.Failed != 0 || c.OK != 3 {
		t.Fatalf("second run: %+v, want 3 ok and changed=0\n%s", c, rec2.dump())
	}
	if sent2*100 >= sent1 || res2.Hosts["host1"].FileBytes != 0 {
		t.Fatalf("second run sent %d bytes (%d of file content), first %d: want under 1%%", sent2, res2.Hosts["host1"].FileBytes, sent1)
	}
	if temps := herdTemps(t, h, "/srv/data"); len(temps) > 0 {
		t.Errorf("temp files left: %v", temps)
	}

	// Throughput of the large file alone, then scp of the same file.
	os.Remove(h.Path("/srv/data/big.bin"))
	rec3 := &recorder{}
	start = time.Now()
	res3 := run(t, pol, options(t, l, rec3))
	herdTime := time.Since(start)
	progress := "no progress report (reports come every 2 s)"
	for _, e := range rec3.events {
		if e.Type == event.Output && strings.HasPrefix(e.Msg, "received ") {
			progress = e.Msg // the last one sums up the transfer itself
		}
	}
	if res3.Hosts["host1"].FileBytes != 200<<20 {
		t.Fatalf("third run fetched %d bytes, want the big file only", res3.Hosts["host1"].FileBytes)
	}
	scpTime := scpCopy(t, l, h, filepath.Join(dir, "files", "big.bin"), "/tmp/scp.bin")
	if got := hostHash(t, h, "/tmp/scp.bin"); got != bigHash {
		t.Fatal("scp copy differs")
	}
	mib := float64(200)
	t.Logf("200 MiB file: herd push %.0f MiB/s (%v for the whole run: connect, plan, transfer, hash, fsync; agent: %s), scp %.0f MiB/s (%v)",
		mib/herdTime.Seconds(), herdTime.Round(time.Millisecond), progress, mib/scpTime.Seconds(), scpTime.Round(time.Millisecond))
}

// scpCopy copies src to the host with OpenSSH's scp and the lab's key, and
// returns how long it took.
func scpCopy(t testing.TB, l *lab.Lab, h *lab.Host, src, dst string) time.Duration {
	t.Helper()
	start := time.Now()
	out, err := exec.Command("scp", "-q", "-i", l.KeyFile, "-o", "UserKnownHostsFile="+l.KnownHosts,
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-F", "none",
		src, "root@"+h.Addr+":"+dst).CombinedOutput()
	if err != nil {
		t.Fatalf("scp: %v: %s", err, out)
	}
	return time.Since(start)
}

// Killing the agent in the middle of a transfer leaves the old file
// intact; the next run resumes from the partial file, and leaves no temp
// files.
func TestCutTransferKeepsOldFileAndResumes(t *testing.T) {
	l := fileLab(t)
	h := l.Host("host1")
	const size = 48 << 20
	dir := project(t, map[string]string{
		"site.star": `
inv = inventory("inventory.toml")
def web(host):
    file("/srv/app.bin", source = "files/" + host.vars.get("which", "old.bin"))
role("web", hosts = inv.hosts, main = web)
`,
	})
	writeRandom(t, filepath.Join(dir, "files", "old.bin"), 2, 200<<10)
	newHash := writeRandom(t, filepath.Join(dir, "files", "new.bin"), 3, size)
	oldHash := plan.Hash(must(os.ReadFile(filepath.Join(dir, "files", "old.bin"))))
	inventory := func(addr string, port int, which string) {
		body := fmt.Sprintf("[groups.g.hosts]\n\"host1\" = \"herd_host=%s herd_port=%d which=%s\"\n", addr, port, which)
		if err := os.WriteFile(filepath.Join(dir, "inventory.toml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Install the old version (and the agent, so the slow run below does
	// not spend its time copying the binary).
	inventory(h.Addr, 22, "old.bin")
	if res := run(t, load(t, dir), options(t, l, &recorder{})); total(res).Changed != 1 {
		t.Fatal("old version not installed")
	}

	// The new version goes through a 6 MiB/s proxy; the agent is killed
	// once a quarter has arrived.
	addr, stop, err := l.Latency(h, 0, 6<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	var port int
	fmt.Sscanf(addr[strings.LastIndex(addr, ":")+1:], "%d", &port)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", port, ssh.MarshalAuthorizedKey(h.HostKey))
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	inventory("127.0.0.1", port, "new.bin")
	o := options(t, l, &recorder{})
	o.Defaults.KnownHosts = []string{kh}
	killed := make(chan int64, 1)
	go func() {
		defer close(killed)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			matches, _ := filepath.Glob(h.Path("/srv/.herd-partial-app.bin-*"))
			if len(matches) == 1 {
				if fi, err := os.Stat(matches[0]); err == nil && fi.Size() > size/4 {
					h.Kill("herd agent")
					killed <- fi.Size()
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	res := run(t, load(t, dir), o)
	partial, ok := <-killed
	if !ok {
		t.Fatal("transfer never got a quarter through")
	}
	if hr := res.Hosts["host1"]; !hr.Unreachable && !hr.Failed {
		t.Fatalf("killed run succeeded: %+v", hr)
	}
	if got := hostHash(t, h, "/srv/app.bin"); got != oldHash {
		t.Fatal("old file changed by the cut transfer")
	}
	t.Logf("agent killed with %.1f MiB of %d MiB received", float64(partial)/(1<<20), size>>20)

	// Next run, direct: resumes, completes, cleans.
	inventory(h.Addr, 22, "new.bin")
	res = run(t, load(t, dir), options(t, l, &recorder{}))
	hr := res.Hosts["host1"]
	if hr.Failed || hr.Unreachable || hr.Counts.Changed != 1 {
		t.Fatalf("resumed run: %+v", hr)
	}
	if got := hostHash(t, h, "/srv/app.bin"); got != newHash {
		t.Fatal("resumed file is wrong")
	}
	if hr.FileBytes > size-partial+push256k {
		t.Errorf("resumed run fetched %d bytes, partial had %d of %d: not resumed", hr.FileBytes, partial, size)
	}
	if temps := herdTemps(t, h, "/srv"); len(temps) > 0 {
		t.Errorf("temp files left: %v", temps)
	}
}

// push256k is slack for a chunk written to the partial after it was measured.
const push256k = 1 << 20

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// The rogue agent: when this file exists on a lab host, the test binary
// run there as "agent" speaks the protocol but, given a plan, asks the
// controller for each request listed in the file and records the answers.
const (
	rogueRequests = "/tmp/herd-rogue-requests.json"
	rogueResults  = "/tmp/herd-rogue-results.json"
)

// rogueAgent is called by TestMain on the host; it reports whether it ran.
func rogueAgent(args []string) (code int, ran bool) {
	b, err := os.ReadFile(rogueRequests)
	if err != nil {
		return 0, false
	}
	var reqs []wire.FileRequest
	if err := json.Unmarshal(b, &reqs); err != nil {
		return 3, true
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	hash := fs.String("hash", "", "")
	fs.String("state-dir", "", "")
	fs.String("log", "", "")
	fs.Parse(args)
	c := wire.NewConn(os.Stdin, os.Stdout, wire.Options{})
	if _, err := c.Handshake(wire.Hello{Version: wire.Version, AgentHash: *hash, Facts: facts.Gather(), Pid: os.Getpid()}); err != nil {
		return 4, true
	}
	for {
		msg, err := c.Recv()
		if err != nil {
			return 0, true
		}
		if _, ok := msg.(*wire.RunPlan); !ok {
			return 0, true
		}
		var answers []string
		for i, r := range reqs {
			r.ID = uint64(i + 1)
			if err := c.Send(&r); err != nil {
				return 5, true
			}
			var got int
			for {
				m, err := c.Recv()
				if err != nil {
					return 6, true
				}
				ch, ok := m.(*wire.FileChunk)
				if !ok || ch.ID != r.ID {
					return 7, true
				}
				got += len(ch.Data)
				if ch.Error != "" {
					answers = append(answers, ch.Error)
					break
				}
				if ch.EOF {
					answers = append(answers, fmt.Sprintf("served %d bytes", got))
					break
				}
			}
		}
		out, _ := json.Marshal(answers)
		os.WriteFile(rogueResults, out, 0o600)
		c.Send(&wire.Done{})
	}
}

// A compromised target asking for anything outside its plan — paths, "..",
// files the policy may not serve, another role's file, bytes past the end —
// is refused every time, and every attempt is logged on the controller.
func TestRogueAgentIsRefusedAndLogged(t *testing.T) {
	l := fileLab(t)
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"web": {"host1"}, "db": {"host2"}}),
		"site.star": `
inv = inventory("inventory.toml")
def web(host):
    file("/srv/web.bin", source = "files/web.bin")
def db(host):
    file("/srv/db.bin", source = "files/db.bin")
role("web", hosts = inv.filter(groups = "web"), main = web)
role("db", hosts = inv.filter(groups = "db"), main = db)
`,
		"files/secret.bak": "old secret\n",
	})
	webHash := writeRandom(t, filepath.Join(dir, "files", "web.bin"), 4, 300<<10)
	dbHash := writeRandom(t, filepath.Join(dir, "files", "db.bin"), 5, 300<<10)
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "files", "escape")); err != nil {
		t.Fatal(err)
	}
	fileHash := func(p string) string { return plan.Hash(must(os.ReadFile(p))) }
	forbidden := []struct {
		what string
		req  wire.FileRequest
	}{
		{"dotdot path", wire.FileRequest{Hash: "../../../etc/passwd"}},
		{"absolute path", wire.FileRequest{Hash: "/etc/shadow"}},
		{"policy code", wire.FileRequest{Hash: fileHash(filepath.Join(dir, "site.star"))}},
		{"denied pattern", wire.FileRequest{Hash: fileHash(filepath.Join(dir, "files", "secret.bak"))}},
		{"outside the policy dir", wire.FileRequest{Hash: fileHash("/etc/hostname")}},
		{"symlink escape target", wire.FileRequest{Hash: fileHash(filepath.Join(dir, "files", "escape"))}},
		{"another role's file", wire.FileRequest{Hash: dbHash}},
		{"past the end of its own file", wire.FileRequest{Hash: webHash, Offset: 300<<10 + 1}},
	}
	var reqs []wire.FileRequest
	for _, f := range forbidden {
		reqs = append(reqs, f.req)
	}
	reqs = append(reqs, wire.FileRequest{Hash: webHash}) // the one thing it may have
	h1 := l.Host("host1")
	if err := os.WriteFile(h1.Path(rogueRequests), must(json.Marshal(reqs)), 0o600); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{}
	o := options(t, l, rec)
	o.Agent = testBinaryAgent(t) // the rogue runs from this test binary
	res := run(t, load(t, dir), o)
	var answers []string
	if err := json.Unmarshal(must(h1.ReadFile(rogueResults)), &answers); err != nil || len(answers) != len(reqs) {
		t.Fatalf("rogue answers: %q, %v\n%s", answers, err, rec.dump())
	}
	for i, f := range forbidden {
		if !strings.HasPrefix(answers[i], "refused: ") {
			t.Errorf("%s: answer %q, want a refusal", f.what, answers[i])
		}
	}
	if want := fmt.Sprintf("served %d bytes", 300<<10); answers[len(forbidden)] != want {
		t.Errorf("its own file: %q, want %q", answers[len(forbidden)], want)
	}
	if got := res.Hosts["host1"].Refused; got != len(forbidden) {
		t.Errorf("Refused = %d, want %d", got, len(forbidden))
	}
	logged := 0
	rec.mu.Lock()
	for _, e := range rec.events {
		if e.Type == event.Log && e.Host == "host1" && strings.Contains(e.Msg, "refused file request from host1") {
			logged++
		}
	}
	rec.mu.Unlock()
	if logged != len(forbidden) {
		t.Errorf("%d refusals logged, want %d\n%s", logged, len(forbidden), rec.dump())
	}
	// The honest agent of the other role got its file.
	if got := hostHash(t, l.Host("host2"), "/srv/db.bin"); got != dbHash {
		t.Error("db.bin not delivered to host2")
	}
}

// BenchmarkLargeFileTransfer pushes a 64 MiB file to a lab host per
// iteration and reports scp's throughput for the same file beside it.
func BenchmarkLargeFileTransfer(b *testing.B) {
	l := fileLab(b)
	h := l.Host("host1")
	dir := b.TempDir()
	for name, body := range map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"g": {"host1"}}),
		"site.star":      "inv = inventory(\"inventory.toml\")\ndef m(host):\n    file(\"/tmp/bench.bin\", source = \"big.bin\")\nrole(\"r\", hosts = inv.hosts, main = m)\n",
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	const size = 64 << 20
	writeRandom(b, filepath.Join(dir, "big.bin"), 6, size)
	pol, err := policy.Load(filepath.Join(dir, "site.star"), policy.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	o := push.Options{
		Agent:     &push.Binary{Path: must(os.Executable())},
		Defaults:  push.Defaults{SSHUser: "root", KeyFile: l.KeyFile, KnownHosts: []string{l.KnownHosts}},
		Transport: transport.Config{SSHConfigFile: "none", NoAgent: true, ConnectTimeout: 10 * time.Second},
	}
	ctx := context.Background()
	// Warm up: install the agent.
	os.Remove(h.Path("/tmp/bench.bin"))
	if _, err := push.Run(ctx, pol, o); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		os.Remove(h.Path("/tmp/bench.bin"))
		b.StartTimer()
		res, err := push.Run(ctx, pol, o)
		if err != nil || res.Hosts["host1"].FileBytes != size {
			b.Fatalf("push: %v %+v", err, res.Hosts["host1"])
		}
	}
	b.StopTimer()
	scp := scpCopy(b, l, h, filepath.Join(dir, "big.bin"), "/tmp/scp.bin")
	b.ReportMetric(float64(size)/(1<<20)/scp.Seconds(), "scp-MiB/s")
}
