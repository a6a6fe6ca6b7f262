package resource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/safefile"
)

func init() {
	Register(&Schema{
		Kind: "directory",
		Doc:  "A directory (missing parents are created 0755, like mkdir -p), its mode and ownership, or its absence.",
		Params: []Param{
			{Name: "mode", Type: Mode, Doc: "permission bits, e.g. 0o755 or \"0755\" (default: keep, 0755 when created)"},
			{Name: "owner", Type: String, Doc: "owner user name or numeric uid (default: keep)"},
			{Name: "group", Type: String, Doc: "group name or numeric gid (default: keep)"},
			{Name: "state", Type: String, Doc: "\"present\" (default) or \"absent\""},
			{Name: "force", Type: Bool, Doc: "with state=\"absent\", remove a non-empty directory recursively"},
		},
		Factory: newDirectory,
	})
}

const defaultDirMode = 0o755

type directory struct {
	path    string
	present bool
	force   bool
	attrs   attrs
}

func newDirectory(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	if err := checkAbs("directory", name); err != nil {
		return nil, err
	}
	d := &directory{path: name}
	var err error
	if d.present, err = stateParam(p); err != nil {
		return nil, fmt.Errorf("directory %s: %w", name, err)
	}
	if d.force, err = p.Bool("force", false); err != nil {
		return nil, fmt.Errorf("directory %s: %w", name, err)
	}
	if d.attrs, err = attrParams(p); err != nil {
		return nil, fmt.Errorf("directory %s: %w", name, err)
	}
	if !d.present {
		if err := absentRejects(p, "mode", "owner", "group"); err != nil {
			return nil, fmt.Errorf("directory %s: %w", name, err)
		}
		if name == "/" {
			return nil, fmt.Errorf("directory /: refusing to remove the root directory")
		}
	}
	return d, nil
}

func (d *directory) inspect() (c Change, exists bool, err error) {
	fi, err := os.Lstat(d.path)
	exists = err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Change{}, exists, fmt.Errorf("directory %s: %w", d.path, err)
	}
	if exists && !fi.IsDir() {
		return Change{}, exists, fmt.Errorf("directory %s: exists and is %s, not a directory; herd will not replace it", d.path, describeType(fi))
	}
	if !d.present {
		if !exists {
			return Change{}, exists, nil
		}
		empty, err := isEmptyDir(d.path)
		if err != nil {
			return Change{}, exists, fmt.Errorf("directory %s: %w", d.path, err)
		}
		switch {
		case empty:
			return Change{Changed: true, Summary: "remove"}, exists, nil
		case d.force:
			return Change{Changed: true, Summary: "remove recursively"}, exists, nil
		}
		return Change{}, exists, fmt.Errorf("directory %s: is not empty; set force=True to remove it with its content", d.path)
	}
	if !exists {
		if _, _, err := d.attrs.ids(); err != nil {
			return Change{}, exists, fmt.Errorf("directory %s: %w", d.path, err)
		}
		return Change{Changed: true, Summary: "create"}, exists, nil
	}
	parts, err := d.attrs.diff(fi)
	if err != nil {
		return Change{}, exists, fmt.Errorf("directory %s: %w", d.path, err)
	}
	return Change{Changed: len(parts) > 0, Summary: joinSummary(parts)}, exists, nil
}

func (d *directory) Check(ctx context.Context, env *Env) (Change, error) {
	c, _, err := d.inspect()
	return c, err
}

func (d *directory) Apply(ctx context.Context, env *Env) (Change, error) {
	c, exists, err := d.inspect()
	if err != nil || !c.Changed {
		return c, err
	}
	if !d.present {
		if d.force {
			err = os.RemoveAll(d.path)
		} else {
			err = os.Remove(d.path)
		}
		if err != nil {
			return c, fmt.Errorf("directory %s: %w", d.path, err)
		}
		return c, safefile.SyncDir(filepath.Dir(d.path))
	}
	if !exists {
		if err := mkdirParents(filepath.Dir(d.path)); err != nil {
			return c, fmt.Errorf("directory %s: %w", d.path, err)
		}
		if err := os.Mkdir(d.path, 0o700); err != nil {
			return c, fmt.Errorf("directory %s: %w", d.path, err)
		}
		m := d.attrs
		if m.mode < 0 {
			m.mode = defaultDirMode
		}
		if err := m.fix(d.path); err != nil {
			return c, fmt.Errorf("directory %s: %w", d.path, err)
		}
		return c, safefile.SyncDir(filepath.Dir(d.path))
	}
	if err := d.attrs.fix(d.path); err != nil {
		return c, fmt.Errorf("directory %s: %w", d.path, err)
	}
	return c, nil
}

// mkdirParents is mkdir -p with an exact 0755 on what it creates, whatever
// the umask of the agent.
func mkdirParents(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := mkdirParents(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, defaultDirMode); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return os.Chmod(dir, defaultDirMode)
}

func isEmptyDir(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return false, err
}
