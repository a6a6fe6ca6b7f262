package bootstrap

import (
	"bytes"
	"fmt"
	"os"
	"sync"

	"github.com/klauspost/compress/gzip"

	"github.com/herd-project/herd/internal/plan"
)

// Binary is the agent executable sent to targets without a cached copy: by
// default the running herd itself, on the controller (Self) and on a
// trusted relay installing its children (Running). Its hash names the
// cache directory on targets, so a target runs exactly these bytes.
type Binary struct {
	Path string
	// Arch is the GOARCH it was built for; "" is the controller's own.
	Arch string
	// want, when set, is the hash the file must still have when read:
	// a relay tells its children to expect the bytes it was verified as.
	want    string
	pathErr error

	once   sync.Once
	gzOnce sync.Once
	raw    []byte
	gz     []byte
	hash   string
	err    error
}

// Self returns the running executable as the agent binary.
func Self() (*Binary, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	return &Binary{Path: exe}, nil
}

// Running is the agent binary this agent runs, which verified itself as
// want at start ("" when it did not): its children get the same bytes, and
// a file changed on disk since then is refused rather than passed on.
// Errors surface when the bytes are first needed.
func Running(want string) *Binary {
	exe, err := os.Executable()
	if err != nil {
		err = fmt.Errorf("find own executable: %w", err)
	}
	return &Binary{Path: exe, want: want, pathErr: err}
}

func (b *Binary) load() {
	b.once.Do(func() {
		if b.err = b.pathErr; b.err != nil {
			return
		}
		b.raw, b.err = os.ReadFile(b.Path)
		if b.err != nil {
			b.err = fmt.Errorf("read agent binary: %w", b.err)
			return
		}
		b.hash = plan.Hash(b.raw)
		if b.want != "" && b.hash != b.want {
			b.raw, b.hash = nil, ""
			b.err = fmt.Errorf("own executable %s changed on disk since the agent started", b.Path)
		}
	})
}

// Hash is the sha256 of the binary. A Running binary with a known hash
// answers without reading the file: children with a cached copy cost
// neither the read nor the compression.
func (b *Binary) Hash() (string, error) {
	if b.want != "" {
		return b.want, nil
	}
	b.load()
	return b.hash, b.err
}

// Payload is what Start sends a target without a cached copy: the gzip
// form and the raw bytes. The gzip form is made once, and only when a
// target needs it: a run over warm caches does not compress the binary.
func (b *Binary) Payload() (gz, raw []byte, err error) {
	b.load()
	if b.err != nil {
		return nil, nil, b.err
	}
	b.gzOnce.Do(func() { b.gz = compress(b.raw) })
	return b.gz, b.raw, nil
}

// compress is the one gzip form of an agent binary. It is made once per
// run while the first target waits, and every target without a cached
// copy receives it: klauspost's level 6 is as fast as its level 1 on the
// agent (~80 ms for 7 MB here) and sends 10 % fewer bytes (3.10 against
// 3.45 MB), which is time saved on every cold host and slow link.
func compress(raw []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, 6)
	w.Write(raw)
	w.Close()
	return buf.Bytes()
}
