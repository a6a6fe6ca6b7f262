package resource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/safefile"
)

func init() {
	Register(&Schema{
		Kind: "link",
		Doc:  "A symbolic link at the given path pointing at target. Replaced atomically when its target changes.",
		Params: []Param{
			{Name: "target", Type: String, Required: true, Doc: "what the link points at (stored as given; may be relative)"},
			{Name: "state", Type: String, Doc: "\"present\" (default) or \"absent\""},
			{Name: "force", Type: Bool, Doc: "replace an existing file that is not a link (never a directory)"},
		},
		Factory: newLink,
	})
}

type link struct {
	path, target string
	present      bool
	force        bool
}

func newLink(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	if err := checkAbs("link", name); err != nil {
		return nil, err
	}
	l := &link{path: name}
	var err error
	if l.present, err = stateParam(p); err != nil {
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	if l.force, err = p.Bool("force", false); err != nil {
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	if l.target, err = p.Str("target", ""); err != nil {
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	if l.present && l.target == "" {
		return nil, fmt.Errorf("link %s: target must not be empty", name)
	}
	return l, nil
}

func (l *link) inspect() (Change, error) {
	fi, err := os.Lstat(l.path)
	if errors.Is(err, os.ErrNotExist) {
		if l.present {
			return Change{Changed: true, Summary: "create → " + l.target}, nil
		}
		return Change{}, nil
	}
	if err != nil {
		return Change{}, fmt.Errorf("link %s: %w", l.path, err)
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		switch {
		case !l.present:
			return Change{}, fmt.Errorf("link %s: exists and is %s, not a link; herd will not remove it", l.path, describeType(fi))
		case fi.IsDir():
			return Change{}, fmt.Errorf("link %s: exists and is a directory; herd will not replace a directory with a link", l.path)
		case !l.force:
			return Change{}, fmt.Errorf("link %s: exists and is %s; set force=True to replace it with a link", l.path, describeType(fi))
		}
		return Change{Changed: true, Summary: "replace " + describeType(fi) + " with link → " + l.target}, nil
	}
	if !l.present {
		return Change{Changed: true, Summary: "remove"}, nil
	}
	cur, err := os.Readlink(l.path)
	if err != nil {
		return Change{}, fmt.Errorf("link %s: %w", l.path, err)
	}
	if cur == l.target {
		return Change{}, nil
	}
	return Change{Changed: true, Summary: "target " + cur + "→" + l.target}, nil
}

func (l *link) Check(ctx context.Context, env *Env) (Change, error) { return l.inspect() }

// Apply creates the new link under a temp name and renames it over the old
// path, so the path never disappears while it is being retargeted.
func (l *link) Apply(ctx context.Context, env *Env) (Change, error) {
	c, err := l.inspect()
	if err != nil || !c.Changed {
		return c, err
	}
	dir := filepath.Dir(l.path)
	if !l.present {
		if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return c, fmt.Errorf("link %s: %w", l.path, err)
		}
		return c, safefile.SyncDir(dir)
	}
	tmp := filepath.Join(dir, safefile.TempName(filepath.Base(l.path)))
	if err := os.Symlink(l.target, tmp); err != nil {
		return c, fmt.Errorf("link %s: %w", l.path, err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		os.Remove(tmp)
		return c, fmt.Errorf("link %s: %w", l.path, err)
	}
	return c, safefile.SyncDir(dir)
}
