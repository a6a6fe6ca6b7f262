package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/herd-project/herd/internal/lab"
)

// scriptLab is brought up by the first script that runs lab-env and taken
// down when the tests end.
var scriptLab struct {
	sync.Mutex
	lab *lab.Lab
	err error
}

type labM struct{ m *testing.M }

func (l labM) Run() int {
	code := l.m.Run()
	scriptLab.Lock()
	defer scriptLab.Unlock()
	if scriptLab.lab != nil {
		if err := scriptLab.lab.Down(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	return code
}

func TestMain(m *testing.M) {
	// A run with --persist starts os.Executable() (this test binary under
	// its own name) as "mux serve".
	if len(os.Args) > 2 && os.Args[1] == "mux" && os.Args[2] == "serve" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	// The test binary is also "herd" in scripts and on lab hosts, where the
	// bootstrap copies it (as .../herd) and runs it as "herd agent".
	testscript.Main(labM{m}, map[string]func(){
		"herd": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

func getLab() (*lab.Lab, error) {
	scriptLab.Lock()
	defer scriptLab.Unlock()
	if scriptLab.lab == nil && scriptLab.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		scriptLab.lab, scriptLab.err = lab.Up(ctx, lab.Spec{Name: fmt.Sprintf("c%d", os.Getpid()%100000), Flat: 3})
	}
	return scriptLab.lab, scriptLab.err
}

// TestScripts runs the CLI specifications in testdata/script: each file is a
// shell-like session with the expected output. Scripts that need SSH hosts
// start with "[!lab] skip" and run "lab-env", which exports LAB_SSH_CONFIG
// (hosts host1..host3, root with the lab's key and known_hosts) and
// LAB_ADDR_HOST1.. .
func TestScripts(t *testing.T) {
	labOK, why := lab.Available()
	if !labOK {
		t.Logf("lab scripts skip: %s", why)
	}
	// Each run of the scripts starts from fresh hosts (go test -count=N).
	t.Cleanup(func() {
		scriptLab.Lock()
		defer scriptLab.Unlock()
		if scriptLab.lab != nil {
			scriptLab.lab.Down()
		}
		scriptLab.lab, scriptLab.err = nil, nil
	})
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir+"/home")
			return os.MkdirAll(env.WorkDir+"/home", 0o755)
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "lab":
				return labOK, nil
			case "bashcompletion":
				_, errBash := exec.LookPath("bash")
				_, errBC := os.Stat("/usr/share/bash-completion/bash_completion")
				return errBash == nil && errBC == nil, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"lab-env": func(ts *testscript.TestScript, neg bool, args []string) {
				l, err := getLab()
				if err != nil {
					ts.Fatalf("lab: %v", err)
				}
				ts.Setenv("LAB_SSH_CONFIG", l.SSHConfig)
				ts.Setenv("LAB_KEY", l.KeyFile)
				ts.Setenv("LAB_KNOWN_HOSTS", l.KnownHosts)
				for _, h := range l.Hosts {
					ts.Setenv("LAB_ADDR_"+strings.ToUpper(h.Name), h.Addr)
				}
			},
			// host-cat prints a file as seen on a lab host: host-cat host1 /etc/x
			"host-cat": func(ts *testscript.TestScript, neg bool, args []string) {
				l, err := getLab()
				if err != nil || len(args) != 2 {
					ts.Fatalf("usage: host-cat HOST PATH (%v)", err)
				}
				h := l.Host(args[0])
				if h == nil {
					ts.Fatalf("no lab host %s", args[0])
				}
				b, err := h.ReadFile(args[1])
				if neg {
					if err == nil {
						ts.Fatalf("%s:%s exists", args[0], args[1])
					}
					return
				}
				if err != nil {
					ts.Fatalf("%s:%s: %v", args[0], args[1], err)
				}
				ts.Stdout().Write(b)
			},
		},
	})
}
