package resource

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/herd-project/herd/internal/plan"
)

func init() {
	Register(&Schema{
		Kind: "mount",
		Doc: "A filesystem mount, named by its mount point: its fstab line and whether it is mounted. " +
			"state: \"mounted\" (default: in fstab and mounted; the mount point is created 0755), " +
			"\"present\" (in fstab only), \"unmounted\" (in fstab, not mounted), \"absent\" (neither). " +
			"A mounted filesystem whose fstab line changed is unmounted and mounted again. Mounting " +
			"uses the mount command with explicit arguments (util-linux or busybox). Bind mounts: " +
			"opts=\"bind\" and device the directory to bind.",
		Params: []Param{
			{Name: "device", Type: String, Doc: "device, UUID=..., LABEL=..., directory for a bind mount, or e.g. \"tmpfs\" (required unless state=\"absent\" or \"unmounted\")"},
			{Name: "fstype", Type: String, Doc: "filesystem type, e.g. \"ext4\", \"tmpfs\"; \"none\" for bind mounts (required with device)"},
			{Name: "opts", Type: String, Doc: "mount options, default \"defaults\""},
			{Name: "dump", Type: Int, Doc: "fstab's fifth field, default 0"},
			{Name: "passno", Type: Int, Doc: "fstab's sixth field, default 0"},
			{Name: "fstab", Type: String, Doc: "default \"/etc/fstab\""},
			{Name: "state", Type: String, Doc: "\"mounted\" (default), \"present\", \"unmounted\" or \"absent\""},
		},
		Factory: newMount,
	})
}

// mountInfo is where the mount table is read; a var for unit tests.
var mountInfo = "/proc/self/mountinfo"

type mount struct {
	path, src, fstype, opts string
	dump, passno            int64
	state                   string
	entry                   string // the fstab line, "" when state is absent
	fstab                   textEdit
}

func newMount(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	if err := checkAbs("mount", name); err != nil {
		return nil, err
	}
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("mount %s: %w", name, err) }
	if name == "/" {
		return fail(fmt.Errorf("herd does not manage the root filesystem's mount"))
	}
	m := &mount{path: name}
	var err error
	for _, s := range []struct {
		dst      *string
		key, def string
	}{{&m.src, "device", ""}, {&m.fstype, "fstype", ""}, {&m.opts, "opts", "defaults"}, {&m.state, "state", "mounted"}} {
		if *s.dst, err = p.Str(s.key, s.def); err != nil {
			return fail(err)
		}
		if strings.ContainsAny(*s.dst, "\n\r\t") {
			return fail(fmt.Errorf("%s must not contain tabs or newlines", s.key))
		}
	}
	if m.dump, err = p.Int("dump", 0); err != nil {
		return fail(err)
	}
	if m.passno, err = p.Int("passno", 0); err != nil {
		return fail(err)
	}
	fstab, err := p.Str("fstab", "/etc/fstab")
	if err != nil {
		return fail(err)
	}
	if err := checkAbs("mount", fstab); err != nil {
		return fail(err)
	}
	switch m.state {
	case "mounted", "present":
		if m.src == "" || m.fstype == "" {
			return fail(fmt.Errorf("device and fstype are required with state=%q", m.state))
		}
	case "unmounted", "absent":
		if m.src != "" || m.fstype != "" || p.Has("opts") {
			if m.state == "absent" || m.src == "" || m.fstype == "" {
				return fail(fmt.Errorf("give device and fstype (to keep the fstab line) or none of device, fstype, opts"))
			}
		}
	default:
		return fail(fmt.Errorf("state %q is not one of \"mounted\", \"present\", \"unmounted\", \"absent\"", m.state))
	}
	if m.src != "" {
		m.entry = strings.Join([]string{fstabEscape(m.src), fstabEscape(m.path), fstabEscape(m.fstype),
			fstabEscape(m.opts), strconv.FormatInt(m.dump, 10), strconv.FormatInt(m.passno, 10)}, " ")
	}
	m.fstab = textEdit{kind: "mount", path: fstab, create: true, perm: 0o644, uid: 0, gid: 0, edit: m.editFstab}
	return m, nil
}

// fstabEscape writes spaces and tabs the way fstab and mountinfo do.
func fstabEscape(s string) string {
	return strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`).Replace(s)
}

func fstabUnescape(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// editFstab keeps the one line for this mount point: the last line naming
// it is replaced; earlier ones (which mount would shadow) are removed.
func (m *mount) editFstab(old []byte) ([]byte, string) {
	lines, trailingNL := textLines(string(old))
	idx := []int{}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 2 && !strings.HasPrefix(f[0], "#") && fstabUnescape(f[1]) == m.path {
			idx = append(idx, i)
		}
	}
	switch {
	case m.entry == "" && m.state == "unmounted":
		return old, "" // fstab not managed
	case m.entry == "" && len(idx) == 0:
		return old, ""
	case m.entry == "":
		return joinLines(dropIndexes(lines, idx), trailingNL), "fstab line removed"
	case len(idx) == 0:
		return joinLines(append(lines, m.entry), true), "fstab line added"
	case len(idx) == 1 && strings.Join(strings.Fields(lines[idx[0]]), " ") == m.entry:
		return old, ""
	}
	last := idx[len(idx)-1]
	lines[last] = m.entry
	return joinLines(dropIndexes(lines, idx[:len(idx)-1]), trailingNL), "fstab line changed"
}

func dropIndexes(lines []string, idx []int) []string {
	drop := map[int]bool{}
	for _, i := range idx {
		drop[i] = true
	}
	var out []string
	for i, l := range lines {
		if !drop[i] {
			out = append(out, l)
		}
	}
	return out
}

// mounted reports whether something is mounted at the mount point.
func (m *mount) mounted() (bool, error) {
	b, err := os.ReadFile(mountInfo)
	if err != nil {
		return false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 5 && fstabUnescape(f[4]) == m.path {
			return true, nil
		}
	}
	return false, sc.Err()
}

// reconcile returns what is to be done: the fstab delta and the mount actions.
func (m *mount) reconcile() (textDelta, bool, []string, error) {
	d, err := m.fstab.inspect()
	if err != nil {
		return d, false, nil, fmt.Errorf("mount %s: %w", m.path, err)
	}
	fstabChanged := d.change.Changed
	isMounted, err := m.mounted()
	if err != nil {
		return d, false, nil, fmt.Errorf("mount %s: reading the mount table: %w", m.path, err)
	}
	var acts []string
	switch {
	case m.state == "mounted" && !isMounted:
		acts = []string{"mount"}
	case m.state == "mounted" && fstabChanged:
		acts = []string{"unmount", "mount"}
	case (m.state == "unmounted" || m.state == "absent") && isMounted:
		acts = []string{"unmount"}
	}
	parts := nonEmpty(d.change.Summary)
	if len(acts) == 2 {
		parts = append(parts, "remount")
	} else {
		parts = append(parts, acts...)
	}
	d.change.Changed = len(parts) > 0
	d.change.Summary = joinSummary(parts)
	return d, fstabChanged, acts, nil
}

func (m *mount) Check(ctx context.Context, env *Env) (Change, error) {
	unlock := lockPath(m.fstab.path)
	defer unlock()
	d, _, _, err := m.reconcile()
	return d.change, err
}

// Apply writes fstab first, then mounts or unmounts with explicit arguments,
// so the result does not depend on which fstab the mount command reads.
func (m *mount) Apply(ctx context.Context, env *Env) (Change, error) {
	unlock := lockPath(m.fstab.path)
	defer unlock()
	d, fstabChanged, acts, err := m.reconcile()
	if err != nil || !d.change.Changed {
		return d.change, err
	}
	if fstabChanged {
		if err := m.fstab.write(d); err != nil {
			return d.change, fmt.Errorf("mount %s: %w", m.path, err)
		}
	}
	for _, a := range acts {
		var argv []string
		if a == "unmount" {
			argv = []string{"umount", m.path}
		} else {
			if err := os.MkdirAll(m.path, 0o755); err != nil {
				return d.change, fmt.Errorf("mount %s: creating the mount point: %w", m.path, err)
			}
			argv = []string{"mount", "-t", m.fstype, "-o", m.opts, m.src, m.path}
		}
		if err := runTool(ctx, argv); err != nil {
			return d.change, fmt.Errorf("mount %s: %w", m.path, err)
		}
	}
	return d.change, nil
}

// runTool runs a system tool with a fixed PATH and C locale, its output
// kept for the error.
func runTool(ctx context.Context, argv []string) error {
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
			if _, serr := os.Stat(dir + "/" + argv[0]); serr == nil {
				bin, err = dir+"/"+argv[0], nil
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("%s is not installed", argv[0])
	}
	cmd := exec.CommandContext(ctx, bin, argv[1:]...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
