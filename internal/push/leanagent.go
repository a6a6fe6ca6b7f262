package push

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/herd-project/herd/internal/build"
	"github.com/herd-project/herd/internal/wire"
)

// LeanAgentName is the lean agent's file name: `go build -o bin/
// ./cmd/herd ./cmd/herd-agent` puts it beside herd, where the controller
// looks for it (DefaultAgent).
const LeanAgentName = "herd-agent"

// DefaultAgent is the agent binary a run ships to targets of the
// controller's own architecture: herd-agent beside the running herd when
// it is there and belongs to this build (checkAgent), else herd itself,
// which is always a complete agent. A herd-agent that belongs to another
// build is an error naming the file: it is never shipped, and never
// silently passed over either.
func DefaultAgent() (*Binary, error) {
	self, err := SelfBinary()
	if err != nil {
		return nil, err
	}
	self.Arch = runtime.GOARCH
	lean := filepath.Join(filepath.Dir(self.Path), LeanAgentName)
	if _, err := os.Stat(lean); errors.Is(err, fs.ErrNotExist) {
		return self, nil
	}
	if err := checkAgent(lean, runtime.GOARCH, build.AgentMain); err != nil {
		return nil, fmt.Errorf("%s: %v; rebuild both together (go build -trimpath -ldflags \"-s -w\" -o bin/ ./cmd/herd ./cmd/herd-agent) or remove it to ship herd itself", lean, err)
	}
	return &Binary{Path: lean, Arch: runtime.GOARCH}, nil
}

// checkAgent checks that the agent binary at path may be shipped by this
// controller: a regular executable file, built from this herd's source
// (build.CheckAgentFile: module, version, VCS revision, dependencies,
// read from the file without running it) as one of mains. A herd-agent
// for the controller's own architecture is also run once (`herd-agent
// identity`, bounded) to compare protocol fingerprints, which tells apart
// builds of a modified tree that the build information cannot.
func checkAgent(path, arch string, mains ...string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	ours, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("this herd has no build information to compare with")
	}
	theirs, err := build.CheckAgentFile(path, ours, mains...)
	if err != nil {
		return fmt.Errorf("belongs to another herd build: %v", err)
	}
	if arch != runtime.GOARCH || theirs.Path != ours.Main.Path+build.AgentMain {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "identity").Output()
	if err != nil {
		return fmt.Errorf("running %s identity: %v", filepath.Base(path), err)
	}
	want := "herd-agent protocol " + wire.Fingerprint()
	if got := strings.TrimSpace(string(out)); got != want {
		return fmt.Errorf("speaks another protocol (%q, this herd %q): it belongs to another herd build", got, want)
	}
	return nil
}

// AgentKind says what an agent build is, for herd agents: "lean" for a
// herd-agent, "herd" for a whole herd (the running one, or a build in the
// agent directory).
func AgentKind(b *Binary) string {
	if theirs, err := buildinfo.ReadFile(b.Path); err == nil && strings.HasSuffix(theirs.Path, build.AgentMain) {
		return "lean"
	}
	return "herd"
}
