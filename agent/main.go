package agent

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
)

// Main is `herd agent`: verify the binary, then serve the protocol on
// stdin/stdout. It is shared by cmd/herd and by test binaries that stand in
// for herd on lab hosts. Its stdout is the protocol: nothing else may be
// printed there.
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("herd agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hash := fs.String("hash", "", "expected sha256 of this binary; on mismatch the binary removes itself")
	stateDir := fs.String("state-dir", "", "state directory (default ~/.herd/state)")
	logPath := fs.String("log", "", `event log (default ~/.herd/herd.log, "-" for none)`)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *hash != "" {
		if err := VerifySelf(*hash); err != nil {
			fmt.Fprintf(stderr, "herd agent: %v; removing the cached copy\n", err)
			if exe, err := os.Executable(); err == nil {
				os.Remove(exe)
			}
			return ExitTampered
		}
	}
	err := Serve(ctx, Options{Hash: *hash, StateDir: *stateDir, LogPath: *logPath, In: os.Stdin, Out: os.Stdout})
	if err != nil {
		fmt.Fprintf(stderr, "herd agent: %v\n", err)
		return 1
	}
	return 0
}
