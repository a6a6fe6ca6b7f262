// Package safefile replaces files so that a reader, or a machine that loses
// power or a process that is killed mid-write, sees either the old content or
// the new one, never a torn mix: the new content goes to a temp file in the
// same directory (same filesystem, so rename is atomic), is fsynced, renamed
// over the destination, and the directory is fsynced so the rename survives
// a crash.
package safefile

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"
)

// TempPrefix starts the name of every temp file, so stale ones left by a
// killed writer can be recognised and cleaned.
const TempPrefix = ".herd-tmp-"

// Keep, passed as uid or gid, keeps the destination's current owner or group
// when it exists (replacing a file should not silently change who owns it),
// and otherwise leaves the process's own, as a plain create would.
const Keep = -1

// Write atomically replaces path with the content of r.
//
// perm is applied exactly (umask does not apply); setuid, setgid and sticky
// bits are honoured. uid and gid are the numeric owner and group, or Keep.
// Ownership is set before the mode (chown clears setuid bits) and both are set
// on the temp file before the rename, so the destination never exists with
// the wrong ownership or permissions. On any error the temp file is removed
// and the destination is untouched.
func Write(path string, r io.Reader, perm os.FileMode, uid, gid int) error {
	if err := write(path, r, perm, uid, gid); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	return SyncDir(dir)
}

// WriteNoDirSync is Write without the final fsync of the directory, for
// callers that write many files into one directory and sync it once after
// the last rename (SyncDir). Until then a crash may lose the new entries,
// but never leaves a torn file.
func WriteNoDirSync(path string, b []byte, perm os.FileMode, uid, gid int) error {
	return write(path, bytes.NewReader(b), perm, uid, gid)
}

func write(path string, r io.Reader, perm os.FileMode, uid, gid int) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if uid == Keep || gid == Keep {
		if fi, statErr := os.Lstat(path); statErr == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				if uid == Keep {
					uid = int(st.Uid)
				}
				if gid == Keep {
					gid = int(st.Gid)
				}
			}
		}
	}

	f, err := createTemp(dir, base)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()

	if _, err = io.Copy(f, r); err != nil {
		return err
	}
	if uid != Keep || gid != Keep {
		if err = f.Chown(uid, gid); err != nil {
			return err
		}
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// WriteBytes is Write for content already in memory.
func WriteBytes(path string, b []byte, perm os.FileMode, uid, gid int) error {
	return Write(path, bytes.NewReader(b), perm, uid, gid)
}

// SyncDir fsyncs a directory so that entries created, renamed or removed in
// it are durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// TempName returns a fresh temp name for base: TempPrefix + base + "-" + 12
// random hex digits. The fixed-width suffix lets CleanStale tell the temp
// files of "a" from those of "a-b".
func TempName(base string) string {
	var b [6]byte
	rand.Read(b[:])
	return TempPrefix + base + "-" + hex.EncodeToString(b[:])
}

func createTemp(dir, base string) (*os.File, error) {
	for range 100 {
		name := filepath.Join(dir, TempName(base))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, fmt.Errorf("cannot create a unique temp file in %s", dir)
}

// CleanStale removes temp files that a killed writer left behind for path,
// if they are older than minAge (so that a write in progress in another
// process is not disturbed). It returns the paths removed.
func CleanStale(path string, minAge time.Duration) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(TempPrefix+base) + `-[0-9a-f]{12}$`)
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("clean stale temp files of %s: %w", path, err)
	}
	var removed []string
	var errs []error
	cutoff := time.Now().Add(-minAge)
	for _, e := range entries {
		if !re.MatchString(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}
