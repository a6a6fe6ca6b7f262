package resource

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/herd-project/herd/internal/plan"
)

func init() {
	Register(&Schema{
		Kind: "package",
		Doc: "System packages, installed or removed with the machine's package manager (apt/dpkg, apk or dnf, " +
			"detected on the target). Several names are handled in one call. A local .deb is installed when " +
			"the installed version differs from the file's.",
		Params: []Param{
			{Name: "names", Type: StringList, Doc: "packages to manage together (default: the resource name)"},
			{Name: "deb", Type: String, Doc: "absolute path of a .deb on the target to install (apt/dpkg only); the package name comes from the file"},
			{Name: "state", Type: String, Doc: "\"present\" (default) or \"absent\""},
			{Name: "purge", Type: Bool, Doc: "with state=\"absent\" on apt/dpkg: also remove configuration files"},
		},
		Factory: newPackage,
	})
}

type pkg struct {
	name    string
	names   []string
	deb     string
	present bool
	purge   bool
	// path is the PATH searched for package managers; tests change it.
	path string
}

func newPackage(name string, p plan.Params, _ map[string][]byte) (Resource, error) {
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("package %s: %w", name, err) }
	k := &pkg{name: name, path: defaultPath}
	var err error
	if k.present, err = stateParam(p); err != nil {
		return fail(err)
	}
	if k.names, err = p.List("names"); err != nil {
		return fail(err)
	}
	if k.deb, err = p.Str("deb", ""); err != nil {
		return fail(err)
	}
	if k.purge, err = p.Bool("purge", false); err != nil {
		return fail(err)
	}
	switch {
	case p.Has("names") && p.Has("deb"):
		return fail(errors.New("names and deb are exclusive: a .deb names its own package"))
	case p.Has("deb") && !k.present:
		return fail(errors.New("deb makes no sense with state=\"absent\": name the package to remove"))
	case p.Has("purge") && k.present:
		return fail(errors.New("purge only makes sense with state=\"absent\""))
	case p.Has("deb"):
		if err := checkAbs("package "+name+": deb", k.deb); err != nil {
			return nil, err
		}
	case p.Has("names") && len(k.names) == 0:
		return fail(errors.New("names is empty"))
	case !p.Has("names"):
		k.names = []string{name}
	}
	for _, n := range k.names {
		if n == "" || strings.HasPrefix(n, "-") || strings.ContainsAny(n, " \t\r\n/") {
			return fail(fmt.Errorf("%q is not a package name", n))
		}
	}
	k.names = slices.Compact(slices.Sorted(slices.Values(k.names)))
	return k, nil
}

// pkgManager is a family of package tools. Only apt/dpkg is exercised by
// herd's tests; apk and dnf follow their documented command lines.
type pkgManager string

const (
	managerApt  pkgManager = "apt"  // dpkg with apt-get: names and .debs
	managerDpkg pkgManager = "dpkg" // dpkg alone: .debs only
	managerApk  pkgManager = "apk"
	managerDnf  pkgManager = "dnf"
)

// detectManager picks the package manager from the programs in path.
// dpkg comes first: apk and dnf binaries can be installed on Debian too.
func detectManager(path string) (pkgManager, error) {
	has := func(prog string) bool { _, err := lookPath(prog, path); return err == nil }
	switch {
	case has("dpkg-query") && has("apt-get"):
		return managerApt, nil
	case has("dpkg-query") && has("dpkg"):
		return managerDpkg, nil
	case has("apk"):
		return managerApk, nil
	case has("dnf") && has("rpm"):
		return managerDnf, nil
	}
	return "", fmt.Errorf("no supported package manager found in PATH %s (want apt/dpkg, apk or dnf)", path)
}

// queryTool asks which of names are installed.
func (m pkgManager) queryTool(names []string) tool {
	switch m {
	case managerApk:
		return tool{argv: append([]string{"apk", "info", "-e"}, names...), anyExit: true}
	case managerDnf:
		return tool{argv: append([]string{"rpm", "-q", "--qf", `%{NAME}\t%{VERSION}-%{RELEASE}\n`}, names...), anyExit: true}
	}
	return tool{argv: append([]string{"dpkg-query", "-W", "-f", `${Package}\t${Status}\t${Version}\n`}, names...), anyExit: true}
}

// parseInstalled reads queryTool's output into name → version of the
// installed packages (version "" when the manager does not say).
func (m pkgManager) parseInstalled(out string) map[string]string {
	got := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		switch {
		case m == managerApk:
			got[line] = ""
		case m == managerDnf && len(f) == 2:
			got[f[0]] = f[1]
		case (m == managerApt || m == managerDpkg) && len(f) == 3:
			// Status is "want flag state"; only state "installed" counts:
			// "config-files" is a removed package, "half-configured" a
			// broken one that installing again repairs.
			if st := strings.Fields(f[1]); len(st) == 3 && st[2] == "installed" {
				got[f[0]] = f[2]
			}
		}
	}
	return got
}

// Tool env for apt: no questions, and keep a locally changed config file.
var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none"}

var aptOpts = []string{"-y", "-q", "-o", "DPkg::Lock::Timeout=120",
	"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}

// installTool installs names, or the file deb when names is empty.
func (m pkgManager) installTool(names []string, deb string) (tool, error) {
	switch {
	case deb != "" && m == managerApt:
		// apt-get (unlike dpkg -i) pulls the .deb's dependencies.
		argv := append(append([]string{"apt-get", "install"}, aptOpts...), "--no-install-recommends", deb)
		return tool{argv: argv, env: aptEnv}, nil
	case deb != "" && m == managerDpkg:
		return tool{argv: []string{"dpkg", "-i", deb}, env: aptEnv}, nil
	case deb != "":
		return tool{}, fmt.Errorf("deb= needs dpkg, and this host uses %s", m)
	case m == managerApt:
		argv := append(append([]string{"apt-get", "install"}, aptOpts...), "--no-install-recommends")
		return tool{argv: append(argv, names...), env: aptEnv}, nil
	case m == managerApk:
		return tool{argv: append([]string{"apk", "add", "--no-progress"}, names...)}, nil
	case m == managerDnf:
		return tool{argv: append([]string{"dnf", "install", "-y"}, names...)}, nil
	}
	return tool{}, errors.New("installing by name needs apt-get, which is not installed (only .debs can be installed with dpkg)")
}

func (m pkgManager) removeTool(names []string, purge bool) tool {
	switch m {
	case managerApt:
		verb := "remove"
		if purge {
			verb = "purge"
		}
		return tool{argv: append(append([]string{"apt-get", verb}, aptOpts...), names...), env: aptEnv}
	case managerDpkg:
		flag := "-r"
		if purge {
			flag = "-P"
		}
		return tool{argv: append([]string{"dpkg", flag}, names...), env: aptEnv}
	case managerApk:
		return tool{argv: append([]string{"apk", "del", "--no-progress"}, names...)}
	}
	return tool{argv: append([]string{"dnf", "remove", "-y"}, names...)}
}

// debInfo reads a .deb's package name and version.
func debInfo(ctx context.Context, path string) (name, version string, err error) {
	out, _, err := tool{argv: []string{"dpkg-deb", "-f", path, "Package", "Version"}}.run(ctx)
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch strings.TrimSpace(k) {
		case "Package":
			name = strings.TrimSpace(v)
		case "Version":
			version = strings.TrimSpace(v)
		}
	}
	if name == "" {
		return "", "", fmt.Errorf("%s has no Package field", path)
	}
	return name, version, nil
}

func (k *pkg) plan(ctx context.Context) (Change, []tool, error) {
	m, err := detectManager(k.path)
	if err != nil {
		return Change{}, nil, fmt.Errorf("package %s: %w", k.name, err)
	}
	if k.deb != "" {
		return k.planDeb(ctx, m)
	}
	out, _, err := m.queryTool(k.names).run(ctx)
	if err != nil {
		return Change{}, nil, fmt.Errorf("package %s: %w", k.name, err)
	}
	installed := m.parseInstalled(out)
	var todo []string
	for _, n := range k.names {
		if _, ok := installed[strings.SplitN(n, ":", 2)[0]]; ok != k.present {
			todo = append(todo, n)
		}
	}
	if len(todo) == 0 {
		return Change{}, nil, nil
	}
	if !k.present {
		return Change{Changed: true, Summary: "remove " + strings.Join(todo, ", ")}, []tool{m.removeTool(todo, k.purge)}, nil
	}
	t, err := m.installTool(todo, "")
	if err != nil {
		return Change{}, nil, fmt.Errorf("package %s: %w", k.name, err)
	}
	return Change{Changed: true, Summary: "install " + strings.Join(todo, ", ")}, []tool{t}, nil
}

func (k *pkg) planDeb(ctx context.Context, m pkgManager) (Change, []tool, error) {
	t, err := m.installTool(nil, k.deb)
	if err != nil {
		return Change{}, nil, fmt.Errorf("package %s: %w", k.name, err)
	}
	if _, err := os.Stat(k.deb); errors.Is(err, os.ErrNotExist) {
		// In check mode the file may be copied by an earlier resource
		// that has not run; apply will say if it is still missing.
		return Change{Changed: true, Summary: "install " + filepath.Base(k.deb)}, []tool{t}, nil
	}
	name, version, err := debInfo(ctx, k.deb)
	if err != nil {
		return Change{}, nil, fmt.Errorf("package %s: %w", k.name, err)
	}
	out, _, err := m.queryTool([]string{name}).run(ctx)
	if err != nil {
		return Change{}, nil, fmt.Errorf("package %s: %w", k.name, err)
	}
	have, ok := m.parseInstalled(out)[name]
	switch {
	case !ok:
		return Change{Changed: true, Summary: "install " + name + " " + version}, []tool{t}, nil
	case have != version:
		return Change{Changed: true, Summary: name + " " + have + "→" + version}, []tool{t}, nil
	}
	return Change{}, nil, nil
}

func (k *pkg) Check(ctx context.Context, env *Env) (Change, error) {
	c, _, err := k.plan(ctx)
	return c, err
}

func (k *pkg) Apply(ctx context.Context, env *Env) (Change, error) {
	c, tools, err := k.plan(ctx)
	if err != nil {
		return c, err
	}
	if err := runAll(ctx, &c, tools...); err != nil {
		return c, fmt.Errorf("package %s: %w", k.name, err)
	}
	return c, nil
}
