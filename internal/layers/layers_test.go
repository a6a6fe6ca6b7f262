package layers

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/herd-project/herd/internal/"

// targetSide runs on managed machines.
var targetSide = []string{"agent", "engine", "resource", "become", "facts", "build"}

// controllerSide runs only where herd is invoked.
var controllerSide = []string{"push", "policy", "inventory", "fileserver", "ui", "filewatch", "exchange"}

// goList lists pkg and everything it depends on.
func goList(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", pkg, err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list %s listed %d packages: %q", pkg, len(deps), deps)
	}
	return deps
}

// TestTargetSideHasNoEtcd keeps the exchange's etcd (client and embedded
// server, most of a controller's size) out of what runs on targets: the
// lean agent binary is built from these packages, and the protocol they
// share with the controller (wire, plan) must not pull it in either.
func TestTargetSideHasNoEtcd(t *testing.T) {
	for _, pkg := range append([]string{"wire", "plan"}, targetSide...) {
		t.Run(pkg, func(t *testing.T) {
			for _, dep := range goList(t, module+pkg) {
				if strings.HasPrefix(dep, "go.etcd.io/") || dep == module+"exchange" || strings.HasPrefix(dep, "google.golang.org/grpc") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		})
	}
}

// TestTargetSideDoesNotImportControllerSide fails when any package of the
// target side depends, even indirectly, on a controller package.
func TestTargetSideDoesNotImportControllerSide(t *testing.T) {
	for _, pkg := range targetSide {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list %s: %v\n%s", pkg, err, out)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 2 {
				t.Fatalf("go list %s listed %d packages: %q", pkg, len(deps), deps)
			}
			for _, dep := range deps {
				for _, bad := range controllerSide {
					if dep == module+bad || strings.HasPrefix(dep, module+bad+"/") {
						t.Errorf("%s imports controller package %s", pkg, bad)
					}
				}
			}
		})
	}
}

// The lean agent (cmd/herd-agent) is what targets run when the controller
// finds it: it must link no controller code and none of the libraries only
// the controller uses (Starlark, TOML/YAML inventories, templates), nor the
// coming etcd client. Transport stays: a trusted relay runs its SSH client
// on a target to reach its children.
var notInLeanAgent = []string{
	module + "push", module + "policy", module + "inventory", module + "fileserver", module + "ui",
	module + "examples", module + "lab", module + "bench", module + "exchange",
	"go.etcd.io/", "go.starlark.net/", "github.com/BurntSushi/toml", "go.yaml.in/yaml",
	"github.com/ardanlabs/jinja", "golang.org/x/term",
}

func TestLeanAgentLinksNoControllerCode(t *testing.T) {
	const cmd = "github.com/herd-project/herd/cmd/herd-agent"
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", cmd, err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, module+"agent") {
		t.Fatalf("go list %s does not list the agent package: %q", cmd, deps)
	}
	for _, dep := range deps {
		for _, bad := range notInLeanAgent {
			if dep == bad || strings.HasPrefix(dep, strings.TrimSuffix(bad, "/")+"/") {
				t.Errorf("herd-agent links %s", dep)
			}
		}
	}
}
