package resource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/safefile"
)

func init() {
	Register(&Schema{
		Kind: "file",
		Doc: "A regular file at an absolute path: its content, mode and ownership, or its absence. " +
			"Without content or blob, a present file is only ensured to exist (created empty).",
		Params: []Param{
			{Name: "content", Type: String, Doc: "literal content; exclusive with blob"},
			{Name: "blob", Type: String, Doc: "sha256 hex key of the content in the plan's blobs (set by source= and template())"},
			{Name: "mode", Type: Mode, Doc: "permission bits, e.g. 0o644 or \"0644\" (default: keep, 0644 when created)"},
			{Name: "owner", Type: String, Doc: "owner user name or numeric uid (default: keep)"},
			{Name: "group", Type: String, Doc: "group name or numeric gid (default: keep)"},
			{Name: "state", Type: String, Doc: "\"present\" (default) or \"absent\""},
			{Name: "size", Type: Int, Doc: "size of a blob fetched from the controller (set by source= for large files)"},
		},
		Factory: newFile,
	})
}

const defaultFileMode = 0o644

// staleTempAge is how old a leftover temp file must be before a writer of
// the same path removes it: old enough not to be another writer's work in
// progress.
const staleTempAge = 10 * time.Minute

type file struct {
	path    string
	present bool
	// content is nil when only existence and metadata are managed.
	content []byte
	// remote is the content hash when the content stays on the controller
	// until the target is found to differ; size is its length.
	remote string
	size   int64
	attrs  attrs
}

func newFile(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	f := &file{path: name}
	if err := checkAbs("file", name); err != nil {
		return nil, err
	}
	var err error
	if f.present, err = stateParam(p); err != nil {
		return nil, fmt.Errorf("file %s: %w", name, err)
	}
	if f.attrs, err = attrParams(p); err != nil {
		return nil, fmt.Errorf("file %s: %w", name, err)
	}
	content, err := p.Str("content", "")
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", name, err)
	}
	blob, err := p.Str("blob", "")
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", name, err)
	}
	switch {
	case p.Has("content") && p.Has("blob"):
		return nil, fmt.Errorf("file %s: content and source/template are exclusive; give one", name)
	case p.Has("content"):
		f.content = []byte(content)
	case p.Has("blob"):
		b, ok := blobs[blob]
		if !ok && plan.IsHash(blob) && p.Has("size") {
			f.remote = blob
			if f.size, err = p.Int("size", 0); err != nil || f.size < 0 {
				return nil, fmt.Errorf("file %s: size must be a byte count", name)
			}
			break
		}
		if !ok {
			return nil, fmt.Errorf("file %s: blob %s is not in the plan", name, blob)
		}
		f.content = b
		if f.content == nil {
			f.content = []byte{}
		}
	}
	if p.Has("size") && f.remote == "" {
		return nil, fmt.Errorf("file %s: size is set by source= for files fetched from the controller; do not give it", name)
	}
	if !f.present {
		if err := absentRejects(p, "content", "blob", "mode", "owner", "group", "size"); err != nil {
			return nil, fmt.Errorf("file %s: %w", name, err)
		}
	}
	return f, nil
}

func checkAbs(kind, path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s %q: path must be absolute", kind, path)
	}
	if filepath.Clean(path) != path {
		return fmt.Errorf("%s %q: path is not clean (did you mean %q?)", kind, path, filepath.Clean(path))
	}
	return nil
}

// fileDelta is what inspect found: enough for Check to report and for Apply
// to do only what is needed.
type fileDelta struct {
	exists      bool
	fi          os.FileInfo
	rewrite     bool     // content must be (re)written
	attrChanges []string // metadata that differs on an existing file
	change      Change
}

func (f *file) inspect() (fileDelta, error) {
	var d fileDelta
	fi, err := os.Lstat(f.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return d, fmt.Errorf("file %s: %w", f.path, err)
	case !fi.Mode().IsRegular():
		return d, fmt.Errorf("file %s: exists and is %s, not a regular file; herd will not replace it", f.path, describeType(fi))
	default:
		d.exists, d.fi = true, fi
	}

	if !f.present {
		if d.exists {
			d.change = Change{Changed: true, Summary: "remove"}
			if fi.Size() <= maxDiffBytes {
				if old, err := os.ReadFile(f.path); err == nil {
					d.change.Diff = contentDiff(f.path, old, nil, true, false)
				}
			}
		}
		return d, nil
	}

	if !d.exists {
		d.rewrite = true
		d.change = Change{Changed: true, Summary: "create"}
		if f.remote != "" {
			d.change.Diff = fmt.Sprintf("new file of %d bytes, sha256 %.12s\n", f.size, f.remote)
		} else if f.content != nil {
			d.change.Diff = contentDiff(f.path, nil, f.content, false, true)
		}
		if _, _, err := f.attrs.ids(); err != nil {
			return d, fmt.Errorf("file %s: %w", f.path, err)
		}
		return d, nil
	}

	var parts []string
	if f.remote != "" {
		// Compared by hash on the target: nothing crosses the network
		// unless the content differs.
		same, err := sameHash(f.path, fi.Size(), f.remote, f.size)
		if err != nil {
			return d, fmt.Errorf("file %s: %w", f.path, err)
		}
		if !same {
			d.rewrite = true
			parts = append(parts, "content")
			d.change.Diff = fmt.Sprintf("content differs (%d → %d bytes, sha256 %.12s, too large to show)\n", fi.Size(), f.size, f.remote)
		}
	} else if f.content != nil {
		same, err := sameContent(f.path, fi.Size(), f.content)
		if err != nil {
			return d, fmt.Errorf("file %s: %w", f.path, err)
		}
		if !same {
			d.rewrite = true
			parts = append(parts, "content")
			if fi.Size() > maxDiffBytes {
				d.change.Diff = fmt.Sprintf("content differs (%d → %d bytes, too large to show)\n", fi.Size(), len(f.content))
			} else if old, err := os.ReadFile(f.path); err == nil {
				d.change.Diff = contentDiff(f.path, old, f.content, true, true)
			}
		}
	}
	d.attrChanges, err = f.attrs.diff(fi)
	if err != nil {
		return d, fmt.Errorf("file %s: %w", f.path, err)
	}
	parts = append(parts, d.attrChanges...)
	d.change.Changed = len(parts) > 0
	d.change.Summary = joinSummary(parts)
	return d, nil
}

func (f *file) Check(ctx context.Context, env *Env) (Change, error) {
	d, err := f.inspect()
	return d.change, err
}

// Apply rewrites the file only when its content must change (or it is
// missing); a metadata-only difference is fixed in place, so the inode and
// anything holding it open are kept.
func (f *file) Apply(ctx context.Context, env *Env) (Change, error) {
	d, err := f.inspect()
	if err != nil || !d.change.Changed {
		return d.change, err
	}
	if !f.present {
		if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return d.change, fmt.Errorf("file %s: %w", f.path, err)
		}
		return d.change, safefile.SyncDir(filepath.Dir(f.path))
	}
	if !d.rewrite {
		if err := f.attrs.fix(f.path); err != nil {
			return d.change, fmt.Errorf("file %s: %w", f.path, err)
		}
		return d.change, nil
	}
	if dir := filepath.Dir(f.path); !d.exists {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return d.change, fmt.Errorf("file %s: parent directory %s does not exist (declare directory(%q) before this file)", f.path, dir, dir)
		}
	}
	uid, gid, err := f.attrs.ids()
	if err != nil {
		return d.change, fmt.Errorf("file %s: %w", f.path, err)
	}
	perm := fileMode(defaultFileMode)
	switch {
	case f.attrs.mode >= 0:
		perm = fileMode(f.attrs.mode)
	case d.exists:
		perm = fileMode(unixMode(d.fi.Mode()))
	}
	safefile.CleanStale(f.path, staleTempAge) // best effort: litter from killed runs
	if f.remote != "" {
		if err := fetchInstall(ctx, env, f.path, f.remote, f.size, perm, uid, gid); err != nil {
			return d.change, fmt.Errorf("file %s: %w", f.path, err)
		}
		return d.change, nil
	}
	content := f.content
	if content == nil { // only existence is managed and the file is missing
		content = []byte{}
	}
	if err := safefile.WriteBytes(f.path, content, perm, uid, gid); err != nil {
		return d.change, fmt.Errorf("file %s: %w", f.path, err)
	}
	return d.change, nil
}

// sameContent compares a file with want without reading it all into memory.
func sameContent(path string, size int64, want []byte) (bool, error) {
	if size != int64(len(want)) {
		return false, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer fh.Close()
	buf := make([]byte, 256<<10)
	for off := 0; ; {
		n, err := fh.Read(buf)
		if n > 0 {
			if off+n > len(want) || !bytes.Equal(buf[:n], want[off:off+n]) {
				return false, nil
			}
			off += n
		}
		if err == io.EOF {
			return off == len(want), nil
		}
		if err != nil {
			return false, err
		}
	}
}

// sameHash says whether a file of size bytes has content h of wantSize
// bytes, hashing it only when the sizes match.
func sameHash(path string, size int64, h string, wantSize int64) (bool, error) {
	if size != wantSize {
		return false, nil
	}
	got, err := hashOf(path)
	return got == h, err
}

func describeType(fi os.FileInfo) string {
	switch m := fi.Mode(); {
	case m.IsDir():
		return "a directory"
	case m&os.ModeSymlink != 0:
		return "a symlink"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	case m.IsRegular():
		return "a regular file"
	}
	return "not a regular file"
}
