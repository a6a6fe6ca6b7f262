package resource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/safefile"
)

func init() {
	Register(&Schema{
		Kind: "archive",
		Doc: "A directory holding exactly the content of a tar, tar.gz, tar.zst or zip archive (format found from " +
			"its first bytes): archive(dest, source=\"files/app.tar.gz\") takes a controller file, served like " +
			"copy; archive(dest, url=..., sha256=...) has the controller download the URL, verify its sha256 and " +
			"cache it under ~/.herd/cache before serving it, so targets need no network. The archive is unpacked " +
			"into a temp directory beside dest, synced, then swapped in with one renameat2(RENAME_EXCHANGE): readers " +
			"see the old tree or the new one, never a mix, and a crash leaves one of them (plus a temp directory " +
			"the next unpack removes); where the filesystem cannot exchange, dest is renamed aside first and is " +
			"missing for the instant between two renames. dest/" + ArchiveRecord + " records the archive's sha256 and every entry's type, " +
			"size, mode and mtime, so a rerun compares metadata only and re-unpacks when an entry drifted or " +
			"was added. Absolute names, \"..\", entries through symlinks, links leading out of dest, devices " +
			"and duplicates are refused before anything is swapped in. Owners in the archive are ignored; " +
			"setuid, setgid and sticky bits are dropped.",
		Params: []Param{
			{Name: "sha256", Type: String, Doc: "the archive's sha256 (hex): required with url=; computed from source=, which must match it when both are given"},
			{Name: "url", Type: String, Doc: "http(s) URL the controller downloads the archive from (needs sha256=); exclusive with source="},
			{Name: "size", Type: Int, Doc: "the archive's size when it is fetched from the controller (set by source= and url=)"},
			{Name: "strip_components", Type: Int, Doc: "leading path components dropped from every entry, like tar's --strip-components (default 0)"},
			{Name: "owner", Type: String, Doc: "owner of everything unpacked (default: the user herd runs as)"},
			{Name: "group", Type: String, Doc: "group of everything unpacked (default: that user's group)"},
			{Name: "force", Type: Bool, Doc: "replace an existing non-empty dest that herd did not unpack (default False, which refuses)"},
		},
		Factory: newArchive,
	})
}

// ArchiveRecord is the file inside dest that says what was unpacked there.
// It is swapped in with the tree, so it always describes the tree it is in.
const ArchiveRecord = ".herd-archive"

// unpackPrefix starts the temp directories beside dest.
const unpackPrefix = ".herd-unpack-"

// archiveExchange swaps dest and the new tree; a var so tests can force the
// fallback taken on filesystems without RENAME_EXCHANGE.
var archiveExchange = func(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}

type archive struct {
	dest    string
	hash    string
	url     string
	content []byte // inline archive, nil when fetched from the controller
	size    int64
	strip   int
	attrs   attrs
	force   bool
}

func newArchive(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	if err := checkAbs("archive", name); err != nil {
		return nil, err
	}
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("archive %s: %w", name, err) }
	if name == "/" {
		return fail(errors.New("dest cannot be /"))
	}
	a := &archive{dest: name}
	var err error
	if a.hash, err = p.Str("sha256", ""); err != nil {
		return fail(err)
	}
	a.hash = strings.ToLower(a.hash)
	if !plan.IsHash(a.hash) {
		return fail(fmt.Errorf("sha256 %q is not 64 hex digits", a.hash))
	}
	if a.url, err = p.Str("url", ""); err != nil {
		return fail(err)
	}
	strip, err := p.Int("strip_components", 0)
	if err != nil || strip < 0 || strip > 64 {
		return fail(errors.New("strip_components must be a count from 0 to 64"))
	}
	a.strip = int(strip)
	if a.force, err = p.Bool("force", false); err != nil {
		return fail(err)
	}
	if a.attrs.owner, err = p.Str("owner", ""); err != nil {
		return fail(err)
	}
	if a.attrs.group, err = p.Str("group", ""); err != nil {
		return fail(err)
	}
	a.attrs.mode = -1
	if b, ok := blobs[a.hash]; ok {
		a.content = b
		if a.content == nil {
			a.content = []byte{}
		}
	} else {
		if !p.Has("size") {
			return fail(errors.New("the archive is neither in the plan nor fetchable (give source= or url= with sha256=)"))
		}
		if a.size, err = p.Int("size", 0); err != nil || a.size < 0 {
			return fail(errors.New("size must be a byte count"))
		}
	}
	return a, nil
}

// archiveRecord is what ArchiveRecord holds.
type archiveRecord struct {
	SHA256  string        `json:"sha256"`
	Options string        `json:"options"`
	Entries []recordEntry `json:"entries"`
}

// recordEntry is one unpacked path's metadata: enough to notice an edit,
// a removal or a replacement without reading any content.
type recordEntry struct {
	Path  string `json:"p"`
	Type  string `json:"t"` // "d", "f", "l"
	Mode  uint32 `json:"m,omitempty"`
	Size  int64  `json:"s,omitempty"`
	MTime int64  `json:"mt,omitempty"` // ns, files only
	Link  string `json:"l,omitempty"`
	Owner string `json:"o,omitempty"` // uid:gid
}

// options is what besides the content decides the tree: changing it
// re-unpacks.
func (a *archive) options() string {
	return fmt.Sprintf("strip=%d owner=%s group=%s", a.strip, a.attrs.owner, a.attrs.group)
}

func (a *archive) short() string { return a.hash[:12] }

// inspect compares dest with the record inside it.
func (a *archive) inspect() (Change, error) {
	fi, err := os.Lstat(a.dest)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Change{Changed: true, Summary: "unpack " + a.short() + " into new " + a.dest}, nil
	case err != nil:
		return Change{}, err
	case fi.Mode()&fs.ModeSymlink != 0:
		return Change{}, fmt.Errorf("%s is a symlink; give the directory it points to as dest", a.dest)
	case !fi.IsDir():
		return Change{}, fmt.Errorf("%s exists and is %s, not a directory", a.dest, describeType(fi))
	}
	data, err := os.ReadFile(filepath.Join(a.dest, ArchiveRecord))
	if errors.Is(err, os.ErrNotExist) {
		names, err := readDirNames(a.dest)
		if err != nil {
			return Change{}, err
		}
		if len(names) > 0 && !a.force {
			return Change{}, fmt.Errorf("%s exists, is not empty and was not unpacked by herd; empty it or give force=True to replace it", a.dest)
		}
		return Change{Changed: true, Summary: "unpack " + a.short() + " into " + a.dest + " (replacing what was there)"}, nil
	}
	if err != nil {
		return Change{}, err
	}
	var rec archiveRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return Change{Changed: true, Summary: "unpack " + a.short() + " (" + ArchiveRecord + " is unreadable)"}, nil
	}
	if rec.SHA256 != a.hash {
		return Change{Changed: true, Summary: fmt.Sprintf("archive %.12s→%s", rec.SHA256, a.short())}, nil
	}
	if rec.Options != a.options() {
		return Change{Changed: true, Summary: fmt.Sprintf("unpack %s again: %s→%s", a.short(), rec.Options, a.options())}, nil
	}
	drift, err := a.drift(rec)
	if err != nil {
		return Change{}, err
	}
	if len(drift) > 0 {
		ch := Change{Changed: true, Summary: fmt.Sprintf("unpack %s again: %d %s changed since unpacked", a.short(), len(drift), plural(len(drift), "entry", "entries"))}
		for i, d := range drift {
			if i == 20 {
				ch.Diff += fmt.Sprintf("… and %d more\n", len(drift)-20)
				break
			}
			ch.Diff += d + "\n"
		}
		return ch, nil
	}
	return Change{}, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// drift lists entries that differ from the record, and entries the record
// does not know, by metadata alone (lstat): an edited file changes size or
// mtime, a replaced one its type.
func (a *archive) drift(rec archiveRecord) ([]string, error) {
	known := make(map[string]bool, len(rec.Entries))
	var out []string
	for _, e := range rec.Entries {
		known[e.Path] = true
		p := filepath.Join(a.dest, e.Path)
		fi, err := os.Lstat(p)
		if err != nil {
			out = append(out, "missing "+e.Path)
			continue
		}
		if now := recordOf(e.Path, p, fi); now != e {
			out = append(out, "changed "+e.Path)
		}
	}
	err := filepath.WalkDir(a.dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a.dest, p)
		if rel == "." || rel == ArchiveRecord {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if !known[rel] {
			out = append(out, "extra "+rel)
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	return out, err
}

// recordOf describes the entry at p (rel inside the tree).
func recordOf(rel, p string, fi os.FileInfo) recordEntry {
	e := recordEntry{Path: rel, Mode: uint32(unixMode(fi.Mode()))}
	switch {
	case fi.IsDir():
		e.Type = "d"
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Type = "l"
		e.Mode = 0
		e.Link, _ = os.Readlink(p)
	case fi.Mode().IsRegular():
		e.Type = "f"
		e.Size = fi.Size()
		e.MTime = fi.ModTime().UnixNano()
	default:
		e.Type = "?"
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.Owner = fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	return e
}

func (a *archive) Check(ctx context.Context, env *Env) (Change, error) {
	ch, err := a.inspect()
	if err != nil {
		return ch, fmt.Errorf("archive %s: %w", a.dest, err)
	}
	return ch, nil
}

// Apply unpacks into a temp directory beside dest and swaps it in.
func (a *archive) Apply(ctx context.Context, env *Env) (Change, error) {
	ch, err := a.inspect()
	if err != nil || !ch.Changed {
		return ch, wrapArchive(a.dest, err)
	}
	if err := a.unpack(ctx, env); err != nil {
		return ch, wrapArchive(a.dest, err)
	}
	return ch, nil
}

func wrapArchive(dest string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("archive %s: %w", dest, err)
}

func (a *archive) unpack(ctx context.Context, env *Env) error {
	parent, base := filepath.Split(a.dest)
	parent = filepath.Clean(parent)
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		return fmt.Errorf("parent directory %s does not exist", parent)
	}
	cleanUnpackTemps(parent, base)
	src, size, done, err := a.open(ctx, env, parent, base)
	if err != nil {
		return err
	}
	defer done()
	tmp, err := os.MkdirTemp(parent, unpackPrefix+base+"-")
	if err != nil {
		return err
	}
	swapped := false
	defer func() {
		if !swapped {
			os.RemoveAll(tmp)
		}
	}()
	u := newUnpacker(tmp, a.strip)
	if err := u.unpack(src, size); err != nil {
		return err
	}
	if err := u.finish(); err != nil {
		return err
	}
	if err := a.own(tmp); err != nil {
		return err
	}
	if err := a.writeRecord(tmp); err != nil {
		return err
	}
	// One syncfs makes every unpacked file durable before the swap.
	if err := syncFS(tmp); err != nil {
		return err
	}
	if err := swapIn(tmp, a.dest); err != nil {
		return err
	}
	swapped = true
	if env.Log != nil {
		env.Log(fmt.Sprintf("unpacked %d files (%d bytes) into %s", u.files, u.bytes, a.dest))
	}
	return safefile.SyncDir(parent)
}

// open returns the archive as a ReaderAt: the inline blob, or the
// controller's content fetched (resumably) into a file beside dest.
func (a *archive) open(ctx context.Context, env *Env, parent, base string) (io.ReaderAt, int64, func(), error) {
	if a.content != nil {
		if plan.Hash(a.content) != a.hash {
			return nil, 0, nil, errors.New("the plan's archive does not match its sha256")
		}
		return bytes.NewReader(a.content), int64(len(a.content)), func() {}, nil
	}
	p := filepath.Join(parent, unpackPrefix+base+"-"+a.hash[:16]+".archive")
	if err := fetchInstall(ctx, env, p, a.hash, a.size, 0o600, -1, -1); err != nil {
		return nil, 0, nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, nil, err
	}
	return f, a.size, func() { f.Close(); os.Remove(p) }, nil
}

// own gives everything under root to owner and group, when given.
func (a *archive) own(root string) error {
	uid, gid, err := a.attrs.ids()
	if err != nil || (uid < 0 && gid < 0) {
		return err
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// chown clears setuid and setgid bits, which herd drops anyway.
		return os.Lchown(p, uid, gid)
	})
}

// writeRecord lists every entry of the new tree, sorted, into ArchiveRecord.
func (a *archive) writeRecord(root string) error {
	rec := archiveRecord{SHA256: a.hash, Options: a.options()}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rec.Entries = append(rec.Entries, recordOf(filepath.ToSlash(rel), p, fi))
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(rec.Entries, func(i, j int) bool { return rec.Entries[i].Path < rec.Entries[j].Path })
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, ArchiveRecord), data, 0o644)
}

func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// swapIn puts the tree at tmp in dest's place. With an existing dest, one
// renameat2(RENAME_EXCHANGE) swaps the two trees, then the old one goes;
// where the filesystem lacks it, dest is renamed aside first, which leaves
// dest missing for the instant between two renames.
func swapIn(tmp, dest string) error {
	if _, err := os.Lstat(dest); errors.Is(err, os.ErrNotExist) {
		return os.Rename(tmp, dest)
	}
	err := archiveExchange(tmp, dest)
	if err == nil {
		return os.RemoveAll(tmp) // now the old tree
	}
	// EINVAL, ENOSYS, EOPNOTSUPP: no RENAME_EXCHANGE here; EXDEV: overlayfs
	// will not exchange a directory of its lower layer.
	if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSYS) && !errors.Is(err, syscall.EOPNOTSUPP) && !errors.Is(err, syscall.EXDEV) {
		return err
	}
	old := tmp + ".old"
	if err := os.Rename(dest, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.Rename(old, dest)
		return err
	}
	return os.RemoveAll(old)
}

// cleanUnpackTemps removes what cut runs left beside dest (temp trees,
// old trees); fetched archives in progress are kept for resume.
func cleanUnpackTemps(parent, base string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, unpackPrefix+base+"-") || !e.IsDir() {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleTempAge {
			os.RemoveAll(filepath.Join(parent, name))
		}
	}
}
