package main

import (
	"runtime/debug"
	"testing"
)

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
		if got := formatVersion(&c.bi); got != c.want {
			t.Errorf("formatVersion = %q, want %q", got, c.want)
		}
	}
	// The running binary has build info; it names the toolchain.
	if v := version(); v == "(unknown build)" {
		t.Errorf("version() = %q", v)
	}
}
