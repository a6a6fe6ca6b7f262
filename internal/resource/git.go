package resource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/safefile"
)

func init() {
	Register(&Schema{
		Kind: "git",
		Doc: "A git checkout, named by its directory, at a ref of repo (detached HEAD at the ref's commit). " +
			"Needs git on the target. The wanted commit is found with git ls-remote (read-only, so check " +
			"mode sees it too); a new checkout is cloned beside the directory and renamed into place, an " +
			"existing one is fetched and checked out. Local changes are an error unless force=True, which " +
			"discards them.",
		Params: []Param{
			{Name: "repo", Type: String, Required: true, Doc: "URL or path of the repository"},
			{Name: "version", Type: String, Doc: "branch, tag or full commit id (default \"HEAD\", the remote's default branch)"},
			{Name: "force", Type: Bool, Doc: "discard local changes in the checkout (default False)"},
		},
		Factory: newGit,
	})
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

type gitCheckout struct {
	dir, repo, version string
	force              bool
}

func newGit(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	if err := checkAbs("git", name); err != nil {
		return nil, err
	}
	g := &gitCheckout{dir: name}
	var err error
	if g.repo, err = p.Str("repo", ""); err != nil {
		return nil, fmt.Errorf("git %s: %w", name, err)
	}
	if g.version, err = p.Str("version", "HEAD"); err != nil {
		return nil, fmt.Errorf("git %s: %w", name, err)
	}
	if g.force, err = p.Bool("force", false); err != nil {
		return nil, fmt.Errorf("git %s: %w", name, err)
	}
	for k, v := range map[string]string{"repo": g.repo, "version": g.version} {
		if v == "" || strings.HasPrefix(v, "-") || strings.ContainsAny(v, "\n\r\x00") {
			return nil, fmt.Errorf("git %s: %s %q must be non-empty, one line, and not start with '-'", name, k, v)
		}
	}
	return g, nil
}

// git runs git with a fixed environment: no prompts, no user config.
func (g *gitCheckout) git(ctx context.Context, dir string, args ...string) (string, error) {
	bin, err := exec.LookPath("git")
	if err != nil {
		if bin, err = "/usr/bin/git", nil; !exists(bin) {
			return "", fmt.Errorf("git is not installed on this host (install it, e.g. package(\"git\"), before this resource)")
		}
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1", "HOME=" + os.Getenv("HOME"), "GIT_SSH_COMMAND=ssh -o BatchMode=yes"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// wanted resolves version to a commit without changing anything.
func (g *gitCheckout) wanted(ctx context.Context) (string, error) {
	if shaRE.MatchString(g.version) {
		return g.version, nil
	}
	out, err := g.git(ctx, "/", "ls-remote", "--", g.repo, g.version, g.version+"^{}")
	if err != nil {
		return "", err
	}
	// Prefer an exact ref (a tag's peeled commit, then the ref itself).
	var found, peeled string
	for _, line := range strings.Split(out, "\n") {
		sha, ref, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		switch ref {
		case g.version, "refs/heads/" + g.version, "refs/tags/" + g.version:
			if found == "" {
				found = sha
			}
		case "refs/tags/" + g.version + "^{}":
			peeled = sha
		}
	}
	if peeled != "" {
		found = peeled
	}
	if found == "" {
		return "", fmt.Errorf("%s has no ref %q", g.repo, g.version)
	}
	return found, nil
}

type gitState struct {
	exists     bool
	head, want string
	dirty      bool
	change     Change
}

func (g *gitCheckout) inspect(ctx context.Context) (gitState, error) {
	var s gitState
	var err error
	if s.want, err = g.wanted(ctx); err != nil {
		return s, err
	}
	fi, err := os.Lstat(g.dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.change = Change{Changed: true, Summary: fmt.Sprintf("clone %s at %s", g.repo, s.want[:12])}
		return s, nil
	case err != nil:
		return s, err
	case !fi.IsDir():
		return s, fmt.Errorf("%s exists and is %s, not a directory", g.dir, describeType(fi))
	}
	if _, err := os.Stat(filepath.Join(g.dir, ".git")); err != nil {
		return s, fmt.Errorf("%s exists and is not a git checkout", g.dir)
	}
	s.exists = true
	if s.head, err = g.git(ctx, g.dir, "rev-parse", "HEAD"); err != nil {
		return s, err
	}
	status, err := g.git(ctx, g.dir, "status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return s, err
	}
	s.dirty = status != ""
	if s.dirty && !g.force {
		return s, fmt.Errorf("%s has local changes; set force=True to discard them", g.dir)
	}
	var parts []string
	if s.head != s.want {
		parts = append(parts, fmt.Sprintf("%s→%s", s.head[:min(12, len(s.head))], s.want[:12]))
	}
	if s.dirty {
		parts = append(parts, "local changes discarded")
	}
	if len(parts) > 0 {
		s.change = Change{Changed: true, Summary: joinSummary(parts)}
	}
	return s, nil
}

func (g *gitCheckout) Check(ctx context.Context, env *Env) (Change, error) {
	s, err := g.inspect(ctx)
	return s.change, wrapErr("git "+g.dir, err)
}

// Apply clones into a temp directory beside the checkout and renames it
// into place, so a cut clone never leaves a half checkout at the path.
func (g *gitCheckout) Apply(ctx context.Context, env *Env) (Change, error) {
	s, err := g.inspect(ctx)
	if err != nil || !s.change.Changed {
		return s.change, wrapErr("git "+g.dir, err)
	}
	if !s.exists {
		tmp := filepath.Join(filepath.Dir(g.dir), safefile.TempName(filepath.Base(g.dir)))
		defer os.RemoveAll(tmp)
		if _, err := g.git(ctx, "/", "clone", "-q", "--no-checkout", "--", g.repo, tmp); err != nil {
			return s.change, wrapErr("git "+g.dir, err)
		}
		if _, err := g.git(ctx, tmp, "checkout", "-q", "--detach", s.want); err != nil {
			return s.change, wrapErr("git "+g.dir, err)
		}
		if err := os.Rename(tmp, g.dir); err != nil {
			return s.change, wrapErr("git "+g.dir, err)
		}
		return s.change, wrapErr("git "+g.dir, safefile.SyncDir(filepath.Dir(g.dir)))
	}
	if _, err := g.git(ctx, g.dir, "fetch", "-q", "--", g.repo, s.want); err != nil {
		// Servers that refuse fetching a bare commit id: fetch everything.
		if _, err := g.git(ctx, g.dir, "fetch", "-q", "--tags", "--", g.repo, "+refs/heads/*:refs/remotes/origin/*"); err != nil {
			return s.change, wrapErr("git "+g.dir, err)
		}
	}
	args := []string{"checkout", "-q", "--detach"}
	if g.force {
		args = append(args, "--force")
	}
	if _, err := g.git(ctx, g.dir, append(args, s.want)...); err != nil {
		return s.change, wrapErr("git "+g.dir, err)
	}
	return s.change, nil
}
