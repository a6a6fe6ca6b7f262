package resource

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

// fakeProcSys points procSys at a temp dir holding the given values, so the
// file-and-live logic runs without changing this machine's kernel.
func fakeProcSys(t *testing.T, values map[string]string) string {
	old := procSys
	procSys = t.TempDir()
	t.Cleanup(func() { procSys = old })
	for k, v := range values {
		p := filepath.Join(procSys, k)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, v, 0o644)
	}
	return procSys
}

func TestSysctl(t *testing.T) {
	proc := fakeProcSys(t, map[string]string{"net/ipv4/ip_forward": "0\n", "net/ipv4/tcp_rmem": "4096\t131072\t6291456\n"})
	conf := filepath.Join(t.TempDir(), "99-herd.conf")
	env := testEnv(t)
	steps := []struct {
		name, key  string
		params     plan.Params
		want       string
		file, live string
	}{
		{"first run sets file and live", "net.ipv4.ip_forward", plan.Params{"value": "1"},
			"create " + conf + ", " + conf + " line added, live 0→1", "net.ipv4.ip_forward = 1\n", "1\n"},
		{"rerun", "net.ipv4.ip_forward", plan.Params{"value": "1"}, "", "net.ipv4.ip_forward = 1\n", "1\n"},
		{"whitespace in values does not count", "net.ipv4.tcp_rmem", plan.Params{"value": "4096  131072 6291456"},
			conf + " line added", "net.ipv4.ip_forward = 1\nnet.ipv4.tcp_rmem = 4096 131072 6291456\n", ""},
		{"live=False leaves the running value", "net.ipv4.ip_forward", plan.Params{"value": "0", "live": false},
			conf + " line replaced", "net.ipv4.ip_forward = 0\nnet.ipv4.tcp_rmem = 4096 131072 6291456\n", "1\n"},
		{"a drifted live value alone is a change", "net.ipv4.ip_forward", plan.Params{"value": "0"},
			"live 1→0", "net.ipv4.ip_forward = 0\nnet.ipv4.tcp_rmem = 4096 131072 6291456\n", "0\n"},
		{"absent removes the line, not the value", "net/ipv4/ip_forward", plan.Params{"state": "absent"},
			"removed from " + conf, "net.ipv4.tcp_rmem = 4096 131072 6291456\n", "0\n"},
	}
	for _, s := range steps {
		s.params["file"] = conf
		r := build(t, "sysctl", s.key, s.params, nil)
		c := mustCheck(t, r, env)
		if c.Changed != (s.want != "") || c.Summary != s.want {
			t.Errorf("%s: Check = %v %q, want %q", s.name, c.Changed, c.Summary, s.want)
		}
		if c.Changed {
			applyIdempotent(t, r, env)
		}
		if got := readFile(t, conf); got != s.file {
			t.Errorf("%s: file = %q, want %q", s.name, got, s.file)
		}
		if s.live != "" {
			if got := readFile(t, filepath.Join(proc, "net/ipv4/ip_forward")); got != s.live {
				t.Errorf("%s: live = %q, want %q", s.name, got, s.live)
			}
		}
	}

	// A refresh writes the running value again.
	r := build(t, "sysctl", "net.ipv4.ip_forward", plan.Params{"value": "1", "file": conf}, nil)
	applyIdempotent(t, r, env)
	writeFile(t, filepath.Join(proc, "net/ipv4/ip_forward"), "0\n", 0o644)
	if c, err := r.(Refresher).Refresh(t.Context(), env); err != nil || !c.Changed {
		t.Fatalf("Refresh = %+v, %v", c, err)
	}
	if got := readFile(t, filepath.Join(proc, "net/ipv4/ip_forward")); got != "1\n" {
		t.Errorf("after refresh live = %q", got)
	}
}

func TestSysctlRejects(t *testing.T) {
	fakeProcSys(t, nil)
	for _, tt := range []struct {
		key    string
		params plan.Params
		want   string
	}{
		{"net.ipv4.ip_forward", plan.Params{}, "value is required"},
		{"net ipv4", plan.Params{"value": "1"}, "not a sysctl key"},
		{"../../etc/passwd", plan.Params{"value": "1"}, "not a sysctl key"},
		{"net.ipv4.ip_forward", plan.Params{"value": "1", "file": "rel.conf"}, "must be absolute"},
		{"net.ipv4.ip_forward", plan.Params{"state": "absent", "value": "1"}, "value makes no sense"},
	} {
		_, err := New(plan.Resource{Kind: "sysctl", Name: tt.key, Params: tt.params}, nil)
		wantErrContaining(t, err, tt.want)
	}
	r := build(t, "sysctl", "net.nope", plan.Params{"value": "1", "file": filepath.Join(t.TempDir(), "x.conf")}, nil)
	_, err := r.Check(t.Context(), testEnv(t))
	wantErrContaining(t, err, "no such kernel parameter")
}
