// The tests of package bootstrap that need a real transport live here, as
// an external test package, because the in-process sshd they run the
// bootstrap over (startSSHD) is transport's test helper.
package transport_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/bootstrap"
	"github.com/herd-project/herd/internal/transport"
)

// fakeAgent behaves like the real agent where Bootstrap can tell: it checks
// its own sha256 against --hash (removing itself and exiting 97 on a
// mismatch), speaks first, then echoes the protocol stream. The padding
// makes the transfer larger than any pipe or SSH window buffer.
func fakeAgent(t *testing.T) (gz, raw []byte, hash string) {
	pad := make([]byte, 400_000)
	rand.Read(pad)
	raw = []byte(`#!/bin/sh
[ "$1" = agent ] && [ "$2" = --hash ] || exit 2
sum=$(sha256sum "$0" | cut -d' ' -f1)
if [ "$sum" != "$3" ]; then rm -f "$0"; echo "agent: $0 does not match --hash, removed" >&2; exit 97; fi
echo AGENT-READY
exec cat
# ` + base64.StdEncoding.EncodeToString(pad) + "\n")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	sum := sha256.Sum256(raw)
	return buf.Bytes(), raw, hex.EncodeToString(sum[:])
}

type starter struct {
	name  string
	start func(ctx context.Context, cmd string) (*transport.Session, error)
}

// starters are the transports Bootstrap must work over.
func starters(t *testing.T) []starter {
	local := starter{"local", func(ctx context.Context, cmd string) (*transport.Session, error) {
		return transport.StartLocal(ctx, []string{"/bin/sh", "-c", cmd})
	}}
	if ssh := transport.SSHStarterForTests(t); ssh != nil {
		return []starter{local, {"ssh", ssh}}
	}
	return []starter{local}
}

// talk checks the session carries the agent's stream intact: its first line,
// then an echo of what we send.
func talk(t *testing.T, s *transport.Session) {
	t.Helper()
	go io.Copy(io.Discard, s.Stderr)
	first := make([]byte, len("AGENT-READY\n"))
	if _, err := io.ReadFull(s.Stdout, first); err != nil || string(first) != "AGENT-READY\n" {
		t.Fatalf("agent's first line = %q, %v", first, err)
	}
	io.WriteString(s.Stdin, "ping\n")
	echo := make([]byte, 5)
	if _, err := io.ReadFull(s.Stdout, echo); err != nil || string(echo) != "ping\n" {
		t.Fatalf("echo = %q, %v", echo, err)
	}
	s.Stdin.Close()
	if err := s.Wait(); err != nil {
		t.Fatalf("agent exit: %v", err)
	}
	s.Close()
}

func TestBootstrapInstallsThenUsesTheCache(t *testing.T) {
	gz, raw, hash := fakeAgent(t)
	for _, st := range starters(t) {
		t.Run(st.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dir := filepath.Join(t.TempDir(), "agents")
			start := func(cmd string) (*transport.Session, error) { return st.start(ctx, cmd) }
			sends := 0
			payload := func() ([]byte, []byte, error) { sends++; return gz, raw, nil }
			cached := filepath.Join(dir, hash, "herd")

			steps := []struct {
				name          string
				before        func()
				wantInstalled bool
			}{
				{"first run installs", nil, true},
				{"second run uses the cache", nil, false},
				{"a corrupt cached copy is replaced", func() {
					f, _ := os.OpenFile(cached, os.O_APPEND|os.O_WRONLY, 0)
					f.WriteString("# tampered\n")
					f.Close()
				}, true},
				{"a cached copy that is not executable is replaced", func() { os.Chmod(cached, 0o600) }, true},
				{"after the repair the cache is used again", nil, false},
			}
			for _, step := range steps {
				if step.before != nil {
					step.before()
				}
				before := sends
				s, installed, err := bootstrap.Start(ctx, start, hash, payload, dir)
				if err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				if installed != step.wantInstalled {
					t.Errorf("%s: installed = %v, want %v", step.name, installed, step.wantInstalled)
				}
				if asked := sends > before; asked != step.wantInstalled {
					t.Errorf("%s: binary asked for = %v, want %v (only when it is sent)", step.name, asked, step.wantInstalled)
				}
				talk(t, s)
				got, err := os.ReadFile(cached)
				if err != nil || !bytes.Equal(got, raw) {
					t.Fatalf("%s: cached agent differs from the one sent (%v)", step.name, err)
				}
			}
			for _, p := range []string{cached, filepath.Dir(cached)} {
				if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o700 {
					t.Errorf("%s has mode %v, want 0700", p, fi.Mode().Perm())
				}
			}
			if leftovers, _ := filepath.Glob(filepath.Join(dir, hash, ".herd.*")); len(leftovers) > 0 {
				t.Errorf("temp files left behind: %v", leftovers)
			}
		})
	}
}

// TestBootstrapWithoutGzip: a target without gzip gets the raw binary.
func TestBootstrapWithoutGzip(t *testing.T) {
	bin := t.TempDir()
	for _, tool := range []string{"mkdir", "head", "chmod", "mv", "rm", "sha256sum", "cut", "cat", "id", "find"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skip("needs " + tool)
		}
		os.Symlink(p, filepath.Join(bin, tool))
	}
	_, raw, hash := fakeAgent(t)
	dir := t.TempDir()
	start := func(cmd string) (*transport.Session, error) {
		return transport.StartLocal(context.Background(), []string{"/usr/bin/env", "PATH=" + bin, "/bin/sh", "-c", cmd})
	}
	// Corrupt gzip data would fail the install if the script asked for it.
	notGzip := []byte("not gzip data")
	s, installed, err := bootstrap.Start(context.Background(), start, hash, func() ([]byte, []byte, error) { return notGzip, raw, nil }, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !installed {
		t.Error("installed = false on an empty agent dir")
	}
	talk(t, s)
}

func TestBootstrapCompressesWhenOnlyRawIsGiven(t *testing.T) {
	_, raw, hash := fakeAgent(t)
	dir := t.TempDir()
	start := func(cmd string) (*transport.Session, error) {
		return transport.StartLocal(context.Background(), []string{"/bin/sh", "-c", cmd})
	}
	s, installed, err := bootstrap.Start(context.Background(), start, hash, func() ([]byte, []byte, error) { return nil, raw, nil }, dir)
	if err != nil || !installed {
		t.Fatalf("installed %v, err %v", installed, err)
	}
	talk(t, s)
}

// A binary the caller cannot produce fails at once: the target waits for
// it, so there is no word of the target's to wait for.
func TestBootstrapReportsAPayloadErrorWithoutWaitingForTheTarget(t *testing.T) {
	_, _, hash := fakeAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := func(cmd string) (*transport.Session, error) {
		return transport.StartLocal(ctx, []string{"/bin/sh", "-c", cmd})
	}
	_, installed, err := bootstrap.Start(ctx, start, hash, func() ([]byte, []byte, error) {
		return nil, nil, errors.New("agent binary changed on disk")
	}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "agent binary changed on disk") || installed {
		t.Fatalf("installed %v, err %v; want the payload's error", installed, err)
	}
	if ctx.Err() != nil {
		t.Fatal("Bootstrap waited for the target until the test's deadline")
	}
}

func TestBootstrapFailures(t *testing.T) {
	gz, raw, hash := fakeAgent(t)
	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, nil, 0o600)
	_, otherRaw, _ := fakeAgent(t) // valid script, but not the one hash names

	tests := []struct {
		name      string
		dir       string
		raw       []byte
		hash      string
		wantCode  int
		wantInErr []string
	}{
		{name: "agent dir cannot be created", dir: filepath.Join(notADir, "agents"), raw: raw, hash: hash,
			wantCode: bootstrap.ExitBootstrapFailed, wantInErr: []string{"installing the agent failed", "cannot create " + notADir}},
		{name: "binary that never matches its hash is tried twice, then reported", dir: t.TempDir(), raw: otherRaw, hash: hash,
			wantCode: bootstrap.ExitAgentCorrupt, wantInErr: []string{"self-check twice", "does not match --hash"}},
		{name: "malformed hash is refused before running anything", dir: t.TempDir(), raw: raw, hash: "../../etc",
			wantCode: -1, wantInErr: []string{`bad agent hash "../../etc"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			starts := 0
			start := func(cmd string) (*transport.Session, error) {
				starts++
				return transport.StartLocal(context.Background(), []string{"/bin/sh", "-c", cmd})
			}
			var gzArg []byte
			if bytes.Equal(tt.raw, raw) {
				gzArg = gz
			}
			_, _, err := bootstrap.Start(context.Background(), start, tt.hash, func() ([]byte, []byte, error) { return gzArg, tt.raw, nil }, tt.dir)
			if err == nil {
				t.Fatal("Bootstrap succeeded")
			}
			var exit *transport.ExitError
			if tt.wantCode >= 0 && (!errors.As(err, &exit) || exit.Code != tt.wantCode) {
				t.Errorf("err = %v, want exit code %d", err, tt.wantCode)
			}
			for _, s := range tt.wantInErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			if tt.wantCode == bootstrap.ExitAgentCorrupt && starts != 2 {
				t.Errorf("started %d times, want 2 (one retry)", starts)
			}
		})
	}
}

func TestBootstrapScriptIsOneShellLineSafeForAnyLoginShell(t *testing.T) {
	for _, dir := range []string{"", "~/herd agents", "/var/lib/herd's"} {
		s := bootstrap.Script("abc123", dir)
		if strings.ContainsAny(s, "\n!") {
			t.Errorf("script for %q has a newline or '!' (csh history): %s", dir, s)
		}
		if out, err := exec.Command("/bin/sh", "-n", "-c", s).CombinedOutput(); err != nil {
			t.Errorf("script for %q is not valid sh: %v %s", dir, err, out)
		}
	}
}

func TestBrokerCommandStartsTheBrokerOnBothPaths(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	cmd := "exec /bin/sh -c " + transport.ShellQuote(bootstrap.Script(hash, ""))
	got, err := bootstrap.BrokerCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	// Both the cached exec and the exec after an install start the broker.
	if n := strings.Count(got, ` agent --become --hash "$h"`); n != 2 || !strings.Contains(got, "h="+hash+";") {
		t.Errorf("broker starts = %d in %q, want 2", n, got)
	}
	if _, err := bootstrap.BrokerCommand("exec herd agent --hash " + hash); err == nil {
		t.Error("a command of another shape was rewritten; want an error")
	}
}

// The target's `uname -m` picks the build: each architecture gets its own
// binary and cache, and a machine herd has no agent for fails naming its
// architecture. uname is faked on PATH, as a host reporting aarch64 would.
func TestBootstrapPicksTheBuildForTheTargetsArchitecture(t *testing.T) {
	gzA, rawA, hashA := fakeAgent(t)
	gzB, rawB, hashB := fakeAgent(t)
	sent := map[string]int{}
	builds := []bootstrap.AgentBuild{
		{Arch: "amd64", Hash: hashA, Payload: func() ([]byte, []byte, error) { sent["amd64"]++; return gzA, rawA, nil }},
		{Arch: "arm64", Hash: hashB, Payload: func() ([]byte, []byte, error) { sent["arm64"]++; return gzB, rawB, nil }},
	}
	for _, tc := range []struct {
		uname, want, wantErr string
	}{
		{"x86_64", "amd64", ""},
		{"aarch64", "arm64", ""},
		{"aarch64", "", ""}, // cached now: nothing sent
		{"riscv64", "", "no agent for architecture riscv64 (uname -m) on this host; the controller has agents for: amd64, arm64"},
	} {
		bin := t.TempDir()
		os.WriteFile(filepath.Join(bin, "uname"), []byte("#!/bin/sh\necho "+tc.uname+"\n"), 0o755)
		dir := filepath.Join(t.TempDir(), "agents")
		if tc.want == "" && tc.wantErr == "" {
			dir = filepath.Join(os.TempDir(), "herd-arch-test-"+hashB[:8])
		} else if tc.want == "arm64" {
			dir = filepath.Join(os.TempDir(), "herd-arch-test-"+hashB[:8])
			os.RemoveAll(dir)
			t.Cleanup(func() { os.RemoveAll(dir) })
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := func(cmd string) (*transport.Session, error) {
			return transport.StartLocal(ctx, []string{"env", "PATH=" + bin + ":" + os.Getenv("PATH"), "/bin/sh", "-c", cmd})
		}
		before := map[string]int{"amd64": sent["amd64"], "arm64": sent["arm64"]}
		s, _, err := bootstrap.StartBuilds(ctx, start, builds, dir)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "no agent for this host's architecture") {
				t.Errorf("%s: err = %v, want %q", tc.uname, err, tc.wantErr)
			}
			cancel()
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.uname, err)
		}
		talk(t, s)
		cancel()
		for arch, n := range sent {
			if got, want := n-before[arch], map[bool]int{true: 1}[arch == tc.want]; got != want {
				t.Errorf("%s: sent %s %d times, want %d", tc.uname, arch, got, want)
			}
		}
		wantHash := map[string]string{"amd64": hashA, "arm64": hashB, "": hashB}[tc.want]
		if _, err := os.Stat(filepath.Join(dir, wantHash, "herd")); err != nil {
			t.Errorf("%s: the %s build is not cached under its hash: %v", tc.uname, tc.want, err)
		}
	}
}
