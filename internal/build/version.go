// Package build describes the running herd build and compares builds: the
// version line `herd version` and `herd-agent version` print, and the
// identity check the controller runs before it ships a separate agent
// binary (a lean herd-agent, or a build for another architecture). It
// reads only Go's build information, so both halves may import it.
package build

import (
	"runtime/debug"
	"strings"
)

// Version says which build this is, from the build info Go stamps into
// every binary (kept by -ldflags "-s -w"): the module version (a tag when
// installed with go install module@version, "(devel)" for a checkout), the
// VCS revision and whether the tree had local changes, and the Go
// toolchain.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown build)"
	}
	return FormatVersion(bi)
}

// FormatVersion is Version for any build info.
func FormatVersion(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	parts := []string{v}
	rev, when, modified := vcs(bi)
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified {
			rev += "+modified"
		}
		parts = append(parts, "revision "+rev)
	}
	if when != "" {
		parts = append(parts, when)
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	return strings.Join(parts, " ")
}

func vcs(bi *debug.BuildInfo) (rev, when string, modified bool) {
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return rev, when, modified
}
