package fileserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/herd-project/herd/internal/plan"
)

// Index is what one plan (one role on one host) may fetch: content hashes
// mapped to the controller files the policy chose. It is built from the plan
// itself, so it can never serve more than the plan references.
type Index struct {
	rules *Rules
	files map[string]entry
}

type entry struct {
	path string
	size int64
	// cached marks a file of herd's own download cache: outside every
	// fileserving root by design, so rules do not apply; the hash check
	// at the end of every stream still does.
	cached bool
}

// Sources maps the hash of every file one plan's agent may fetch (those in
// plan.Files and in copy manifests) to the controller file that holds it.
// The planner fills it beside the plan; it never leaves the controller.
type Sources map[string]Source

// Source is a controller file, as the policy found it.
type Source struct {
	Path string
	Size int64
	// Cached is set for downloads the controller verified and keeps in
	// its cache (download(), archive(url=)): served without the
	// fileserving rules, which are about the policy's own files.
	Cached bool
}

// Add records a controller file servable by its content hash.
func (s Sources) Add(hash, path string, size int64) {
	s[hash] = Source{Path: path, Size: size}
}

// AddCached records a verified download from the controller's cache.
func (s Sources) AddCached(hash, path string, size int64) {
	s[hash] = Source{Path: path, Size: size, Cached: true}
}

// NewIndex indexes the files of one plan by hash. rules re-checks each path
// at transfer time, in case a symlink was swapped after planning; nil skips
// that.
func NewIndex(sources Sources, rules *Rules) *Index {
	ix := &Index{rules: rules, files: map[string]entry{}}
	for h, src := range sources {
		ix.files[h] = entry{path: src.Path, size: src.Size, cached: src.Cached}
	}
	return ix
}

// Len is the number of servable files.
func (ix *Index) Len() int { return len(ix.files) }

// Open starts serving the file with content hash h from offset. Anything
// not in the index is refused with a *RefusedError: the caller logs it as an
// attempt, since an honest agent only asks for what its plan names.
func (ix *Index) Open(h string, offset int64) (*Stream, error) {
	if !plan.IsHash(h) {
		return nil, &RefusedError{Path: fmt.Sprintf("%.80q", h), Why: "not a sha256 content hash; files are served by hash only"}
	}
	e, ok := ix.files[h]
	if !ok {
		return nil, &RefusedError{Path: h, Why: "no file with this hash is in this host's plan for this role"}
	}
	if offset < 0 || offset > e.size {
		return nil, &RefusedError{Path: h, Why: fmt.Sprintf("offset %d is outside the file (%d bytes)", offset, e.size)}
	}
	path := e.path
	if ix.rules != nil && !e.cached {
		resolved, err := ix.rules.Check(path)
		if err != nil {
			return nil, fmt.Errorf("no longer servable: %w", err)
		}
		path = resolved
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.path, err)
	}
	fi, err := f.Stat()
	if err == nil && (!fi.Mode().IsRegular() || fi.Size() != e.size) {
		err = fmt.Errorf("%s changed on the controller since the plan was made (now %d bytes, planned %d); run again", e.path, fi.Size(), e.size)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &Stream{f: f, path: e.path, want: h, size: e.size, off: offset, sum: plan.NewHasher()}
	// The prefix the agent already has is hashed too, so the end of the
	// stream can vouch for the whole file it helped build.
	if _, err := io.CopyN(s.sum, f, offset); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", e.path, err)
	}
	return s, nil
}

// Stream reads one served file in chunks, hashing as it goes.
type Stream struct {
	f    *os.File
	path string
	want string
	size int64
	off  int64
	sum  *plan.Hasher
}

// Size is the whole file's size; Offset where the next chunk starts.
func (s *Stream) Size() int64   { return s.size }
func (s *Stream) Offset() int64 { return s.off }

// Next fills buf with the next chunk. eof is true with the last chunk, once
// the whole content is verified against the hash the plan promised; a file
// edited on the controller mid-run fails here rather than arriving torn.
func (s *Stream) Next(buf []byte) (n int, eof bool, err error) {
	n, err = io.ReadFull(s.f, buf[:min(int64(len(buf)), s.size-s.off)])
	s.sum.Write(buf[:n])
	s.off += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return n, false, fmt.Errorf("%s: %w", s.path, err)
	}
	if s.off < s.size {
		if err != nil {
			return n, false, fmt.Errorf("%s shrank on the controller since the plan was made; run again", s.path)
		}
		return n, false, nil
	}
	if got := s.sum.Sum(); got != s.want {
		return n, false, fmt.Errorf("%s changed on the controller since the plan was made (sha256 %.12s, planned %.12s); run again", s.path, got, s.want)
	}
	return n, true, nil
}

// Close releases the file.
func (s *Stream) Close() error { return s.f.Close() }

// Fetch copies content h from offset to w through the same checks as a
// remote request. It is resource.Env.Fetch for runs where controller and
// target are one machine (herd apply --local), which have no agent to ask.
func (ix *Index) Fetch(ctx context.Context, h string, offset int64, w io.Writer) error {
	s, err := ix.Open(h, offset)
	if err != nil {
		return err
	}
	defer s.Close()
	buf := make([]byte, 256<<10)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, eof, err := s.Next(buf)
		if err != nil {
			return err
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		if eof {
			return nil
		}
	}
}
