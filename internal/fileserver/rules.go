// Package fileserver decides which controller files a target may receive and
// serves them by content hash. Two gates: policy evaluation asks Rules
// whether a path may be served at all (so a bad path is an error at the call
// site, before anything runs), and at transfer time an Index built from the
// one plan being run answers only for hashes that plan references, re-checking
// the path and the content. An agent never names a path, so it cannot ask
// for "..", a symlink or another role's file: whatever it sends that is not
// in its plan's index is refused.
package fileserver

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DefaultDeny are never served, whatever a policy says: policy code, VCS
// metadata and editor or backup litter, which tend to hold secrets or
// half-edited content.
var DefaultDeny = []string{"*.star", ".git", "*.swp", "*.bak", "*~"}

// Rules are the servable part of the controller's filesystem for one role.
type Rules struct {
	roots []string // absolute, symlinks resolved
	allow []string
	deny  []string
}

// NewRules resolves roots (relative to base, the policy directory) and
// checks the patterns. Empty roots means base alone. deny adds to
// DefaultDeny; allow, when not empty, restricts served files to names that
// match one of its patterns.
func NewRules(base string, roots, allow, deny []string) (*Rules, error) {
	if len(roots) == 0 {
		roots = []string{"."}
	}
	r := &Rules{allow: allow, deny: append(append([]string{}, DefaultDeny...), deny...)}
	for _, pat := range append(append([]string{}, allow...), deny...) {
		if _, err := path.Match(pat, ""); err != nil || pat == "" || strings.Contains(pat, "/") {
			return nil, fmt.Errorf("file pattern %q is not a valid name pattern (such as \"*.conf\"; no '/')", pat)
		}
	}
	for _, root := range roots {
		if !filepath.IsAbs(root) {
			root = filepath.Join(base, root)
		}
		resolved, err := filepath.EvalSymlinks(root)
		if err != nil {
			return nil, fmt.Errorf("fileserving path %s: %w", root, unwrapPath(err))
		}
		abs, err := filepath.Abs(resolved)
		if err != nil {
			return nil, err
		}
		r.roots = append(r.roots, abs)
	}
	return r, nil
}

// Roots returns the resolved directories files may come from.
func (r *Rules) Roots() []string { return append([]string{}, r.roots...) }

// RefusedError says why a path may not be served.
type RefusedError struct {
	Path string
	Why  string
}

func (e *RefusedError) Error() string { return e.Path + ": " + e.Why }

// Check resolves p (absolute) through its symlinks and returns the real
// path if it may be served: it must lie inside a root, and neither the path
// as written nor the resolved one may have a denied component.
func (r *Rules) Check(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if pe, ok := err.(*os.PathError); ok {
			return "", &os.PathError{Op: "resolve", Path: p, Err: pe.Err}
		}
		return "", err
	}
	rel, ok := r.within(resolved)
	if !ok {
		why := "outside the served directories " + strings.Join(r.roots, ", ")
		if resolved != abs {
			why = "resolves through a symlink to " + resolved + ", " + why
		}
		return "", &RefusedError{Path: p, Why: why + " (add the directory to the role's fileserving_paths to serve it)"}
	}
	if pat, bad := r.Excluded(rel); bad {
		return "", &RefusedError{Path: p, Why: fmt.Sprintf("matches the file pattern %q, which is not served", pat)}
	}
	// The path as written matters too: a link named "x.conf" to a denied
	// ".git/config" must not launder it, nor a link "secret.bak" to x.
	if relAbs, ok := r.within(abs); ok {
		if pat, bad := r.Excluded(relAbs); bad {
			return "", &RefusedError{Path: p, Why: fmt.Sprintf("matches the file pattern %q, which is not served", pat)}
		}
	}
	return resolved, nil
}

// within returns p relative to the root that contains it.
func (r *Rules) within(p string) (rel string, ok bool) {
	for _, root := range r.roots {
		rel, err := filepath.Rel(root, p)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return rel, true
		}
	}
	return "", false
}

// Excluded reports whether a path relative to a root is not served, and the
// pattern responsible: any component matching a deny pattern, or (when allow
// patterns exist) a file name matching none of them. Copying a tree skips
// such files rather than failing.
func (r *Rules) Excluded(rel string) (pattern string, excluded bool) {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for _, part := range parts {
		for _, pat := range r.deny {
			if ok, _ := path.Match(pat, part); ok {
				return pat, true
			}
		}
	}
	if len(r.allow) == 0 || rel == "." {
		return "", false
	}
	base := parts[len(parts)-1]
	for _, pat := range r.allow {
		if ok, _ := path.Match(pat, base); ok {
			return "", false
		}
	}
	return "allow=" + strings.Join(r.allow, ","), true
}

// ExcludedDir is Excluded for directories while walking a tree: allow
// patterns name files, so they never exclude a directory.
func (r *Rules) ExcludedDir(rel string) (string, bool) {
	for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
		for _, pat := range r.deny {
			if ok, _ := path.Match(pat, part); ok {
				return pat, true
			}
		}
	}
	return "", false
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}
