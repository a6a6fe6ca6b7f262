package resource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/herd-project/herd/internal/plan"
)

func init() {
	Register(&Schema{
		Kind: "sysctl",
		Doc: "A kernel parameter, named by its key (\"net.ipv4.ip_forward\"): a \"KEY = VALUE\" line in " +
			"file (so it holds after a reboot) and, with live=True, the running value under /proc/sys. " +
			"A refresh writes the live value again. absent removes the key's lines from file and leaves " +
			"the running value alone. Values compare with whitespace collapsed (\"4096 87380\" equals " +
			"\"4096\\t87380\").",
		Params: []Param{
			{Name: "value", Type: String, Doc: "the value (required with state=\"present\")"},
			{Name: "file", Type: String, Doc: "default \"/etc/sysctl.d/99-herd.conf\" (created 0644)"},
			{Name: "live", Type: Bool, Doc: "also set the running value (default True)"},
			{Name: "state", Type: String, Doc: "\"present\" (default) or \"absent\""},
		},
		Factory: newSysctl,
	})
}

// procSys is where running values live; a var so unit tests can use a
// temp dir (writing the real ones needs root and changes the machine).
var procSys = "/proc/sys"

var sysctlKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]+([./][A-Za-z0-9_:@-]+)*$`)

type sysctl struct {
	key, value string
	present    bool
	live       bool
	edit       textEdit
	lineRE     *regexp.Regexp
}

func newSysctl(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("sysctl %s: %w", name, err) }
	if !sysctlKeyRE.MatchString(name) {
		return fail(fmt.Errorf("not a sysctl key such as \"net.ipv4.ip_forward\""))
	}
	s := &sysctl{key: name}
	var err error
	if s.present, err = stateParam(p); err != nil {
		return fail(err)
	}
	if s.live, err = p.Bool("live", true); err != nil {
		return fail(err)
	}
	file, err := p.Str("file", "/etc/sysctl.d/99-herd.conf")
	if err != nil {
		return fail(err)
	}
	if err := checkAbs("sysctl", file); err != nil {
		return fail(err)
	}
	if s.present {
		v, err := p.Str("value", "")
		if err != nil {
			return fail(err)
		}
		s.value = strings.Join(strings.Fields(v), " ")
		if !p.Has("value") || s.value == "" || strings.ContainsAny(v, "\n\r") {
			return fail(fmt.Errorf("value is required with state=\"present\" and must be one non-empty line"))
		}
	} else if err := absentRejects(p, "value", "live"); err != nil {
		return fail(err)
	}
	// Both spellings of a key (dots or slashes) name one parameter.
	parts := strings.FieldsFunc(s.key, func(r rune) bool { return r == '.' || r == '/' })
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	s.lineRE = regexp.MustCompile(`^\s*-?` + strings.Join(parts, "[./]") + `\s*=`)
	s.edit = textEdit{kind: "sysctl", path: file, create: true, perm: 0o644, uid: 0, gid: 0, edit: s.editFile}
	return s, nil
}

// procPath maps the key to its file: dots separate levels unless the key
// uses slashes (then dots belong to names, as in interface "eth0.1").
func (s *sysctl) procPath() string {
	if strings.Contains(s.key, "/") {
		return procSys + "/" + s.key
	}
	return procSys + "/" + strings.ReplaceAll(s.key, ".", "/")
}

func (s *sysctl) editFile(old []byte) ([]byte, string) {
	lines, trailingNL := textLines(string(old))
	want := s.key + " = " + s.value
	last := -1
	var kept []string
	for _, l := range lines {
		if s.lineRE.MatchString(l) {
			if !s.present {
				continue
			}
			last = len(kept)
		}
		kept = append(kept, l)
	}
	switch {
	case !s.present && len(kept) == len(lines):
		return old, ""
	case !s.present:
		return joinLines(kept, trailingNL), "removed from " + s.edit.path
	case last >= 0 && sameSysctlValue(lines[last], want):
		return old, ""
	case last >= 0:
		lines[last] = want
		return joinLines(lines, trailingNL), s.edit.path + " line replaced"
	}
	return joinLines(append(lines, want), true), s.edit.path + " line added"
}

// sameSysctlValue compares "k = v" lines the way sysctl reads them.
func sameSysctlValue(have, want string) bool {
	_, hv, _ := strings.Cut(have, "=")
	_, wv, _ := strings.Cut(want, "=")
	return strings.Join(strings.Fields(hv), " ") == strings.Join(strings.Fields(wv), " ")
}

// current reads the running value, whitespace collapsed.
func (s *sysctl) current() (string, error) {
	b, err := os.ReadFile(s.procPath())
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("sysctl %s: no such kernel parameter on this host (%s)", s.key, s.procPath())
	}
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", s.key, err)
	}
	return strings.Join(strings.Fields(string(b)), " "), nil
}

// inspect returns the file's delta, whether the file must be written, and
// the live change ("" when the running value is right or not managed).
func (s *sysctl) inspect() (textDelta, bool, string, error) {
	d, err := s.edit.inspect()
	if err != nil {
		return d, false, "", fmt.Errorf("sysctl %s: %w", s.key, err)
	}
	file := d.change.Changed
	if !s.present || !s.live {
		return d, file, "", nil
	}
	cur, err := s.current()
	if err != nil || cur == s.value {
		return d, file, "", err
	}
	liveChange := fmt.Sprintf("live %s→%s", cur, s.value)
	d.change.Changed = true
	d.change.Summary = joinSummary(nonEmpty(d.change.Summary, liveChange))
	return d, file, liveChange, nil
}

func nonEmpty(parts ...string) []string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (s *sysctl) Check(ctx context.Context, env *Env) (Change, error) {
	unlock := lockPath(s.edit.path)
	defer unlock()
	d, _, _, err := s.inspect()
	return d.change, err
}

// Apply writes the file first: a value the kernel refuses then still fails
// the resource, and the next run retries the live write.
func (s *sysctl) Apply(ctx context.Context, env *Env) (Change, error) {
	unlock := lockPath(s.edit.path)
	defer unlock()
	d, file, live, err := s.inspect()
	if err != nil || !d.change.Changed {
		return d.change, err
	}
	if file {
		if err := s.edit.write(d); err != nil {
			return d.change, fmt.Errorf("sysctl %s: %w", s.key, err)
		}
	}
	if live != "" {
		return d.change, s.setLive()
	}
	return d.change, nil
}

func (s *sysctl) setLive() error {
	if err := os.WriteFile(s.procPath(), []byte(s.value+"\n"), 0); err != nil {
		return fmt.Errorf("sysctl %s: setting the running value: %w", s.key, err)
	}
	return nil
}

// Refresh writes the running value again (a notify after a change elsewhere,
// e.g. a module that resets it).
func (s *sysctl) Refresh(ctx context.Context, env *Env) (Change, error) {
	if !s.present || !s.live {
		return Change{}, nil
	}
	if err := s.setLive(); err != nil {
		return Change{}, err
	}
	return Change{Changed: true, Summary: "live value written again"}, nil
}
