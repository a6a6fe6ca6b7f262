package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"go.starlark.net/starlark"

	"github.com/herd-project/herd/internal/fileserver"
	"github.com/herd-project/herd/internal/plan"
)

// InlineLimit is the size from which a file no longer travels inside the
// plan but is fetched by hash: small files cost no round trip, large ones
// cost no bytes when the target already has them.
const InlineLimit = 128 << 10

// fileServing is the policy's file-serving configuration and the caches
// that make planning many hosts cheap.
type fileServing struct {
	mu         sync.Mutex
	allow      []string
	deny       []string
	declaredAt string
	rules      map[*Role]*rulesResult
	hashes     map[contentKey]string
}

type rulesResult struct {
	rules *fileserver.Rules
	err   error
}

// contentKey identifies a file's content cheaply: a file whose inode, size and
// mtime are unchanged is not hashed again for the next host.
type contentKey struct {
	path       string
	dev, ino   uint64
	size       int64
	mtimeNanos int64
}

// fileservingBuiltin is fileserving(allow=[...], deny=[...]): patterns over
// file names that narrow what roles may send. deny adds to the defaults
// (*.star, .git, *.swp, *.bak, *~), which always apply.
func fileservingBuiltin(p *Policy) *starlark.Builtin {
	return starlark.NewBuiltin("fileserving", func(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		pos := callerPos(thread)
		if thread.Local(loadingKey) == nil {
			return nil, errorAt(pos, "fileserving() can only be called at the top level of a policy")
		}
		var allow, deny *starlark.List
		if err := starlark.UnpackArgs("fileserving", args, kwargs, "allow?", &allow, "deny?", &deny); err != nil {
			return nil, errorAt(pos, "%v", err)
		}
		fsv := p.fileServing()
		fsv.mu.Lock()
		defer fsv.mu.Unlock()
		if fsv.declaredAt != "" {
			return nil, errorAt(pos, "fileserving() is already set at %s; call it once", fsv.declaredAt)
		}
		for _, l := range []struct {
			name string
			v    *starlark.List
			dst  *[]string
		}{{"allow", allow, &fsv.allow}, {"deny", deny, &fsv.deny}} {
			if l.v == nil {
				continue
			}
			list, err := stringList("fileserving()", l.name, l.v)
			if err != nil {
				return nil, errorAt(pos, "%v", err)
			}
			*l.dst = list
		}
		if _, err := fileserver.NewRules(p.Dir, nil, fsv.allow, fsv.deny); err != nil {
			return nil, errorAt(pos, "fileserving(): %v", err)
		}
		fsv.declaredAt = pos
		return starlark.None, nil
	})
}

func (p *Policy) fileServing() *fileServing {
	p.tmplMu.Lock()
	defer p.tmplMu.Unlock()
	if p.files == nil {
		p.files = &fileServing{rules: map[*Role]*rulesResult{}, hashes: map[contentKey]string{}}
	}
	return p.files
}

// ServingRules returns what role may send: its fileserving_paths (default:
// the policy's directory) and the policy's patterns. The file server uses
// them to re-check every path at transfer time.
func (p *Policy) ServingRules(r *Role) (*fileserver.Rules, error) {
	fsv := p.fileServing()
	fsv.mu.Lock()
	defer fsv.mu.Unlock()
	if res, ok := fsv.rules[r]; ok {
		return res.rules, res.err
	}
	rules, err := fileserver.NewRules(p.Dir, r.FileservingPaths, fsv.allow, fsv.deny)
	if err != nil {
		err = errorAt(r.Pos, "role %s: %v", r.Name, err)
	}
	fsv.rules[r] = &rulesResult{rules, err}
	return rules, err
}

// servable checks a controller path named in the policy and returns its
// resolved path.
func (p *Policy) servable(b *builder, rel string) (string, error) {
	rules, err := p.ServingRules(b.role)
	if err != nil {
		return "", err
	}
	p.inputs.add(p.path(rel))
	resolved, err := rules.Check(p.path(rel))
	if err == nil {
		p.inputs.add(resolved)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return "", fmt.Errorf("%s: %v", rel, pe.Err)
	}
	return resolved, err
}

// hashFile returns the sha256 and size of a controller file, from the cache
// when the file is unchanged since it was last hashed.
func (p *Policy) hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s is not a regular file", path)
	}
	key := contentKey{path: path, size: fi.Size(), mtimeNanos: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		key.dev, key.ino = uint64(st.Dev), st.Ino
	}
	fsv := p.fileServing()
	fsv.mu.Lock()
	h, ok := fsv.hashes[key]
	fsv.mu.Unlock()
	if ok {
		return h, fi.Size(), nil
	}
	h, n, err := plan.HashReader(f)
	if err != nil {
		return "", 0, err
	}
	if n != fi.Size() {
		return "", 0, fmt.Errorf("%s changed while it was read", path)
	}
	fsv.mu.Lock()
	fsv.hashes[key] = h
	fsv.mu.Unlock()
	return h, n, nil
}

// sourceFile makes a controller file the content of a file resource: inline
// when small, by reference when large. It returns the blob hash.
func (p *Policy) sourceFile(b *builder, rel string) (string, error) {
	path, err := p.servable(b, rel)
	if err != nil {
		return "", err
	}
	h, size, err := p.hashFile(path)
	if err != nil {
		return "", err
	}
	if size < InlineLimit {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		if plan.Hash(data) != h {
			return "", fmt.Errorf("%s changed while planning; run again", path)
		}
		b.plan.AddBlob(data)
		return h, nil
	}
	b.plan.AddFile(h, size)
	b.sources.Add(h, path, size)
	return h, nil
}

// copyManifest walks a controller tree for copy(): relative path → "<sha256>
// <size>" for files, "dir" for directories. Every file becomes servable by
// hash; excluded names (deny patterns, .git, editor litter) are skipped, and
// a symlink leading out of the served directories is an error.
func (p *Policy) copyManifest(b *builder, rel string) (map[string]string, error) {
	root, err := p.servable(b, rel)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("source %s is not a directory (use file(source=...) for one file)", rel)
	}
	rules, err := p.ServingRules(b.role)
	if err != nil {
		return nil, err
	}
	manifest := map[string]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		relPath, _ := filepath.Rel(root, path)
		if relPath == "." {
			return nil
		}
		if d.IsDir() {
			if _, skip := rules.ExcludedDir(relPath); skip {
				return filepath.SkipDir
			}
			manifest[filepath.ToSlash(relPath)] = "dir"
			return nil
		}
		if _, skip := rules.Excluded(relPath); skip {
			return nil
		}
		real := path
		if d.Type()&fs.ModeSymlink != 0 {
			if real, err = rules.Check(path); err != nil {
				return err
			}
			p.inputs.add(real) // a link out of the tree: watch where it leads
		} else if !d.Type().IsRegular() {
			return fmt.Errorf("%s is %s, not a regular file or directory", path, d.Type())
		}
		h, size, err := p.hashFile(real)
		if err != nil {
			return err
		}
		b.sources.Add(h, real, size)
		manifest[filepath.ToSlash(relPath)] = h + " " + strconv.FormatInt(size, 10)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: %s", rel, strings.TrimPrefix(err.Error(), "lstat "))
	}
	return manifest, nil
}
