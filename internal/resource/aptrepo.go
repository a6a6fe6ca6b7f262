package resource

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/herd-project/herd/internal/plan"
)

func init() {
	Register(&Schema{
		Kind: "apt_repository",
		Doc: "An APT source, named by its file /etc/apt/sources.list.d/NAME.list, which herd owns whole " +
			"(one deb line). When it changes, apt-get update runs for that source alone, so a package " +
			"resource after it installs from it in the same run. Keys: put the keyring in place with " +
			"file(..., source=...) and name it with signed_by. absent removes the file.",
		Params: []Param{
			{Name: "uri", Type: String, Doc: "the archive, e.g. \"https://download.docker.com/linux/debian\" (required unless absent)"},
			{Name: "suite", Type: String, Doc: "e.g. \"bookworm\", or a flat repository's path ending in / (required unless absent)"},
			{Name: "components", Type: StringList, Doc: "e.g. [\"main\"]; none for a flat repository"},
			{Name: "signed_by", Type: String, Doc: "absolute path of the keyring that signs the repository"},
			{Name: "arch", Type: String, Doc: "architectures, e.g. \"amd64\""},
			{Name: "trusted", Type: Bool, Doc: "trust it unsigned (local repositories only; default False)"},
			{Name: "update", Type: Bool, Doc: "run apt-get update for this source when it changes (default True)"},
			{Name: "state", Type: String, Doc: "\"present\" (default) or \"absent\""},
		},
		Factory: newAptRepo,
	})
}

// aptSourcesDir is where sources live; a var for unit tests.
var aptSourcesDir = "/etc/apt/sources.list.d"

var (
	aptNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	aptWordRE = regexp.MustCompile(`^[^\s\[\]#]+$`)
)

type aptRepo struct {
	name, content string
	present       bool
	update        bool
	edit          textEdit
}

func newAptRepo(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("apt_repository %s: %w", name, err) }
	if !aptNameRE.MatchString(name) || strings.HasSuffix(name, ".list") {
		return fail(fmt.Errorf("the name becomes NAME.list in %s: use letters, digits, '_', '-' and '.' (without .list)", aptSourcesDir))
	}
	a := &aptRepo{name: name}
	var err error
	if a.present, err = stateParam(p); err != nil {
		return fail(err)
	}
	if a.update, err = p.Bool("update", true); err != nil {
		return fail(err)
	}
	if a.present {
		if a.content, err = aptLine(p); err != nil {
			return fail(err)
		}
	} else if err := absentRejects(p, "uri", "suite", "components", "signed_by", "arch", "trusted"); err != nil {
		return fail(err)
	}
	a.edit = textEdit{kind: "apt_repository", path: aptSourcesDir + "/" + name + ".list", create: true,
		perm: 0o644, uid: 0, gid: 0, removeEmpty: true, edit: a.editFile}
	return a, nil
}

// aptLine builds the file's content from the params.
func aptLine(p plan.Params) (string, error) {
	get := func(k string) (string, error) { return p.Str(k, "") }
	uri, err := get("uri")
	if err != nil {
		return "", err
	}
	suite, err := get("suite")
	if err != nil {
		return "", err
	}
	signedBy, err := get("signed_by")
	if err != nil {
		return "", err
	}
	arch, err := get("arch")
	if err != nil {
		return "", err
	}
	trusted, err := p.Bool("trusted", false)
	if err != nil {
		return "", err
	}
	comps, err := p.List("components")
	if err != nil {
		return "", err
	}
	for k, v := range map[string]string{"uri": uri, "suite": suite} {
		if !aptWordRE.MatchString(v) {
			return "", fmt.Errorf("%s %q is required and must be one word", k, v)
		}
	}
	for i, c := range comps {
		if !aptWordRE.MatchString(c) {
			return "", fmt.Errorf("components[%d] %q must be one word", i, c)
		}
	}
	if strings.HasSuffix(suite, "/") != (len(comps) == 0) {
		return "", fmt.Errorf("a suite ending in / (a flat repository) takes no components; any other needs them")
	}
	var opts []string
	if arch != "" {
		if !aptWordRE.MatchString(arch) {
			return "", fmt.Errorf("arch %q must be one word", arch)
		}
		opts = append(opts, "arch="+arch)
	}
	if signedBy != "" {
		if err := checkAbs("signed_by", signedBy); err != nil || !aptWordRE.MatchString(signedBy) {
			return "", fmt.Errorf("signed_by %q must be an absolute path without spaces", signedBy)
		}
		opts = append(opts, "signed-by="+signedBy)
	}
	if trusted {
		opts = append(opts, "trusted=yes")
	}
	line := "deb "
	if len(opts) > 0 {
		line += "[" + strings.Join(opts, " ") + "] "
	}
	line += strings.Join(append([]string{uri, suite}, comps...), " ")
	return "# managed by herd\n" + line + "\n", nil
}

func (a *aptRepo) editFile(old []byte) ([]byte, string) {
	switch {
	case !a.present && len(old) == 0:
		return old, ""
	case !a.present:
		return nil, "source removed"
	case string(old) == a.content:
		return old, ""
	}
	return []byte(a.content), "source written"
}

func (a *aptRepo) Check(ctx context.Context, env *Env) (Change, error) {
	c, err := a.edit.run(false)
	return c, wrapErr("apt_repository "+a.name, err)
}

// Apply writes the source, then updates the package lists from it alone
// (the others may be unreachable, and need not be refreshed for this).
func (a *aptRepo) Apply(ctx context.Context, env *Env) (Change, error) {
	c, err := a.edit.run(true)
	if err != nil || !c.Changed || !a.present || !a.update {
		return c, wrapErr("apt_repository "+a.name, err)
	}
	err = runTool(ctx, []string{"apt-get", "update", "-q", "--error-on=any",
		"-o", "Dir::Etc::sourcelist=" + a.edit.path, "-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0"})
	return c, wrapErr("apt_repository "+a.name, err)
}
