package resource

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/herd-project/herd/internal/safefile"
)

// textEdit is the read-modify-write of a small text file that every kind
// editing one shares (line, block, cron, sysctl, mount's fstab,
// apt_repository, authorized_key): the check is an exact diff of the whole
// file, the write is atomic (safefile) and keeps the file's mode and owner,
// and a missing file is created with perm, uid and gid.
type textEdit struct {
	kind, path string
	create     bool        // create the file when missing (else an error, unless nothing is wanted)
	perm       os.FileMode // of a created file
	uid, gid   int         // of a created file (safefile.Keep: the agent's)
	// removeEmpty deletes the file when the edit leaves it empty (a cron.d
	// file whose last entry went).
	removeEmpty bool
	// createdSummary starts the summary when the file is created; "" means
	// "create <path>" (kinds whose name is not the path say which file).
	createdSummary string
	// edit returns the wanted content and a summary, "" when old is right.
	edit func(old []byte) ([]byte, string)
}

// maxTextFileSize bounds the files text edits hold in memory: they are
// meant for configuration files, not logs.
const maxTextFileSize = 64 << 20

// editLocks serialises read-modify-write of one path inside the agent, so
// resources of a parallel role that edit the same file (two sysctl keys in
// one file) never lose each other's change.
var editLocks sync.Map // path → *sync.Mutex

func lockPath(path string) func() {
	m, _ := editLocks.LoadOrStore(path, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

type textDelta struct {
	change  Change
	exists  bool
	perm    os.FileMode
	content []byte
}

// inspect reads the file (never through a symlink: the diff must not show
// a file the path was pointed to) and computes the wanted content.
func (t *textEdit) inspect() (textDelta, error) {
	var d textDelta
	fi, err := os.Lstat(t.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return d, fmt.Errorf("%s: %w", t.path, err)
	case !fi.Mode().IsRegular():
		return d, fmt.Errorf("%s exists and is %s, not a regular file", t.path, describeType(fi))
	case fi.Size() > maxTextFileSize:
		return d, fmt.Errorf("%s is larger than %d MiB; %s edits only small text files", t.path, maxTextFileSize>>20, t.kind)
	default:
		d.exists = true
		d.perm = fileMode(unixMode(fi.Mode()))
	}
	var old []byte
	if d.exists {
		if old, err = readNoFollow(t.path); err != nil {
			return d, fmt.Errorf("%s: %w", t.path, err)
		}
	}
	new, summary := t.edit(old)
	if summary == "" {
		return d, nil
	}
	if !d.exists {
		if !t.create {
			return d, fmt.Errorf("%s does not exist; set create=True to create it", t.path)
		}
		d.perm = t.perm
		created := t.createdSummary
		if created == "" {
			created = "create " + t.path
		}
		summary = created + ", " + summary
	}
	d.content = new
	gone := t.removeEmpty && len(new) == 0
	if gone {
		summary += ", file removed"
	}
	d.change = Change{Changed: true, Summary: summary, Diff: contentDiff(t.path, old, new, d.exists, !gone)}
	return d, nil
}

// write replaces the file with d's content, keeping mode and owner of an
// existing file.
func (t *textEdit) write(d textDelta) error {
	safefile.CleanStale(t.path, staleTempAge)
	if t.removeEmpty && len(d.content) == 0 {
		if err := os.Remove(t.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return safefile.SyncDir(filepath.Dir(t.path))
	}
	uid, gid := safefile.Keep, safefile.Keep
	if !d.exists {
		uid, gid = t.uid, t.gid
	}
	return safefile.WriteBytes(t.path, d.content, d.perm, uid, gid)
}

// run is Check (apply=false) or Apply of a plain text edit.
func (t *textEdit) run(apply bool) (Change, error) {
	unlock := lockPath(t.path)
	defer unlock()
	d, err := t.inspect()
	if err != nil || !d.change.Changed || !apply {
		return d.change, err
	}
	return d.change, t.write(d)
}

// textLines splits text into lines without their newlines, and says
// whether the text ended with one (an empty text counts as ending with one).
func textLines(text string) ([]string, bool) {
	if text == "" {
		return nil, true
	}
	return strings.Split(strings.TrimSuffix(text, "\n"), "\n"), strings.HasSuffix(text, "\n")
}

func joinLines(lines []string, trailingNL bool) []byte {
	out := strings.Join(lines, "\n")
	if len(lines) > 0 && trailingNL {
		out += "\n"
	}
	return []byte(out)
}

// readNoFollow reads a regular file, refusing a symlink or device swapped in
// after the Lstat (the file may live in a directory its user controls).
func readNoFollow(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxTextFileSize {
		return nil, fmt.Errorf("changed under us into %s", describeType(fi))
	}
	return io.ReadAll(io.LimitReader(f, maxTextFileSize+1))
}
