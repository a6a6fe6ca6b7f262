package agent

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"

	"github.com/herd-project/herd/internal/become"
)

// serveBroker is `herd agent --become`: it runs this same binary as another
// user through sudo, su or doas and relays the protocol to it (see package
// become for why a broker).
func serveBroker(ctx context.Context, hash string, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	return become.Serve(ctx, become.ServeOptions{In: os.Stdin, Out: os.Stdout, Log: stderr, Exe: exe, Hash: hash})
}

// serveBecome is the privileged agent started by the broker: it speaks the
// protocol over the broker's socket, not stdio (which is the become tool's
// terminal). Its state and log are the target user's own, whatever HOME the
// tool left set.
func serveBecome(ctx context.Context, socket string, o Options) error {
	conn, err := become.Dial(socket)
	if err != nil {
		return err
	}
	defer conn.Close()
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		if o.StateDir == "" {
			o.StateDir = filepath.Join(u.HomeDir, ".herd", "state")
		}
		if o.LogPath == "" {
			o.LogPath = filepath.Join(u.HomeDir, ".herd", "herd.log")
		}
	}
	o.In, o.Out = conn, conn
	return Serve(ctx, o)
}
