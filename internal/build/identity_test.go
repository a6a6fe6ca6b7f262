package build

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestMatchRefusesAnotherBuild(t *testing.T) {
	const mod = "github.com/herd-project/herd"
	ours := func() *debug.BuildInfo {
		return &debug.BuildInfo{Path: mod + "/cmd/herd", Main: debug.Module{Path: mod, Version: "v1.2.0"},
			Deps:     []*debug.Module{{Path: "golang.org/x/crypto", Version: "v0.59.0"}, {Path: "go.starlark.net", Version: "v0.1"}},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "aaaa1111bbbb2222"}, {Key: "vcs.modified", Value: "false"}}}
	}
	cases := []struct {
		name    string
		change  func(*debug.BuildInfo)
		wantErr string
	}{
		{"same build", func(*debug.BuildInfo) {}, ""},
		{"another module", func(b *debug.BuildInfo) { b.Main.Path = "example.com/fork"; b.Path = "example.com/fork/cmd/herd-agent" }, `module "example.com/fork"`},
		{"not the agent", func(b *debug.BuildInfo) { b.Path = mod + "/cmd/herd-bench" }, "cmd/herd-bench, not a herd agent build"},
		{"another version", func(b *debug.BuildInfo) { b.Main.Version = "v1.1.0" }, "herd v1.1.0, this is herd v1.2.0"},
		{"another revision", func(b *debug.BuildInfo) { b.Settings[0].Value = "cccc3333dddd4444" }, "revision cccc3333dddd, this herd from revision aaaa1111bbbb"},
		{"local changes", func(b *debug.BuildInfo) { b.Settings[1].Value = "true" }, "with local changes"},
		{"no vcs", func(b *debug.BuildInfo) { b.Settings = nil }, "without VCS information"},
		{"another dependency", func(b *debug.BuildInfo) { b.Deps[0].Version = "v0.58.0" }, "golang.org/x/crypto v0.58.0, this herd v0.59.0"},
		{"fewer dependencies", func(b *debug.BuildInfo) { b.Deps = b.Deps[:1] }, ""},
	}
	for _, c := range cases {
		theirs := ours()
		theirs.Path = mod + "/cmd/herd-agent"
		c.change(theirs)
		err := Match(ours(), theirs, AgentMain)
		if c.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v, want a match", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.wantErr)
		}
	}
}

func TestFormatVersion(t *testing.T) {
	cases := []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3 go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "45a85f3c0ffee0123456789"}, {Key: "vcs.time", Value: "2026-12-01T21:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		}}, "(devel) revision 45a85f3c0ffe+modified 2026-12-01T21:00:00Z go1.26.8"},
		{debug.BuildInfo{}, "(devel)"},
	}
	for _, c := range cases {
		if got := FormatVersion(&c.bi); got != c.want {
			t.Errorf("FormatVersion = %q, want %q", got, c.want)
		}
	}
}
