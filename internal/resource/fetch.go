package resource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/safefile"
)

// PartialPrefix starts the name of a transfer in progress: the destination's
// name and the content hash follow, so a cut transfer is resumed by the next
// run that wants the same content, and dropped by one that wants another.
const PartialPrefix = ".herd-partial-"

// RefusedError is a Fetch error by which the controller answered that it
// will not serve the content (refused, unreadable, changed since the plan):
// its partial is dropped. Any other Fetch error is an interruption (the
// controller died, the connection closed, the run was cancelled) and the
// partial is kept for the next run to resume.
type RefusedError string

func (e RefusedError) Error() string { return "controller: " + string(e) }

// partialName is the deterministic temp name of a fetch of h for path.
func partialName(path, h string) string {
	dir, base := filepath.Split(path)
	return filepath.Join(dir, PartialPrefix+base+"-"+h[:16])
}

// cleanPartials removes transfers of other contents for path, left by cut
// runs: the content they were building is no longer wanted. A partial
// another live run holds locked is left alone.
func cleanPartials(path, keep string) {
	dir, base := filepath.Split(path)
	entries, err := os.ReadDir(filepath.Clean(dir))
	if err != nil {
		return
	}
	prefix := PartialPrefix + base + "-"
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		if !strings.HasPrefix(name, prefix) || len(name) != len(prefix)+16 || p == keep {
			continue
		}
		if f, ok := lockPartial(p, false); ok {
			os.Remove(p)
			f.Close()
		}
	}
}

// lockPartial opens the partial at p and takes its lock without waiting.
// ok is false when another run holds it. The path is re-checked after
// locking: a partial renamed into place or removed by its previous holder
// must not be written through a stale handle. Only a regular file of ours
// with one link is reused: in a directory others can write to, a planted
// symlink, hard link or someone else's file (which they could still hold
// open and change) is removed instead of written through.
func lockPartial(p string, create bool) (f *os.File, ok bool) {
	flags := os.O_RDWR | syscall.O_NOFOLLOW
	if create {
		flags |= os.O_CREATE
	}
	for range 10 {
		f, err := os.OpenFile(p, flags, 0o600)
		if errors.Is(err, syscall.ELOOP) && create {
			os.Remove(p) // a symlink where our partial should be
			continue
		}
		if err != nil {
			return nil, false
		}
		if !ours(f) {
			// Remove the name only if it still is the file we judged: by
			// now it may name another run's fresh partial (ours failed
			// because the file we opened was renamed away and replaced).
			held, err1 := f.Stat()
			named, err2 := os.Lstat(p)
			f.Close()
			if err1 == nil && err2 == nil && os.SameFile(held, named) {
				os.Remove(p)
			}
			if !create {
				return nil, false
			}
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			return nil, false
		}
		held, err1 := f.Stat()
		named, err2 := os.Lstat(p)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return f, true
		}
		f.Close()
		if !create {
			return nil, false
		}
	}
	return nil, false
}

// ours reports whether f is a regular file owned by this process's user
// with no other name.
func ours(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid() && st.Nlink == 1
}

// hashOf returns the sha256 hex of a file's content.
func hashOf(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h, _, err := plan.HashReader(f)
	return h, err
}

// fetchInstall puts the controller's content h (size bytes) at path
// atomically: it streams into a temp file in the same directory, checks the
// hash, sets owner and mode, fsyncs, renames, and fsyncs the directory. The
// temp file is named after the content so that a transfer cut by a lost
// connection resumes where it stopped; a concurrent writer of the same
// content (another controller) uses a private temp instead, so two runs
// never mix their bytes.
func fetchInstall(ctx context.Context, env *Env, path, h string, size int64, perm os.FileMode, uid, gid int) (err error) {
	if env.Fetch == nil {
		return fmt.Errorf("content %.12s is on the controller and this run has no controller to fetch it from", h)
	}
	if uid == safefile.Keep || gid == safefile.Keep {
		if fi, err := os.Lstat(path); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				if uid == safefile.Keep {
					uid = int(st.Uid)
				}
				if gid == safefile.Keep {
					gid = int(st.Gid)
				}
			}
		}
	}
	tmp := partialName(path, h)
	cleanPartials(path, tmp)
	f, resumable := lockPartial(tmp, true)
	if !resumable {
		// Another run is fetching the same content into the shared name:
		// use a private temp, without resume.
		tmp = filepath.Join(filepath.Dir(path), safefile.TempName(filepath.Base(path)))
		if f, err = os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return err
		}
	}
	bad := false // the partial holds bytes that are not the content
	defer func() {
		if err == nil {
			return
		}
		// A cut transfer (controller killed, connection closed, run
		// cancelled, timeout) keeps the shared partial for the next run to
		// resume; a private temp, known-bad bytes and content the
		// controller refuses are removed.
		var refused RefusedError
		if !resumable || bad || errors.As(err, &refused) {
			os.Remove(tmp)
		}
		f.Close()
	}()

	sum, off, err := resumeFrom(f, size)
	if err != nil {
		return err
	}
	if err := fetchInto(ctx, env, f, sum, h, off, size); err != nil {
		return err
	}
	if got := sum.Sum(); got != h && off > 0 {
		// The kept prefix was bad (e.g. the machine crashed before it
		// reached the disk): start over once.
		if err := f.Truncate(0); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		sum = plan.NewHasher()
		if err := fetchInto(ctx, env, f, sum, h, 0, size); err != nil {
			return err
		}
	}
	if got := sum.Sum(); got != h {
		bad = true
		return fmt.Errorf("received content has sha256 %.12s, expected %.12s", got, h)
	}
	if uid >= 0 || gid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return err
		}
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	// Rename while still holding the partial's lock: once it is released,
	// another run may lock the same name, and one of the two renames would
	// find it gone.
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return safefile.SyncDir(filepath.Dir(path))
}

// resumeFrom hashes what a partial file already holds and positions f after
// it; a partial longer than the content is discarded.
func resumeFrom(f *os.File, size int64) (*plan.Hasher, int64, error) {
	sum := plan.NewHasher()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	off := fi.Size()
	if off > size {
		if err := f.Truncate(0); err != nil {
			return nil, 0, err
		}
		off = 0
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	if _, err := io.CopyN(sum, f, off); err != nil {
		return nil, 0, err
	}
	return sum, off, nil
}

func fetchInto(ctx context.Context, env *Env, f *os.File, sum *plan.Hasher, h string, off, size int64) error {
	pw := &progressWriter{w: io.MultiWriter(f, sum), done: off, size: size, log: env.Log, start: time.Now(), from: off}
	if err := env.Fetch(ctx, h, off, pw); err != nil {
		return err
	}
	pw.report(true)
	return nil
}

// fetchBytes fetches a small content into memory and checks its hash.
func fetchBytes(ctx context.Context, env *Env, h string) ([]byte, error) {
	if env.Fetch == nil {
		return nil, fmt.Errorf("content %.12s is on the controller and this run has no controller to fetch it from", h)
	}
	var buf bytes.Buffer
	if err := env.Fetch(ctx, h, 0, &buf); err != nil {
		return nil, err
	}
	if plan.Hash(buf.Bytes()) != h {
		return nil, errors.New("received content does not match its sha256")
	}
	return buf.Bytes(), nil
}

// progressWriter reports a large transfer's progress about every two
// seconds, so a long copy shows it is alive and how fast it goes.
type progressWriter struct {
	w          io.Writer
	done, size int64
	from       int64
	log        func(string)
	start      time.Time
	last       time.Time
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	if time.Since(p.last) > 2*time.Second && time.Since(p.start) > 2*time.Second {
		p.report(false)
	}
	return n, err
}

func (p *progressWriter) report(final bool) {
	if p.log == nil || (final && p.last.IsZero()) {
		return
	}
	p.last = time.Now()
	rate := float64(p.done-p.from) / max(time.Since(p.start).Seconds(), 1e-3) / (1 << 20)
	pct := 100.0
	if p.size > 0 {
		pct = float64(p.done) * 100 / float64(p.size)
	}
	resumed := ""
	if p.from > 0 {
		resumed = fmt.Sprintf(", resumed at %.1f MiB", float64(p.from)/(1<<20))
	}
	p.log(fmt.Sprintf("received %.1f of %.1f MiB (%.0f%%) at %.1f MiB/s%s", float64(p.done)/(1<<20), float64(p.size)/(1<<20), pct, rate, resumed))
}
