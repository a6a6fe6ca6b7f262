package push_test

import (
	"context"
	"os"
	"testing"

	"github.com/herd-project/herd/internal/agent"
	"github.com/herd-project/herd/internal/lab"
)

// TestMain lets this test binary stand in for herd on lab hosts: the
// bootstrap copies it there and runs it as "agent".
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "agent" {
		if code, ran := rogueAgent(os.Args[2:]); ran { // serve_test.go
			os.Exit(code)
		}
		if code, ran := rogueRelay(os.Args[2:]); ran { // relay_attack_test.go
			os.Exit(code)
		}
		os.Exit(agent.Main(context.Background(), os.Args[2:], os.Stderr))
	}
	code := lab.RunTests(m)
	flat.down()
	tree.down()
	ctn.down()
	if native.dir != "" {
		os.RemoveAll(native.dir)
	}
	os.Exit(code)
}
