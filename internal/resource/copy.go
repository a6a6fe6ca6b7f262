package resource

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/safefile"
)

func init() {
	Register(&Schema{
		Kind: "copy",
		Doc: "A directory tree copied from the controller (copy(dest, source=\"files/tree\")). Files are compared " +
			"by sha256 on the target and only those that differ are fetched, in parallel over the one connection.",
		Params: []Param{
			{Name: "files", Type: StringMap, Required: true, Doc: "manifest, computed from source=: relative path → \"<sha256> <size>\" or \"dir\""},
			{Name: "delete_extra", Type: Bool, Doc: "remove files and directories under dest that are not in source (default False)"},
			{Name: "mode", Type: Mode, Doc: "permission bits of files (default: keep, 0644 when created)"},
			{Name: "dir_mode", Type: Mode, Doc: "permission bits of directories (default: keep, 0755 when created)"},
			{Name: "owner", Type: String, Doc: "owner of files and directories (default: keep)"},
			{Name: "group", Type: String, Doc: "group of files and directories (default: keep)"},
		},
		Factory: newCopy,
	})
}

// copyFetchers is how many files of a tree are fetched at once: enough to
// keep the connection busy with small files (each is a request and an
// answer), few enough to bound memory.
const copyFetchers = 16

// copySmall is the size under which a tree's file is fetched into memory
// and written in one go rather than through a resumable temp file.
const copySmall = 1 << 20

type copyFile struct {
	hash string
	size int64
}

type copyTree struct {
	dest        string
	files       map[string]copyFile // slash-separated relative path →
	dirs        []string            // sorted, parents first
	deleteExtra bool
	fileAttrs   attrs
	dirAttrs    attrs
	blobs       map[string][]byte
}

func newCopy(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	if err := checkAbs("copy", name); err != nil {
		return nil, err
	}
	c := &copyTree{dest: name, files: map[string]copyFile{}, blobs: blobs}
	var err error
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("copy %s: %w", name, err) }
	if c.deleteExtra, err = p.Bool("delete_extra", false); err != nil {
		return fail(err)
	}
	if c.fileAttrs, err = attrParams(p); err != nil {
		return fail(err)
	}
	c.dirAttrs = c.fileAttrs
	if c.dirAttrs.mode, err = modeParam(p, "dir_mode"); err != nil {
		return fail(err)
	}
	manifest, err := p.Map("files")
	if err != nil {
		return fail(err)
	}
	for rel, v := range manifest {
		if rel == "" || rel == "." || path.Clean(rel) != rel || path.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") {
			return fail(fmt.Errorf("manifest path %q must be relative, clean and inside the tree", rel))
		}
		if v == "dir" {
			c.dirs = append(c.dirs, rel)
			continue
		}
		h, sz, ok := strings.Cut(v, " ")
		size, err := strconv.ParseInt(sz, 10, 64)
		if !ok || !plan.IsHash(h) || err != nil || size < 0 {
			return fail(fmt.Errorf("manifest entry %q: %q is not \"<sha256> <size>\" or \"dir\"", rel, v))
		}
		c.files[rel] = copyFile{hash: h, size: size}
	}
	sort.Strings(c.dirs)
	return c, nil
}

// copyDelta is what inspect found.
type copyDelta struct {
	mkdirs     []string // relative; "." is dest itself
	dirAttrs   []string // existing directories whose metadata differs
	write      []string // files to (re)write
	fileAttrs  []string // files whose metadata alone differs
	remove     []string // extras, when delete_extra
	existing   map[string]os.FileInfo
	change     Change
	writeBytes int64
}

func (c *copyTree) inspect() (copyDelta, error) {
	d := copyDelta{existing: map[string]os.FileInfo{}}
	fi, err := os.Lstat(c.dest)
	switch {
	case errors.Is(err, os.ErrNotExist):
		d.mkdirs = append(d.mkdirs, ".")
	case err != nil:
		return d, err
	case !fi.IsDir():
		return d, fmt.Errorf("%s exists and is %s, not a directory", c.dest, describeType(fi))
	default:
		if err := c.inspectDir(&d, ".", fi); err != nil {
			return d, err
		}
	}
	for _, rel := range c.dirs {
		fi, err := os.Lstat(filepath.Join(c.dest, rel))
		switch {
		case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			d.mkdirs = append(d.mkdirs, rel)
		case err != nil:
			return d, err
		case !fi.IsDir():
			return d, fmt.Errorf("%s exists and is %s, not a directory", filepath.Join(c.dest, rel), describeType(fi))
		default:
			if err := c.inspectDir(&d, rel, fi); err != nil {
				return d, err
			}
		}
	}
	rels := make([]string, 0, len(c.files))
	for rel := range c.files {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		want := c.files[rel]
		p := filepath.Join(c.dest, rel)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			d.write = append(d.write, rel)
			d.writeBytes += want.size
			continue
		case err != nil:
			return d, err
		case fi.IsDir():
			return d, fmt.Errorf("%s is a directory where the source has a file; herd will not replace it", p)
		case !fi.Mode().IsRegular():
			// A symlink or other entry is replaced (the rename replaces
			// the entry itself, never what a symlink points to).
			d.write = append(d.write, rel)
			d.writeBytes += want.size
			continue
		}
		d.existing[rel] = fi
		same, err := sameHash(p, fi.Size(), want.hash, want.size)
		if err != nil {
			return d, err
		}
		if !same {
			d.write = append(d.write, rel)
			d.writeBytes += want.size
			continue
		}
		if m, err := c.fileAttrs.diff(fi); err != nil {
			return d, err
		} else if len(m) > 0 {
			d.fileAttrs = append(d.fileAttrs, rel)
		}
	}
	destMissing := len(d.mkdirs) > 0 && d.mkdirs[0] == "."
	if c.deleteExtra && !destMissing {
		if err := c.findExtra(&d); err != nil {
			return d, err
		}
	}
	d.change = c.summarize(d)
	return d, nil
}

func (c *copyTree) inspectDir(d *copyDelta, rel string, fi os.FileInfo) error {
	m, err := c.dirAttrs.diff(fi)
	if err != nil {
		return err
	}
	if len(m) > 0 {
		d.dirAttrs = append(d.dirAttrs, rel)
	}
	return nil
}

// findExtra lists entries under dest that the manifest does not name. Temp
// files of herd writers in progress are left alone.
func (c *copyTree) findExtra(d *copyDelta) error {
	wantDir := map[string]bool{}
	for _, rel := range c.dirs {
		wantDir[rel] = true
	}
	return filepath.WalkDir(c.dest, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(c.dest, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		name := e.Name()
		if strings.HasPrefix(name, safefile.TempPrefix) || strings.HasPrefix(name, PartialPrefix) {
			return nil
		}
		if e.IsDir() {
			if !wantDir[rel] {
				d.remove = append(d.remove, rel)
				return filepath.SkipDir
			}
			return nil
		}
		if _, ok := c.files[rel]; !ok {
			d.remove = append(d.remove, rel)
		}
		return nil
	})
}

func (c *copyTree) summarize(d copyDelta) Change {
	var parts []string
	add := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	add(len(d.mkdirs), "directory to create", "directories to create")
	add(len(d.write), fmt.Sprintf("file to write (%d bytes)", d.writeBytes), fmt.Sprintf("files to write (%d bytes)", d.writeBytes))
	add(len(d.fileAttrs)+len(d.dirAttrs), "metadata change", "metadata changes")
	add(len(d.remove), "extra entry to remove", "extra entries to remove")
	ch := Change{Changed: len(parts) > 0, Summary: joinSummary(parts)}
	var diff strings.Builder
	list := func(sign string, rels []string) {
		for i, rel := range rels {
			if i == 50 {
				fmt.Fprintf(&diff, "%s … and %d more\n", sign, len(rels)-50)
				return
			}
			fmt.Fprintf(&diff, "%s %s\n", sign, path.Join(c.dest, rel))
		}
	}
	list("+", d.write)
	list("-", d.remove)
	ch.Diff = diff.String()
	return ch
}

func (c *copyTree) Check(ctx context.Context, env *Env) (Change, error) {
	d, err := c.inspect()
	if err != nil {
		return d.change, fmt.Errorf("copy %s: %w", c.dest, err)
	}
	return d.change, nil
}

// Apply creates missing directories, fetches only the files whose sha256
// differs (each written atomically), fixes metadata in place and removes
// extras.
func (c *copyTree) Apply(ctx context.Context, env *Env) (Change, error) {
	d, err := c.inspect()
	if err != nil || !d.change.Changed {
		return d.change, wrapCopy(c.dest, err)
	}
	for _, rel := range d.mkdirs {
		p := filepath.Join(c.dest, rel)
		perm := fileMode(0o755)
		if c.dirAttrs.mode >= 0 {
			perm = fileMode(c.dirAttrs.mode)
		}
		if err := os.Mkdir(p, perm); err != nil && !errors.Is(err, os.ErrExist) {
			return d.change, wrapCopy(c.dest, err)
		}
		if err := c.dirAttrs.fix(p); err != nil {
			return d.change, wrapCopy(c.dest, err)
		}
	}
	for _, rel := range d.dirAttrs {
		if err := c.dirAttrs.fix(filepath.Join(c.dest, rel)); err != nil {
			return d.change, wrapCopy(c.dest, err)
		}
	}
	if err := c.writeFiles(ctx, env, d); err != nil {
		return d.change, wrapCopy(c.dest, err)
	}
	for _, rel := range d.fileAttrs {
		if err := c.fileAttrs.fix(filepath.Join(c.dest, rel)); err != nil {
			return d.change, wrapCopy(c.dest, err)
		}
	}
	for i := len(d.remove) - 1; i >= 0; i-- {
		if err := os.RemoveAll(filepath.Join(c.dest, d.remove[i])); err != nil {
			return d.change, wrapCopy(c.dest, err)
		}
	}
	if len(d.remove) > 0 {
		if err := safefile.SyncDir(c.dest); err != nil {
			return d.change, wrapCopy(c.dest, err)
		}
	}
	return d.change, nil
}

func wrapCopy(dest string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("copy %s: %w", dest, err)
}

// writeFiles fetches and writes d.write with copyFetchers workers, so the
// requests of many small files are in flight together instead of paying a
// round trip each. The first error stops the others.
func (c *copyTree) writeFiles(ctx context.Context, env *Env, d copyDelta) error {
	uid, gid, err := c.fileAttrs.ids()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan string)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	quiet := *env
	quiet.Log = nil // per-file progress of a tree would drown the output
	for range min(copyFetchers, len(d.write)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rel := range work {
				if err := c.writeOne(ctx, &quiet, d, rel, uid, gid); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("%s: %w", rel, err)
					}
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
	for _, rel := range d.write {
		select {
		case work <- rel:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	if first != nil {
		return first
	}
	synced := map[string]bool{}
	for _, rel := range d.write {
		dir := filepath.Dir(filepath.Join(c.dest, rel))
		if !synced[dir] {
			synced[dir] = true
			if err := safefile.SyncDir(dir); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *copyTree) writeOne(ctx context.Context, env *Env, d copyDelta, rel string, uid, gid int) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	want := c.files[rel]
	p := filepath.Join(c.dest, rel)
	perm := fileMode(defaultFileMode)
	switch fi, ok := d.existing[rel]; {
	case c.fileAttrs.mode >= 0:
		perm = fileMode(c.fileAttrs.mode)
	case ok:
		perm = fileMode(unixMode(fi.Mode()))
	}
	if want.size >= copySmall {
		return fetchInstall(ctx, env, p, want.hash, want.size, perm, uid, gid)
	}
	data, ok := c.blobs[want.hash]
	if !ok {
		var err error
		if data, err = fetchBytes(ctx, env, want.hash); err != nil {
			return err
		}
	}
	return safefile.WriteNoDirSync(p, data, perm, uid, gid)
}
