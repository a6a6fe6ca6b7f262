package resource

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/herd-project/herd/internal/plan"
)

func init() {
	Register(&Schema{
		Kind: "user",
		Doc: "A local user in /etc/passwd, managed with useradd, usermod, userdel and chpasswd. " +
			"Only the given attributes are managed; system and create_home only matter when the user is created. " +
			"password_hash is compared with /etc/shadow and never shown, logged or passed in argv.",
		Params: []Param{
			{Name: "uid", Type: Int, Doc: "numeric user id (default: keep, or the next free one when created)"},
			{Name: "group", Type: String, Doc: "primary group, name or gid (default: a group named after the user when created)"},
			{Name: "groups", Type: StringList, Doc: "supplementary groups, the exact set ([] removes all); default: keep"},
			{Name: "home", Type: String, Doc: "absolute home directory (an existing home is not moved)"},
			{Name: "shell", Type: String, Doc: "login shell, absolute path"},
			{Name: "system", Type: Bool, Doc: "create as a system user (uid from the system range)"},
			{Name: "create_home", Type: Bool, Doc: "create the home directory when creating the user (default true)"},
			{Name: "password_hash", Type: String, Doc: "crypt(3) hash as in /etc/shadow, e.g. from mkpasswd; never the password itself"},
			{Name: "state", Type: String, Doc: "\"present\" (default) or \"absent\""},
			{Name: "remove_home", Type: Bool, Doc: "with state=\"absent\": also remove the home directory and mail spool"},
		},
		Factory: newUser,
	})
}

type account struct {
	name        string
	present     bool
	uid         int    // -1: not managed
	group       string // "": not managed
	groups      []string
	setGroups   bool // groups given (an empty list is a wanted state)
	home, shell string
	system      bool
	createHome  bool
	hash        string
	removeHome  bool
	etc         string
}

func newUser(name string, p plan.Params, _ map[string][]byte) (Resource, error) {
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("user %s: %w", name, err) }
	if err := validAccountName("user", name); err != nil {
		return nil, err
	}
	u := &account{name: name, etc: etcDir}
	var err error
	if u.present, err = stateParam(p); err != nil {
		return fail(err)
	}
	uid, err := p.Int("uid", -1)
	if err != nil {
		return fail(err)
	}
	if p.Has("uid") && (uid < 0 || uid > 1<<31-1) {
		return fail(fmt.Errorf("uid %d is out of range", uid))
	}
	u.uid = int(uid)
	for _, s := range []struct {
		key string
		dst *string
	}{{"group", &u.group}, {"home", &u.home}, {"shell", &u.shell}} {
		if *s.dst, err = p.Str(s.key, ""); err != nil {
			return fail(err)
		}
	}
	if u.group != "" {
		if err := validAccountName("group", u.group); err != nil {
			return fail(err)
		}
	}
	for _, k := range []string{"home", "shell"} {
		if v, _ := p.Str(k, ""); p.Has(k) && (!filepath.IsAbs(v) || strings.ContainsAny(v, ":\n")) {
			return fail(fmt.Errorf("%s must be an absolute path without colons, got %q", k, v))
		}
	}
	if u.groups, err = p.List("groups"); err != nil {
		return fail(err)
	}
	u.setGroups = p.Has("groups")
	for _, g := range u.groups {
		if err := validAccountName("group", g); err != nil {
			return fail(fmt.Errorf("groups: %w", err))
		}
	}
	u.groups = slices.Compact(slices.Sorted(slices.Values(u.groups)))
	if u.system, err = p.Bool("system", false); err != nil {
		return fail(err)
	}
	if u.createHome, err = p.Bool("create_home", true); err != nil {
		return fail(err)
	}
	if u.removeHome, err = p.Bool("remove_home", false); err != nil {
		return fail(err)
	}
	if u.hash, err = p.Str("password_hash", ""); err != nil {
		return fail(errors.New("password_hash: want a string")) // never echo the value
	}
	if p.Has("password_hash") && (u.hash == "" || strings.ContainsAny(u.hash, ": \t\r\n")) {
		return fail(errors.New("password_hash must be a non-empty crypt(3) hash without colons or whitespace (value not shown)"))
	}
	if u.present && p.Has("remove_home") {
		return fail(errors.New("remove_home only makes sense with state=\"absent\""))
	}
	if !u.present {
		if err := absentRejects(p, "uid", "group", "groups", "home", "shell", "system", "create_home", "password_hash"); err != nil {
			return fail(err)
		}
	}
	return u, nil
}

// reconcile compares the account files with the wanted state and returns the
// commands that would reconcile them. The summary names what differs but
// never a password hash.
func (u *account) reconcile() (Change, []tool, error) {
	a, err := readAccounts(u.etc)
	if err != nil {
		return Change{}, nil, fmt.Errorf("user %s: %w", u.name, err)
	}
	cur, exists := a.user(u.name)
	switch {
	case !u.present && !exists:
		return Change{}, nil, nil
	case !u.present:
		return Change{Changed: true, Summary: "remove"}, []tool{{argv: userdelArgs(u.name, u.removeHome), hint: shadowHint}}, nil
	case !exists:
		parts := []string{"create"}
		tools := []tool{{argv: u.useraddArgs(a), hint: shadowHint}}
		if u.hash != "" {
			parts = append(parts, "password set")
			tools = append(tools, u.chpasswd())
		}
		return Change{Changed: true, Summary: joinSummary(parts)}, tools, nil
	}
	parts, args := u.diff(a, cur)
	var tools []tool
	if len(args) > 0 {
		tools = append(tools, tool{argv: append(append([]string{"usermod"}, args...), u.name), hint: shadowHint})
	}
	// Without read access to /etc/shadow the hash cannot be compared;
	// changing it needs root anyway, so this only affects a non-root check.
	if u.hash != "" && a.hashes != nil && a.hashes[u.name] != u.hash {
		parts = append(parts, "password changed")
		tools = append(tools, u.chpasswd())
	}
	return Change{Changed: len(parts) > 0, Summary: joinSummary(parts)}, tools, nil
}

// diff returns what differs on an existing user, for the summary, and the
// usermod options that fix it.
func (u *account) diff(a *accounts, cur passwdEntry) (parts, args []string) {
	if u.uid >= 0 && cur.uid != u.uid {
		parts = append(parts, fmt.Sprintf("uid %d→%d", cur.uid, u.uid))
		args = append(args, "-u", strconv.Itoa(u.uid))
	}
	if u.group != "" {
		// A group missing now may be created earlier in the same run, so
		// it is a difference, not an error: usermod will say if it's not.
		if gid, ok := a.groupGID(u.group); !ok || gid != cur.gid {
			parts = append(parts, "group "+a.groupLabel(cur.gid)+"→"+u.group)
			args = append(args, "-g", u.group)
		}
	}
	if u.setGroups {
		have := a.memberOf(u.name)
		var delta []string
		for _, g := range u.groups {
			if !slices.Contains(have, g) {
				delta = append(delta, "+"+g)
			}
		}
		for _, g := range have {
			if !slices.Contains(u.groups, g) {
				delta = append(delta, "-"+g)
			}
		}
		if len(delta) > 0 {
			parts = append(parts, "groups "+strings.Join(delta, " "))
			args = append(args, "-G", strings.Join(u.groups, ","))
		}
	}
	if u.home != "" && cur.home != u.home {
		parts = append(parts, "home "+cur.home+"→"+u.home)
		args = append(args, "-d", u.home)
	}
	if u.shell != "" && cur.shell != u.shell {
		parts = append(parts, "shell "+cur.shell+"→"+u.shell)
		args = append(args, "-s", u.shell)
	}
	return parts, args
}

func (u *account) useraddArgs(a *accounts) []string {
	argv := []string{"useradd"}
	if u.uid >= 0 {
		argv = append(argv, "-u", strconv.Itoa(u.uid))
	}
	switch {
	case u.group != "":
		argv = append(argv, "-g", u.group)
	default:
		// useradd refuses to make a user group whose name is taken;
		// joining the existing group is what the policy means.
		if _, ok := a.group(u.name); ok {
			argv = append(argv, "-g", u.name)
		}
	}
	if len(u.groups) > 0 {
		argv = append(argv, "-G", strings.Join(u.groups, ","))
	}
	if u.home != "" {
		argv = append(argv, "-d", u.home)
	}
	if u.shell != "" {
		argv = append(argv, "-s", u.shell)
	}
	if u.system {
		argv = append(argv, "-r")
	}
	if u.createHome {
		argv = append(argv, "-m")
	} else {
		argv = append(argv, "-M")
	}
	return append(argv, u.name)
}

func userdelArgs(name string, removeHome bool) []string {
	if removeHome {
		return []string{"userdel", "-r", name}
	}
	return []string{"userdel", name}
}

// chpasswd sets the hash through stdin: in argv (usermod -p) every user of
// the machine could read it in /proc.
func (u *account) chpasswd() tool {
	return tool{argv: []string{"chpasswd", "-e"}, stdin: u.name + ":" + u.hash + "\n", hint: shadowHint, secret: u.hash}
}

func (u *account) Check(ctx context.Context, env *Env) (Change, error) {
	c, _, err := u.reconcile()
	return c, err
}

func (u *account) Apply(ctx context.Context, env *Env) (Change, error) {
	c, tools, err := u.reconcile()
	if err != nil {
		return c, err
	}
	if err := runAll(ctx, &c, tools...); err != nil {
		return c, fmt.Errorf("user %s: %w", u.name, err)
	}
	return c, nil
}
