package resource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/herd-project/herd/internal/plan"
)

func init() {
	Register(&Schema{
		Kind: "authorized_key",
		Doc: "SSH public keys in a user's authorized_keys. Each entry of keys is a full authorized_keys " +
			"line (options, type, key, comment); a key is known by its type and key, so an entry whose " +
			"options or comment differ from the file's line replaces that line, and options are kept " +
			"as written. exclusive=True makes the file exactly keys; otherwise other lines stay. absent " +
			"removes the listed keys. ~/.ssh is created 0700 and the file 0600, owned by the user; a " +
			"symlink at either is refused.",
		Params: []Param{
			{Name: "user", Type: String, Doc: "whose keys (default: the resource name)"},
			{Name: "keys", Type: StringList, Required: true, Doc: "authorized_keys lines"},
			{Name: "exclusive", Type: Bool, Doc: "remove every other line (default False)"},
			{Name: "path", Type: String, Doc: "the file (default ~USER/.ssh/authorized_keys)"},
			{Name: "state", Type: String, Doc: "\"present\" (default) or \"absent\""},
		},
		Factory: newAuthKey,
	})
}

type authKey struct {
	user, path string
	present    bool
	exclusive  bool
	lines      []string // wanted lines, normalised
	ids        []string // their keys' wire form
}

func newAuthKey(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("authorized_key %s: %w", name, err) }
	a := &authKey{}
	var err error
	if a.user, err = p.Str("user", name); err != nil {
		return fail(err)
	}
	if a.present, err = stateParam(p); err != nil {
		return fail(err)
	}
	if a.exclusive, err = p.Bool("exclusive", false); err != nil {
		return fail(err)
	}
	if a.exclusive && !a.present {
		return fail(fmt.Errorf("exclusive makes no sense with state=\"absent\""))
	}
	if a.path, err = p.Str("path", ""); err != nil {
		return fail(err)
	}
	if a.path != "" {
		if err := checkAbs("authorized_key", a.path); err != nil {
			return nil, err
		}
	}
	keys, err := p.List("keys")
	if err != nil {
		return fail(err)
	}
	seen := map[string]bool{}
	for i, k := range keys {
		line := strings.TrimSpace(k)
		if strings.ContainsAny(line, "\n\r") {
			return fail(fmt.Errorf("keys[%d] must be one line", i))
		}
		id, ok := keyID(line)
		if !ok {
			return fail(fmt.Errorf("keys[%d] is not an authorized_keys line such as \"ssh-ed25519 AAAA... comment\"", i))
		}
		if seen[id] {
			return fail(fmt.Errorf("keys[%d] repeats an earlier key", i))
		}
		seen[id] = true
		a.lines, a.ids = append(a.lines, line), append(a.ids, id)
	}
	return a, nil
}

// keyID is the identity of a key line: its public key's wire form.
func keyID(line string) (string, bool) {
	if line == "" || strings.HasPrefix(line, "#") {
		return "", false
	}
	pk, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil || len(rest) != 0 {
		return "", false
	}
	return string(pk.Marshal()), true
}

func (a *authKey) edit(old []byte) ([]byte, string) {
	lines, trailingNL := textLines(string(old))
	var out []string
	added, changed, removed := 0, 0, 0
	done := map[string]bool{}
	for _, l := range lines {
		id, isKey := keyID(strings.TrimSpace(l))
		at := -1
		for i := range a.ids {
			if isKey && a.ids[i] == id {
				at = i
			}
		}
		switch {
		case at >= 0 && !a.present, at >= 0 && done[id], at < 0 && a.exclusive:
			removed++
		case at >= 0:
			done[id] = true
			if l != a.lines[at] {
				changed++
			}
			out = append(out, a.lines[at])
		default:
			out = append(out, l)
		}
	}
	if a.present {
		for i, id := range a.ids {
			if !done[id] {
				out = append(out, a.lines[i])
				added++
				trailingNL = true
			}
		}
	}
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{added, "added"}, {changed, "changed"}, {removed, "removed"}} {
		if c.n == 1 {
			parts = append(parts, "1 key "+c.what)
		} else if c.n > 1 {
			parts = append(parts, strconv.Itoa(c.n)+" keys "+c.what)
		}
	}
	if len(parts) == 0 {
		return old, ""
	}
	return joinLines(out, trailingNL), joinSummary(parts)
}

// target resolves the user and opens the directory of the file without
// following symlinks; the file is then edited through /proc/self/fd, so a
// user who swaps ~/.ssh for a symlink between the check and the rename
// cannot redirect root's write (or read) elsewhere.
func (a *authKey) target(create bool) (dirFD *os.File, te *textEdit, file string, err error) {
	u, err := user.Lookup(a.user)
	if err != nil {
		return nil, nil, "", fmt.Errorf("authorized_key %s: no such user on this host", a.user)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	path := a.path
	if path == "" {
		if !filepath.IsAbs(u.HomeDir) {
			return nil, nil, "", fmt.Errorf("authorized_key %s: home %q is not an absolute path", a.user, u.HomeDir)
		}
		path = filepath.Join(u.HomeDir, ".ssh", "authorized_keys")
	}
	dir := filepath.Dir(path)
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist) && a.path == "":
		if !create {
			return nil, nil, path, nil
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, nil, "", fmt.Errorf("authorized_key %s: %w", a.user, err)
		}
		if err := os.Lchown(dir, uid, gid); err != nil {
			return nil, nil, "", fmt.Errorf("authorized_key %s: %w", a.user, err)
		}
		file = path
	case err != nil:
		return nil, nil, "", fmt.Errorf("authorized_key %s: %w", a.user, err)
	case !fi.IsDir():
		return nil, nil, "", fmt.Errorf("authorized_key %s: %s is %s, not a directory", a.user, dir, describeType(fi))
	}
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, "", fmt.Errorf("authorized_key %s: %s: %w", a.user, dir, err)
	}
	te = &textEdit{kind: "authorized_key", path: fmt.Sprintf("/proc/self/fd/%d/%s", f.Fd(), filepath.Base(path)),
		create: true, perm: 0o600, uid: uid, gid: gid, edit: a.edit}
	return f, te, file, nil
}

func (a *authKey) run(apply bool) (Change, error) {
	// made is the file's path when ~/.ssh is (or, in check mode, would be)
	// created by this run.
	f, te, made, err := a.target(apply)
	if err != nil {
		return Change{}, err
	}
	if f == nil { // no ~/.ssh yet, check mode: everything is to add
		if !a.present {
			return Change{}, nil
		}
		new, summary := a.edit(nil)
		return Change{Changed: true, Summary: "create ~/.ssh, create " + made + ", " + summary,
			Diff: contentDiff(made, nil, new, false, true)}, nil
	}
	defer f.Close()
	unlock := lockPath(f.Name())
	defer unlock()
	d, err := te.inspect()
	if err != nil {
		return d.change, fmt.Errorf("authorized_key %s: %s", a.user, strings.ReplaceAll(err.Error(), te.path, filepath.Join(f.Name(), filepath.Base(te.path))))
	}
	real := filepath.Join(f.Name(), filepath.Base(te.path))
	d.change.Summary = strings.ReplaceAll(d.change.Summary, te.path, real)
	d.change.Diff = strings.ReplaceAll(d.change.Diff, te.path, real)
	if made != "" {
		d.change.Summary = "create ~/.ssh, " + d.change.Summary
	}
	if !d.change.Changed || !apply {
		return d.change, nil
	}
	if err := te.write(d); err != nil {
		return d.change, fmt.Errorf("authorized_key %s: %w", a.user, err)
	}
	return d.change, nil
}

func (a *authKey) Check(ctx context.Context, env *Env) (Change, error) { return a.run(false) }

func (a *authKey) Apply(ctx context.Context, env *Env) (Change, error) { return a.run(true) }
