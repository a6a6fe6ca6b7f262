package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
)

// Content addresses: every file, blob, cached agent binary and fetched
// content in herd is named by the lowercase hex sha256 of its bytes. This
// file is the one place that spells that rule; everything else calls it.

// Hash is the content address of b.
func Hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Hasher computes a content address incrementally, for contents streamed
// rather than held in memory.
type Hasher struct{ h hash.Hash }

// NewHasher starts an empty content address.
func NewHasher() *Hasher { return &Hasher{h: sha256.New()} }

// Write adds p to the content; it never fails.
func (h *Hasher) Write(p []byte) (int, error) { return h.h.Write(p) }

// Sum is the content address of everything written so far.
func (h *Hasher) Sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// HashReader reads r to its end and returns its content address and size.
func HashReader(r io.Reader) (string, int64, error) {
	h := NewHasher()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", n, err
	}
	return h.Sum(), n, nil
}

// IsHash reports whether s looks like a content address (a sha256 hex
// digest), the only form of file reference an agent may ask for.
func IsHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
