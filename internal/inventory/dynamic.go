package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// maxScriptOutput bounds what a dynamic inventory may print; large clouds
// produce megabytes, not gigabytes. Decoding JSON into maps takes several
// times its size, so the cap is what keeps the controller's memory bounded.
const maxScriptOutput = 64 << 20

// runScript runs an Ansible dynamic inventory with --list and reads its JSON:
//
//	{"web": {"hosts": ["w1"], "vars": {...}, "children": ["x"]},
//	 "db": ["d1", "d2"],
//	 "_meta": {"hostvars": {"w1": {...}}}}
//
// Without _meta, each host's vars come from `script --host NAME`, as Ansible
// does.
func (b *builder) runScript(ctx context.Context, script string) error {
	out, err := runInventoryScript(ctx, script, "--list")
	if err != nil {
		return err
	}
	return b.parseList(script, out, func(h string) ([]byte, error) {
		return runInventoryScript(ctx, script, "--host", h)
	})
}

// parseList reads the --list output; hostVars runs `script --host NAME`
// when there is no _meta.
func (b *builder) parseList(script string, out []byte, hostVars func(host string) ([]byte, error)) error {
	var err error
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(out, &doc); err != nil {
		return fmt.Errorf("inventory script %s --list: output is not a JSON object: %v", script, err)
	}
	var meta struct {
		HostVars map[string]map[string]any `json:"hostvars"`
	}
	_, haveMeta := doc["_meta"]
	if haveMeta {
		if err := decodeJSON(doc["_meta"], &meta); err != nil {
			return fmt.Errorf("inventory script %s --list: _meta: %v", script, err)
		}
	}
	names := make([]string, 0, len(doc))
	for k := range doc {
		if k != "_meta" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, g := range names {
		if err := checkName("group", g); err != nil {
			return fmt.Errorf("inventory script %s --list: %v", script, err)
		}
		b.group(g)
		raw := bytes.TrimSpace(doc[g])
		var body struct {
			Hosts    []string       `json:"hosts"`
			Vars     map[string]any `json:"vars"`
			Children []string       `json:"children"`
		}
		if len(raw) > 0 && raw[0] == '[' {
			err = decodeJSON(raw, &body.Hosts)
		} else {
			err = decodeJSON(raw, &body)
		}
		if err != nil {
			return fmt.Errorf("inventory script %s --list: group %s: %v", script, g, err)
		}
		for _, h := range body.Hosts {
			if err := checkName("host", h); err != nil {
				return fmt.Errorf("inventory script %s --list: group %s: %v", script, g, err)
			}
			b.addHost(g, h, nil)
		}
		merge(b.group(g).vars, jsonValue(body.Vars).(map[string]any))
		for _, c := range body.Children {
			if err := checkName("group", c); err != nil {
				return fmt.Errorf("inventory script %s --list: group %s: %v", script, g, err)
			}
			if err := b.addChild(g, c); err != nil {
				return fmt.Errorf("inventory script %s --list: %v", script, err)
			}
		}
	}
	for _, h := range b.hostOrder {
		vars, ok := meta.HostVars[h]
		if !haveMeta {
			out, err := hostVars(h)
			if err != nil {
				return err
			}
			if err := decodeJSON(out, &vars); err != nil {
				return fmt.Errorf("inventory script %s --host %s: output is not a JSON object: %v", script, h, err)
			}
			ok = true
		}
		if ok && vars != nil {
			merge(b.host(h).vars, jsonValue(vars).(map[string]any))
		}
	}
	return nil
}

// decodeJSON decodes with numbers kept exact; jsonValue then turns them into
// int or float64 like the other formats.
func decodeJSON(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return int(n)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = jsonValue(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonValue(e)
		}
	}
	return v
}

// runInventoryScript runs the script in its own directory and process group,
// so a timeout kills whatever it spawned too, and reports failures with the
// script's stderr, which usually says what is wrong (credentials, network).
func runInventoryScript(ctx context.Context, script string, args ...string) ([]byte, error) {
	abs, err := filepath.Abs(script)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, abs, args...)
	cmd.Dir = filepath.Dir(abs)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stdout limitedBuffer
	var stderr limitedBuffer
	stdout.limit, stderr.limit = maxScriptOutput, 64<<10
	// Past the cap nothing more is wanted: stop the script (and what it
	// spawned) at once instead of draining it until the timeout.
	stdout.full = func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	what := fmt.Sprintf("inventory script %s %s", script, strings.Join(args, " "))
	if stdout.overflow {
		return nil, fmt.Errorf("%s: output exceeds %d MiB; stopped it (an inventory that large is a bug in the script)", what, maxScriptOutput>>20)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: timed out after %s%s", what, time.Since(start).Round(time.Millisecond), stderrSuffix(stderr.Bytes()))
	}
	if err != nil {
		return nil, fmt.Errorf("%s failed: %v%s", what, err, stderrSuffix(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

func stderrSuffix(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	const keep = 2000
	if len(s) > keep {
		s = "…" + s[len(s)-keep:]
	}
	return "\nstderr:\n" + s
}

// limitedBuffer keeps at most limit bytes and remembers it dropped some;
// full, if set, is called once when that first happens. The buffer is a
// field, not embedded: an embedded bytes.Buffer's ReadFrom would let
// io.Copy (os/exec's) bypass Write and the limit with it.
type limitedBuffer struct {
	buf      bytes.Buffer
	limit    int
	overflow bool
	full     func()
}

func (l *limitedBuffer) Bytes() []byte { return l.buf.Bytes() }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.limit - l.buf.Len(); len(p) > room {
		l.buf.Write(p[:max(room, 0)])
		if !l.overflow && l.full != nil {
			l.full()
		}
		l.overflow = true
		return len(p), nil
	}
	return l.buf.Write(p)
}
