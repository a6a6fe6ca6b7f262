package push

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// Binary is the agent executable copied to targets: by default the running
// herd itself. Its hash names the cache directory on targets, so a target
// runs exactly the bytes the controller has.
type Binary struct {
	Path string
	// Arch is the GOARCH it was built for; "" is the controller's own.
	Arch string

	once   sync.Once
	gzOnce sync.Once
	raw    []byte
	gz     []byte
	hash   string
	err    error
}

// SelfBinary returns the running executable as the agent binary.
func SelfBinary() (*Binary, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	return &Binary{Path: exe}, nil
}

func (b *Binary) load() {
	b.once.Do(func() {
		b.raw, b.err = os.ReadFile(b.Path)
		if b.err != nil {
			b.err = fmt.Errorf("read agent binary: %w", b.err)
			return
		}
		s := sha256.Sum256(b.raw)
		b.hash = hex.EncodeToString(s[:])
	})
}

// Hash is the sha256 of the binary.
func (b *Binary) Hash() (string, error) {
	b.load()
	return b.hash, b.err
}

// Parts returns the gzip form, the raw bytes and the hash.
func (b *Binary) Parts() (gz, raw []byte, hash string) {
	gz, raw, err := b.payload()
	if err != nil {
		return nil, nil, ""
	}
	return gz, raw, b.hash
}

// payload is what transport.Bootstrap sends a target without a cached
// copy. The gzip form is made once per run, and only when a target needs
// it: a run over warm caches does not compress the binary at all.
func (b *Binary) payload() (gz, raw []byte, err error) {
	b.load()
	if b.err != nil {
		return nil, nil, b.err
	}
	b.gzOnce.Do(func() {
		var buf bytes.Buffer
		// Made once per run and sent to every new host: the default level
		// costs a fraction of a second once and saves ~9% of the bytes
		// on every first contact (stripped amd64 build: 4.26 MB at the
		// default level against 4.68 MB at BestSpeed).
		w, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
		w.Write(b.raw)
		w.Close()
		b.gz = buf.Bytes()
	})
	return b.gz, b.raw, nil
}
