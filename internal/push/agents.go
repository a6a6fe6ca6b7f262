package push

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/herd-project/herd/internal/bootstrap"
	"github.com/herd-project/herd/internal/build"
)

// An agent directory (--agent-dir-local) holds agent builds for the
// architectures of the fleet, named herd-linux-<GOARCH> (herd-linux-arm64,
// herd-linux-amd64, ...), and a SHA256SUMS file in sha256sum's format
// listing every one of them. herd checks each binary against SHA256SUMS
// when the run starts (a mismatch is exit 2, before any host is
// contacted); a target's `uname -m` then picks its build (bootstrap.
// StartBuilds), and the agent's hello must report one of these hashes.
// The controller's own binary serves its own architecture unless the
// directory has a build for it (a stripped release build, say).
//
// Every build must come from this herd's source (checkAgent): a lean
// herd-agent (the default to build) or a whole herd. Make one with the
// release build commands in the README:
//
//	GOOS=linux GOARCH=arm64 go build -trimpath -ldflags "-s -w" -o agents/herd-linux-arm64 ./cmd/herd-agent
//	(cd agents && sha256sum herd-linux-* > SHA256SUMS)

// AgentSumsFile lists the sha256 of every build in an agent directory.
const AgentSumsFile = "SHA256SUMS"

// LoadAgentDir reads and verifies an agent directory.
func LoadAgentDir(dir string) ([]*Binary, error) {
	sums := filepath.Join(dir, AgentSumsFile)
	f, err := os.Open(sums)
	if err != nil {
		return nil, fmt.Errorf("agent directory: %w (want %s listing herd-linux-<arch> builds)", err, AgentSumsFile)
	}
	defer f.Close()
	var out []*Binary
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimSpace(name), "*")
		where := fmt.Sprintf("%s:%d", sums, n)
		if !ok || len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("%s: want \"<sha256>  herd-linux-<arch>\", got %q", where, line)
		}
		arch, ok := strings.CutPrefix(name, "herd-linux-")
		if !ok || strings.Contains(name, "/") || bootstrap.UnameNames(arch) == "" {
			return nil, fmt.Errorf("%s: %q: want herd-linux-<arch> with arch one of %s", where, name, strings.Join(bootstrap.KnownArchs(), ", "))
		}
		if seen[arch] {
			return nil, fmt.Errorf("%s: a second build for %s", where, arch)
		}
		seen[arch] = true
		b := &Binary{Path: filepath.Join(dir, name), Arch: arch}
		got, err := b.Hash()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if got != sum {
			return nil, fmt.Errorf("%s: %s has sha256 %s, not the %s listed: refusing to ship it", where, name, got, sum)
		}
		if err := checkAgent(b.Path, arch, build.AgentMain, build.HerdMain); err != nil {
			return nil, fmt.Errorf("%s: %s: %v; refusing to ship it", where, b.Path, err)
		}
		out = append(out, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", sums, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no builds", sums)
	}
	return out, nil
}

// AgentSet is every build a run can send: self (DefaultAgent: the lean
// agent beside herd, or herd itself) for the controller's architecture, and
// the agent directory's builds, which win.
func AgentSet(self *Binary, more []*Binary) []*Binary {
	if self.Arch == "" {
		self.Arch = runtime.GOARCH
	}
	byArch := map[string]*Binary{self.Arch: self}
	for _, b := range more {
		byArch[b.Arch] = b
	}
	out := make([]*Binary, 0, len(byArch))
	for _, b := range byArch {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Arch < out[j].Arch })
	return out
}

// builds turns an agent set into what the bootstrap needs.
func builds(set []*Binary) ([]bootstrap.AgentBuild, error) {
	out := make([]bootstrap.AgentBuild, 0, len(set))
	for _, b := range set {
		h, err := b.Hash()
		if err != nil {
			return nil, err
		}
		out = append(out, bootstrap.AgentBuild{Arch: b.Arch, Hash: h, Payload: b.Payload})
	}
	return out, nil
}
