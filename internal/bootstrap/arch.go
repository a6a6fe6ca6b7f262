package bootstrap

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"

	"github.com/herd-project/herd/internal/transport"
)

// AgentBuild is one agent binary the controller can send: the Go
// architecture it was built for, its sha256 and its bytes (gzipped and
// raw; fetched only when a target has no cached copy).
type AgentBuild struct {
	Arch    string // GOARCH: amd64, arm64, arm, 386, ...
	Hash    string
	Payload func() (gz, raw []byte, err error)
}

// unameNames maps a GOARCH to the `uname -m` answers of Linux machines
// that run it, as sh case patterns.
var unameNames = map[string]string{
	"amd64":   "x86_64|amd64",
	"arm64":   "aarch64|arm64",
	"arm":     "armv6l|armv7l|armv7*|armv8l", // a GOARM=6 build runs on all of them
	"386":     "i386|i486|i586|i686",
	"riscv64": "riscv64",
	"ppc64le": "ppc64le",
	"s390x":   "s390x",
}

// UnameNames says which `uname -m` answers select the build for goarch
// ("" if herd does not know the architecture).
func UnameNames(goarch string) string { return unameNames[goarch] }

// archSelect is the shell that sets h to the hash of the build for the
// target's `uname -m`, or fails with ExitNoAgentForArch naming the
// machine's architecture and what this controller has.
func archSelect(builds []AgentBuild) (string, error) {
	var b strings.Builder
	// Targets promise /bin/sh and nothing else: an image or chroot without
	// uname gets the controller's own architecture (m stays empty), and a
	// wrong guess fails at exec with the kernel's "Exec format error".
	b.WriteString(`m=; if command -v uname >/dev/null 2>&1; then m=$(uname -m); fi; case "$m" in `)
	var have []string
	native := ""
	for _, bd := range builds {
		pat := unameNames[bd.Arch]
		if pat == "" {
			return "", fmt.Errorf("agent for %q: unknown architecture (herd knows %s)", bd.Arch, strings.Join(KnownArchs(), ", "))
		}
		fmt.Fprintf(&b, "%s) h=%s;; ", pat, transport.ShellQuote(bd.Hash))
		have = append(have, bd.Arch)
		if bd.Arch == runtime.GOARCH || (native == "" && len(builds) == 1) {
			native = bd.Hash
		}
	}
	if native != "" {
		fmt.Fprintf(&b, `"") h=%s;; `, transport.ShellQuote(native))
	}
	sort.Strings(have)
	fmt.Fprintf(&b, `*) echo "herd bootstrap: no agent for architecture $m (uname -m) on this host; the controller has agents for: %s" >&2; exit %d;; esac`,
		strings.Join(have, ", "), ExitNoAgentForArch)
	return b.String(), nil
}

// KnownArchs lists the GOARCH values herd can select by `uname -m`.
func KnownArchs() []string {
	var out []string
	for a := range unameNames {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// StartBuilds is Start for a choice of builds: the target's
// `uname -m` picks the build (each cached under its own hash), and a
// target whose architecture has none fails with a message naming it. The
// caller checks the agent's hello against the hashes of builds.
func StartBuilds(ctx context.Context, start func(cmd string) (*transport.Session, error), builds []AgentBuild, agentDir string) (*transport.Session, bool, error) {
	if len(builds) == 0 {
		return nil, false, fmt.Errorf("agent bootstrap: no agent binaries")
	}
	byHash := map[string]AgentBuild{}
	for _, bd := range builds {
		if err := checkHash(bd.Hash); err != nil {
			return nil, false, err
		}
		byHash[bd.Hash] = bd
	}
	sel, err := archSelect(builds)
	if err != nil {
		return nil, false, fmt.Errorf("agent bootstrap: %w", err)
	}
	cmd := "exec /bin/sh -c " + transport.ShellQuote(script(sel, true, agentDir))
	return run(ctx, start, cmd, func(hash string) (gz, raw []byte, err error) {
		bd, ok := byHash[hash]
		if !ok {
			return nil, nil, fmt.Errorf("the target asked for agent %.16s, which is none of ours", hash)
		}
		return bd.Payload()
	})
}
