package build

import (
	"debug/buildinfo"
	"fmt"
	"runtime/debug"
)

// Agent main packages: a separate agent binary may be the lean agent or a
// whole herd built for another architecture.
const (
	AgentMain = "/cmd/herd-agent"
	HerdMain  = "/cmd/herd"
)

// CheckAgentFile reads the build information of the agent binary at path
// (of any architecture, without running it) and checks it comes from the
// same herd source as ours: the same module and version, the same VCS
// revision and modified flag, and for every module it links the version
// ours links. mains lists the main packages accepted, relative to the
// module ("/cmd/herd-agent"). The error says what differs, for one line
// that names the file.
func CheckAgentFile(path string, ours *debug.BuildInfo, mains ...string) (*debug.BuildInfo, error) {
	theirs, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("not a Go binary with build information (%v)", err)
	}
	return theirs, Match(ours, theirs, mains...)
}

// Match is CheckAgentFile's comparison.
func Match(ours, theirs *debug.BuildInfo, mains ...string) error {
	if theirs.Main.Path != ours.Main.Path {
		return fmt.Errorf("built from module %q, not %q", theirs.Main.Path, ours.Main.Path)
	}
	ok := false
	for _, m := range mains {
		ok = ok || theirs.Path == ours.Main.Path+m
	}
	if !ok {
		return fmt.Errorf("it is %s, not a herd agent build", theirs.Path)
	}
	if theirs.Main.Version != ours.Main.Version {
		return fmt.Errorf("it is herd %s, this is herd %s", theirs.Main.Version, ours.Main.Version)
	}
	r1, _, m1 := vcs(ours)
	r2, _, m2 := vcs(theirs)
	if r1 != r2 || m1 != m2 {
		return fmt.Errorf("built from %s, this herd from %s", describeRev(r2, m2), describeRev(r1, m1))
	}
	have := map[string]string{}
	for _, d := range ours.Deps {
		have[d.Path] = modVersion(d)
	}
	for _, d := range theirs.Deps {
		if v, ok := have[d.Path]; ok && v != modVersion(d) {
			return fmt.Errorf("it links %s %s, this herd %s", d.Path, modVersion(d), v)
		}
	}
	return nil
}

func modVersion(m *debug.Module) string {
	if m.Replace != nil {
		return m.Version + "=>" + m.Replace.Path + "@" + m.Replace.Version
	}
	return m.Version
}

func describeRev(rev string, modified bool) string {
	switch {
	case rev == "":
		return "a tree without VCS information"
	case modified:
		return "revision " + short(rev) + " with local changes"
	}
	return "revision " + short(rev)
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
