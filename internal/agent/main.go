package agent

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/herd-project/herd/internal/bootstrap"
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
			// Only the login user's bootstrap removes a bad copy. Anyone
			// a sudoers rule lets run the agent can pass any --hash: as
			// root it must not delete a pinned install (a denial of
			// service the pinned sudo test performs).
			if *becomeSocket != "" {
				fmt.Fprintf(stderr, "herd agent: %v; refusing to run\n", err)
				return ExitTampered
			}
			fmt.Fprintf(stderr, "herd agent: %v; removing the cached copy\n", err)
			if exe, err := os.Executable(); err == nil {
				os.Remove(exe)
			}
			return ExitTampered
		}
		// The privileged agent talks to its broker, which checked its own
		// stream before it asked for the password.
		if *becomeSocket == "" {
			if err := VerifyUnwatched(*hash); err != nil {
				msg := strings.ReplaceAll(err.Error(), "\n", " ") + "; refusing to start, nothing was read"
				fmt.Fprintf(os.Stdout, "%s%s\n", bootstrap.RefusedPrefix, msg)
				fmt.Fprintf(stderr, "herd agent: %s\n", msg)
				return ExitWatched
			}
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
