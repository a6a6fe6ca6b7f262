package lab

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
)

// SharedSpec is the lab Shared brings up: three flat hosts and a two-level
// tree behind a bastion (bastion → racktop → rack1, rack2), so one lab
// serves flat, one-jump and two-jump tests.
func SharedSpec() Spec {
	return Spec{Name: fmt.Sprintf("t%d", os.Getpid()), Flat: 3, Bastion: &BastionSpec{RackTop: true, RackHosts: 2}}
}

var shared struct {
	sync.Mutex
	lab *Lab
	err error
}

// TB is the part of testing.TB that Shared uses. lab is linked into the
// herd-lab command, so it does not import package testing itself.
type TB interface {
	Helper()
	Skip(args ...any)
	Fatalf(format string, args ...any)
}

// Shared returns the test binary's lab, bringing it up on first use, or
// skips the test (one line saying why) when the machine cannot host one.
// Packages using it should call RunTests from TestMain so the lab goes down
// when the tests end; if the binary dies, the next Up cleans up.
func Shared(tb TB) *Lab {
	tb.Helper()
	if ok, why := Available(); !ok {
		tb.Skip("lab: " + why)
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.lab == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		shared.lab, shared.err = Up(ctx, SharedSpec())
	}
	if shared.err != nil {
		tb.Fatalf("lab: %v", shared.err)
	}
	return shared.lab
}

// RunTests runs the tests and then takes the shared lab down, if one was
// brought up. Use it as: func TestMain(m *testing.M) { os.Exit(lab.RunTests(m)) }
func RunTests(m interface{ Run() int }) int {
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.lab != nil {
		if err := shared.lab.Down(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
		shared.lab = nil
	}
	return code
}
