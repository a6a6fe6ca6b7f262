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
func Main(ctx context.Context, args []string, stderr io.Writer) (code int) {
	defer func() {
		// The controller shows the agent's stderr tail with the error.
		if p := recover(); p != nil {
			fmt.Fprintf(stderr, "herd agent: internal error: %v (please report this)\n", p)
			code = 1
		}
	}()
	fs := flag.NewFlagSet("herd agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hash := fs.String("hash", "", "expected sha256 of this binary; on mismatch the binary removes itself")
	stateDir := fs.String("state-dir", "", "state directory (default ~/.herd/state)")
	logPath := fs.String("log", "", `event log (default ~/.herd/herd.log, "-" for none)`)
	broker := fs.Bool("become", false, "run the become broker (package become) instead of the agent")
	becomeSocket := fs.String("become-socket", "", "serve the protocol on this become broker socket instead of stdio")
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
	catchHangups()
	var err error
	switch {
	case *broker:
		err = serveBroker(ctx, *hash, stderr)
	case *becomeSocket != "":
		err = serveBecome(ctx, *becomeSocket, Options{Hash: *hash, StateDir: *stateDir, LogPath: *logPath})
	default:
		err = Serve(ctx, Options{Hash: *hash, StateDir: *stateDir, LogPath: *logPath, In: os.Stdin, Out: os.Stdout})
	}
	if err != nil {
		fmt.Fprintf(stderr, "herd agent: %v\n", err)
		return 1
	}
	return 0
}
