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
var controllerSide = []string{"push", "policy", "inventory", "fileserver", "ui"}

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
