package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/herd-project/herd/transport"
)

// ExitTampered tells the bootstrap script's caller that the cached binary
// did not match its hash and removed itself; the controller then installs a
// fresh copy. Chosen to be unlikely as a shell or signal exit status.
const ExitTampered = transport.ExitAgentCorrupt

// VerifySelf checks that the running executable has the expected sha256.
// The cache directory is named by hash, so a mismatch means the file was
// modified after install (disk corruption or tampering): it must not run.
func VerifySelf(want string) error {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("open own executable: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hash own executable: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("agent binary hash %s does not match %s", got[:16], shortHash(want))
	}
	return nil
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}
