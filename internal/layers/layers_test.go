package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/herd-project/herd/internal/"

// targetSide runs on managed machines.
var targetSide = []string{"agent", "engine", "resource", "become", "facts"}

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
