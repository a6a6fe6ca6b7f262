package resource

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/herd-project/herd/internal/plan"
)

// modeParam reads a Mode param with ParseMode. It returns -1 when the param
// is absent so callers can tell "not managed" from 0.
func modeParam(p plan.Params, key string) (int64, error) {
	v, ok := p[key]
	if !ok || v == nil {
		return -1, nil
	}
	m, err := ParseMode(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return m, nil
}

// ParseMode is the one reading of a mode, used by the policy when it is
// declared and by the resource on the target: an integer (0o644 in a policy
// arrives as 420; JSON may make it a float64) or an octal string ("0644",
// "644", "0o644"). The result is within 0..0o7777. How an integer was
// written is only visible in the policy source, which is why decimal
// literals such as mode=644 are refused there (policy.checkModeLiterals).
func ParseMode(v any) (int64, error) {
	var m int64
	switch v := v.(type) {
	case string:
		t := strings.TrimPrefix(strings.TrimPrefix(v, "0o"), "0O")
		n, err := strconv.ParseInt(t, 8, 64)
		if err != nil || t == "" || strings.ContainsAny(t, "+-_") {
			return 0, fmt.Errorf("%q is not an octal mode such as \"0644\"", v)
		}
		m = n
	default:
		n, err := plan.Params{"mode": v}.Int("mode", 0)
		if err != nil {
			return 0, fmt.Errorf("want an int such as 0o644 or an octal string such as \"0644\", got %T", v)
		}
		m = n
	}
	if m < 0 {
		return 0, fmt.Errorf("%d is out of range (0 to 0o7777)", m)
	}
	if m > 0o7777 {
		return 0, fmt.Errorf("0o%o is out of range (0 to 0o7777)", m)
	}
	return m, nil
}

// fileMode converts Unix permission bits to an os.FileMode, mapping the
// setuid, setgid and sticky bits to Go's flags so Chmod honours them.
func fileMode(m int64) os.FileMode {
	fm := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

// unixMode is the inverse of fileMode.
func unixMode(fm os.FileMode) int64 {
	m := int64(fm.Perm())
	if fm&os.ModeSetuid != 0 {
		m |= 0o4000
	}
	if fm&os.ModeSetgid != 0 {
		m |= 0o2000
	}
	if fm&os.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

func fmtMode(m int64) string { return fmt.Sprintf("%04o", m) }

// stateParam reads state, which must be "present" (default) or "absent".
func stateParam(p plan.Params) (present bool, err error) {
	s, err := p.Str("state", "present")
	if err != nil {
		return false, err
	}
	switch s {
	case "present":
		return true, nil
	case "absent":
		return false, nil
	}
	return false, fmt.Errorf("state: %q is neither \"present\" nor \"absent\"", s)
}

// absentRejects fails on the first of keys that is given: they describe a
// thing that is present.
func absentRejects(p plan.Params, keys ...string) error {
	for _, k := range keys {
		if p.Has(k) {
			return fmt.Errorf("%s makes no sense with state=\"absent\"", k)
		}
	}
	return nil
}

// lookupUID resolves an owner given by name or number. Names are resolved on
// the machine the resource runs on, which is why this happens at Check and
// Apply rather than in the factory.
func lookupUID(owner string) (int, error) {
	if n, err := strconv.Atoi(owner); err == nil && n >= 0 {
		return n, nil
	}
	u, err := user.Lookup(owner)
	if err != nil {
		return 0, fmt.Errorf("owner %q: no such user on this host", owner)
	}
	return strconv.Atoi(u.Uid)
}

func lookupGID(group string) (int, error) {
	if n, err := strconv.Atoi(group); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, fmt.Errorf("group %q: no such group on this host", group)
	}
	return strconv.Atoi(g.Gid)
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

// attrs is the mode and ownership a file-like resource manages; -1 (and an
// empty owner or group) means "leave as it is".
type attrs struct {
	mode         int64
	owner, group string
}

func attrParams(p plan.Params) (attrs, error) {
	var m attrs
	var err error
	if m.mode, err = modeParam(p, "mode"); err != nil {
		return m, err
	}
	if m.owner, err = p.Str("owner", ""); err != nil {
		return m, err
	}
	if m.group, err = p.Str("group", ""); err != nil {
		return m, err
	}
	return m, nil
}

// ids resolves owner and group to numbers, -1 where not managed.
func (m attrs) ids() (uid, gid int, err error) {
	uid, gid = -1, -1
	if m.owner != "" {
		if uid, err = lookupUID(m.owner); err != nil {
			return
		}
	}
	if m.group != "" {
		if gid, err = lookupGID(m.group); err != nil {
			return
		}
	}
	return
}

// diff compares fi with the wanted metadata and returns what differs,
// e.g. ["mode 0644→0600", "owner root→nobody"].
func (m attrs) diff(fi os.FileInfo) ([]string, error) {
	uid, gid, err := m.ids()
	if err != nil {
		return nil, err
	}
	var out []string
	if m.mode >= 0 {
		if cur := unixMode(fi.Mode()); cur != m.mode {
			out = append(out, "mode "+fmtMode(cur)+"→"+fmtMode(m.mode))
		}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return out, nil
	}
	if uid >= 0 && int(st.Uid) != uid {
		out = append(out, "owner "+userName(int(st.Uid))+"→"+userName(uid))
	}
	if gid >= 0 && int(st.Gid) != gid {
		out = append(out, "group "+groupName(int(st.Gid))+"→"+groupName(gid))
	}
	return out, nil
}

// fix changes only the metadata of an existing path (no rewrite). Ownership
// goes first because chown clears setuid and setgid bits.
func (m attrs) fix(path string) error {
	uid, gid, err := m.ids()
	if err != nil {
		return err
	}
	if uid >= 0 || gid >= 0 {
		if err := os.Lchown(path, uid, gid); err != nil {
			return err
		}
	}
	if m.mode >= 0 {
		if err := os.Chmod(path, fileMode(m.mode)); err != nil {
			return err
		}
	}
	return nil
}

func joinSummary(parts []string) string { return strings.Join(parts, ", ") }
