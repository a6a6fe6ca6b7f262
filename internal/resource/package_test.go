package resource

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

func TestParseInstalled(t *testing.T) {
	tests := []struct {
		name string
		m    pkgManager
		out  string
		want map[string]string
	}{
		{name: "dpkg: only state installed counts", m: managerApt,
			out: "doas\tinstall ok installed\t6.8.2-1\n" +
				"old\tdeinstall ok config-files\t1.0\n" +
				"broken\tinstall ok half-configured\t2.0\n" +
				"held\thold ok installed\t3.1\n" +
				"gone\tunknown ok not-installed\t\n",
			want: map[string]string{"doas": "6.8.2-1", "held": "3.1"}},
		{name: "dpkg: no packages found", m: managerDpkg, out: "", want: map[string]string{}},
		{name: "apk: names of installed packages", m: managerApk, out: "curl\nbusybox\n",
			want: map[string]string{"curl": "", "busybox": ""}},
		{name: "rpm: not-installed lines are ignored", m: managerDnf,
			out:  "bash\t5.2.15-5.fc39\npackage nope is not installed\n",
			want: map[string]string{"bash": "5.2.15-5.fc39"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.parseInstalled(tt.out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPackageCommandLines(t *testing.T) {
	apt := []string{"-y", "-q", "-o", "DPkg::Lock::Timeout=120", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name  string
		tool  func() (tool, error)
		argv  []string
		debFE bool // DEBIAN_FRONTEND=noninteractive set
	}{
		{"apt install names", func() (tool, error) { return managerApt.installTool([]string{"curl", "jq"}, "") },
			cat([]string{"apt-get", "install"}, apt, []string{"--no-install-recommends", "curl", "jq"}), true},
		{"apt install a .deb", func() (tool, error) { return managerApt.installTool(nil, "/tmp/x.deb") },
			cat([]string{"apt-get", "install"}, apt, []string{"--no-install-recommends", "/tmp/x.deb"}), true},
		{"dpkg install a .deb", func() (tool, error) { return managerDpkg.installTool(nil, "/tmp/x.deb") },
			[]string{"dpkg", "-i", "/tmp/x.deb"}, true},
		{"apt remove", func() (tool, error) { return managerApt.removeTool([]string{"doas"}, false), nil },
			cat([]string{"apt-get", "remove"}, apt, []string{"doas"}), true},
		{"apt purge", func() (tool, error) { return managerApt.removeTool([]string{"doas"}, true), nil },
			cat([]string{"apt-get", "purge"}, apt, []string{"doas"}), true},
		{"dpkg purge", func() (tool, error) { return managerDpkg.removeTool([]string{"doas"}, true), nil },
			[]string{"dpkg", "-P", "doas"}, true},
		{"apk add", func() (tool, error) { return managerApk.installTool([]string{"curl"}, "") },
			[]string{"apk", "add", "--no-progress", "curl"}, false},
		{"apk del", func() (tool, error) { return managerApk.removeTool([]string{"curl"}, false), nil },
			[]string{"apk", "del", "--no-progress", "curl"}, false},
		{"dnf install", func() (tool, error) { return managerDnf.installTool([]string{"curl"}, "") },
			[]string{"dnf", "install", "-y", "curl"}, false},
		{"dnf remove", func() (tool, error) { return managerDnf.removeTool([]string{"curl"}, false), nil },
			[]string{"dnf", "remove", "-y", "curl"}, false},
		{"dpkg query", func() (tool, error) { return managerApt.queryTool([]string{"a", "b"}), nil },
			[]string{"dpkg-query", "-W", "-f", `${Package}\t${Status}\t${Version}\n`, "a", "b"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl, err := tt.tool()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tl.argv, tt.argv) {
				t.Errorf("argv = %q\nwant   %q", tl.argv, tt.argv)
			}
			hasFE := false
			for _, e := range tl.env {
				hasFE = hasFE || e == "DEBIAN_FRONTEND=noninteractive"
			}
			if hasFE != tt.debFE {
				t.Errorf("env = %q, DEBIAN_FRONTEND wanted: %v", tl.env, tt.debFE)
			}
		})
	}
	if _, err := managerApk.installTool(nil, "/tmp/x.deb"); err == nil {
		t.Error("apk accepted a .deb")
	}
	if _, err := managerDpkg.installTool([]string{"curl"}, ""); err == nil {
		t.Error("dpkg without apt-get accepted an install by name")
	}
}

func TestDetectManager(t *testing.T) {
	// Each case is a PATH directory holding (empty, executable) programs
	// of those names: detection only looks at what exists.
	tests := []struct {
		progs []string
		want  pkgManager
	}{
		{[]string{"dpkg-query", "dpkg", "apt-get", "apk"}, managerApt},
		{[]string{"dpkg-query", "dpkg"}, managerDpkg},
		{[]string{"apk"}, managerApk},
		{[]string{"dnf", "rpm"}, managerDnf},
		{[]string{"rpm"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		for _, p := range tt.progs {
			writeFile(t, filepath.Join(dir, p), "", 0o755)
		}
		got, err := detectManager(dir)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("programs %v: got %q, %v; want %q", tt.progs, got, err, tt.want)
		}
	}
}

func TestPackageParams(t *testing.T) {
	k := build(t, "package", "tools", plan.Params{"names": []string{"jq", "curl", "jq"}}, nil).(*pkg)
	if !reflect.DeepEqual(k.names, []string{"curl", "jq"}) {
		t.Errorf("names = %q, want sorted and unique", k.names)
	}
	if k := build(t, "package", "curl", plan.Params{}, nil).(*pkg); !reflect.DeepEqual(k.names, []string{"curl"}) {
		t.Errorf("names = %q, want the resource name", k.names)
	}
	bad := []struct {
		name   string
		params plan.Params
		want   string
	}{
		{"x", plan.Params{"names": []string{"a"}, "deb": "/tmp/x.deb"}, "names and deb are exclusive"},
		{"x", plan.Params{"deb": "x.deb"}, "must be absolute"},
		{"x", plan.Params{"deb": "/tmp/x.deb", "state": "absent"}, "deb makes no sense"},
		{"x", plan.Params{"purge": true}, "purge only makes sense"},
		{"x", plan.Params{"names": []string{}}, "names is empty"},
		{"-x", plan.Params{}, `"-x" is not a package name`},
		{"x", plan.Params{"names": []string{"a b"}}, `"a b" is not a package name`},
		{"x", plan.Params{"state": "latest"}, "neither"},
	}
	for _, tt := range bad {
		_, err := New(plan.Resource{Kind: "package", Name: tt.name, Params: tt.params}, nil)
		wantErrContaining(t, err, tt.want)
	}
}

// Without any package manager in PATH, Check says so instead of guessing.
func TestPackageWithoutManager(t *testing.T) {
	k := build(t, "package", "curl", plan.Params{}, nil).(*pkg)
	k.path = t.TempDir()
	_, err := k.Check(t.Context(), nil)
	wantErrContaining(t, err, "package curl: no supported package manager")
}

// debInfo reads a real .deb built with dpkg-deb (read-only on this machine).
func TestDebInfo(t *testing.T) {
	if _, err := lookPath("dpkg-deb", defaultPath); err != nil {
		t.Skip("dpkg-deb not installed")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "pkg")
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "DEBIAN", "control"),
		"Package: herd-unit\nVersion: 1.2-3\nArchitecture: all\nMaintainer: herd <herd@example.org>\nDescription: test\n", 0o644)
	deb := filepath.Join(dir, "x.deb")
	if _, _, err := (tool{argv: []string{"dpkg-deb", "--root-owner-group", "--build", root, deb}}).run(t.Context()); err != nil {
		t.Fatal(err)
	}
	name, version, err := debInfo(t.Context(), deb)
	if err != nil || name != "herd-unit" || version != "1.2-3" {
		t.Errorf("debInfo = %q %q %v", name, version, err)
	}
	_, _, err = debInfo(t.Context(), filepath.Join(dir, "control-only"))
	wantErrContaining(t, err, "dpkg-deb exited")
}
