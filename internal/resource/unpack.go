package resource

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// unpacker writes an archive's entries into root, a fresh private
// directory, and refuses anything that could write outside it or leave a
// link pointing out of it: absolute names, ".." components, entries
// through a symlink, links whose target leaves the tree, special files and
// duplicates. It never follows a symlink it did not check: every parent
// on the way to an entry is one this unpacker created as a directory, and
// files are created with O_EXCL|O_NOFOLLOW.
type unpacker struct {
	root  string
	strip int
	kinds map[string]byte // relative path → 'd', 'f', 'l' (symlink)
	links map[string]string
	dirs  map[string]dirMeta
	files int
	bytes int64
}

type dirMeta struct {
	mode  os.FileMode
	mtime time.Time
}

// unpackEntry is one archive member, whatever the format.
type unpackEntry struct {
	name     string
	kind     byte // 'd', 'f', 'l' symlink, 'h' hard link
	mode     os.FileMode
	mtime    time.Time
	linkname string
	body     io.Reader
	// what names the entry's type when it is refused ("a character device").
	what string
}

func newUnpacker(root string, strip int) *unpacker {
	return &unpacker{root: root, strip: strip, kinds: map[string]byte{".": 'd'}, links: map[string]string{}, dirs: map[string]dirMeta{}}
}

// unpackArchive detects the format of r by its first bytes and unpacks it.
func (u *unpacker) unpack(r io.ReaderAt, size int64) error {
	head := make([]byte, 512)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	head = head[:n]
	stream := func() io.Reader { return bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 256<<10) }
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(stream())
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		return u.tar(zr, "tar.gz")
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(stream(), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		return u.tar(zr, "tar.zst")
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return u.zip(r, size)
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return u.tar(stream(), "tar")
	case bytes.HasPrefix(head, []byte("BZh")) || bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return errors.New("bzip2 and xz archives are not supported: use tar, tar.gz, tar.zst or zip")
	}
	return errors.New("not a tar, tar.gz, tar.zst or zip archive")
}

func (u *unpacker) tar(r io.Reader, format string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", format, err)
		}
		e := unpackEntry{name: h.Name, mode: os.FileMode(h.Mode) & 0o777, mtime: h.ModTime, linkname: h.Linkname, body: tr}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			e.kind = 'f'
		case tar.TypeDir:
			e.kind = 'd'
		case tar.TypeSymlink:
			e.kind = 'l'
		case tar.TypeLink:
			e.kind = 'h'
		case tar.TypeChar:
			e.what = "a character device"
		case tar.TypeBlock:
			e.what = "a block device"
		case tar.TypeFifo:
			e.what = "a named pipe"
		default:
			e.what = fmt.Sprintf("of tar type %q", h.Typeflag)
		}
		if err := u.entry(e); err != nil {
			return err
		}
	}
}

func (u *unpacker) zip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	for _, f := range zr.File {
		m := f.Mode()
		e := unpackEntry{name: f.Name, mode: m.Perm(), mtime: f.Modified}
		if f.CreatorVersion>>8 != 3 { // not made on Unix: no permission bits
			e.mode = 0o644
			if m.IsDir() {
				e.mode = 0o755
			}
		}
		switch {
		case m.IsDir() || strings.HasSuffix(f.Name, "/"):
			e.kind = 'd'
		case m&fs.ModeSymlink != 0:
			e.kind = 'l'
			rc, err := f.Open()
			if err != nil {
				return fmt.Errorf("zip entry %q: %w", f.Name, err)
			}
			target, err := io.ReadAll(io.LimitReader(rc, 4097))
			rc.Close()
			if err != nil || len(target) > 4096 {
				return fmt.Errorf("zip entry %q: unreadable symlink target", f.Name)
			}
			e.linkname = string(target)
		case m.IsRegular():
			e.kind = 'f'
		default:
			e.what = "a " + m.Type().String() + " entry"
		}
		if err := u.zipEntry(f, e); err != nil {
			return err
		}
	}
	return nil
}

func (u *unpacker) zipEntry(f *zip.File, e unpackEntry) error {
	if e.kind != 'f' {
		return u.entry(e)
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("zip entry %q: %w", f.Name, err)
	}
	defer rc.Close()
	e.body = rc
	return u.entry(e)
}

// relName checks an entry's name and returns it relative to the root,
// after strip_components; skip is true for entries the strip removes.
func (u *unpacker) relName(name string) (rel string, skip bool, err error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", false, fmt.Errorf("entry %q: empty or invalid name", name)
	}
	if strings.HasPrefix(name, "/") {
		return "", false, fmt.Errorf("entry %q: absolute path; archive entries must be relative to dest", name)
	}
	var parts []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "..":
			return "", false, fmt.Errorf("entry %q: \"..\" in the path would leave dest", name)
		case "", ".":
			continue
		}
		parts = append(parts, c)
	}
	if len(parts) < u.strip {
		return "", true, nil
	}
	parts = parts[u.strip:]
	if len(parts) == 0 {
		return ".", false, nil
	}
	return strings.Join(parts, "/"), false, nil
}

// entry writes one member after its checks.
func (u *unpacker) entry(e unpackEntry) error {
	if e.kind == 0 {
		return fmt.Errorf("entry %q is %s; only files, directories and links are unpacked", e.name, e.what)
	}
	rel, skip, err := u.relName(e.name)
	if err != nil || skip {
		return err
	}
	if rel == "." {
		if e.kind != 'd' {
			return fmt.Errorf("entry %q: the top of dest can only be a directory", e.name)
		}
		u.dirs["."] = dirMeta{e.mode, e.mtime}
		return nil
	}
	if err := u.parents(e.name, rel); err != nil {
		return err
	}
	if prev, dup := u.kinds[rel]; dup {
		if prev == 'd' && e.kind == 'd' {
			u.dirs[rel] = dirMeta{e.mode, e.mtime}
			return nil
		}
		return fmt.Errorf("entry %q appears twice in the archive; herd does not overwrite entries", e.name)
	}
	p := filepath.Join(u.root, rel)
	switch e.kind {
	case 'd':
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		u.dirs[rel] = dirMeta{e.mode, e.mtime}
	case 'f':
		if err := u.writeFile(p, e); err != nil {
			return fmt.Errorf("entry %q: %w", e.name, err)
		}
	case 'l':
		if err := u.checkSymlink(e.name, rel, e.linkname); err != nil {
			return err
		}
		if err := os.Symlink(e.linkname, p); err != nil {
			return err
		}
		u.links[rel] = e.linkname
	case 'h':
		target, skip, err := u.relName(e.linkname)
		if err != nil || skip || target == "." {
			return fmt.Errorf("entry %q: hard link to %q, which is not a file inside dest", e.name, e.linkname)
		}
		if u.kinds[target] != 'f' {
			return fmt.Errorf("entry %q: hard link to %q, which is not a file unpacked before it", e.name, e.linkname)
		}
		if err := os.Link(filepath.Join(u.root, target), p); err != nil {
			return err
		}
		e.kind = 'f'
	}
	u.kinds[rel] = e.kind
	return nil
}

// parents creates the missing directories above rel and refuses a path
// through anything that is not a directory this unpacker made.
func (u *unpacker) parents(name, rel string) error {
	parts := strings.Split(rel, "/")
	for i := 1; i < len(parts); i++ {
		dir := strings.Join(parts[:i], "/")
		switch u.kinds[dir] {
		case 'd':
			continue
		case 'l':
			return fmt.Errorf("entry %q goes through the symlink %q; herd does not write through links", name, dir)
		case 'f':
			return fmt.Errorf("entry %q goes through %q, which is a file", name, dir)
		}
		if err := os.Mkdir(filepath.Join(u.root, dir), 0o700); err != nil {
			return err
		}
		u.kinds[dir] = 'd'
		u.dirs[dir] = dirMeta{mode: 0o755}
	}
	return nil
}

func (u *unpacker) writeFile(p string, e unpackEntry) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, e.body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	u.files++
	u.bytes += n
	if err := os.Chmod(p, e.mode); err != nil {
		return err
	}
	if !e.mtime.IsZero() {
		return os.Chtimes(p, e.mtime, e.mtime)
	}
	return nil
}

// checkSymlink refuses a link whose target is absolute or, resolved
// through the links unpacked so far and itself, leads above the root.
func (u *unpacker) checkSymlink(name, rel, target string) error {
	if target == "" || strings.HasPrefix(target, "/") {
		return fmt.Errorf("entry %q is a symlink to %q, outside dest; herd unpacks only links that stay inside", name, target)
	}
	u.links[rel] = target // a link that resolves through itself loops
	defer delete(u.links, rel)
	if !u.staysInside(path.Dir(rel), target, 0) {
		return fmt.Errorf("entry %q is a symlink to %q, outside dest; herd unpacks only links that stay inside", name, target)
	}
	return nil
}

// staysInside resolves target from directory dir (both relative to the
// root, following the links unpacked so far) and reports whether it never
// climbs above the root. Lexical checks alone are not enough: with a → "."
// the target "a/../.." is "." lexically but leaves the root physically.
func (u *unpacker) staysInside(dir, target string, depth int) bool {
	var stack []string
	if dir != "." {
		stack = strings.Split(dir, "/")
	}
	_, ok := u.resolve(stack, target, depth)
	return ok
}

// resolve walks target from stack (path components below the root) the way
// the kernel would, through the known links; ok is false when it leaves
// the root or loops.
func (u *unpacker) resolve(stack []string, target string, depth int) ([]string, bool) {
	if depth > 40 || strings.HasPrefix(target, "/") {
		return nil, false
	}
	stack = append([]string(nil), stack...)
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return nil, false
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		if t, ok := u.links[strings.Join(stack, "/")]; ok {
			var ok bool
			if stack, ok = u.resolve(stack[:len(stack)-1], t, depth+1); !ok {
				return nil, false
			}
		}
	}
	return stack, true
}

// finish sets directory modes and times, deepest first, once nothing more
// is written into them.
func (u *unpacker) finish() error {
	rels := make([]string, 0, len(u.dirs))
	for rel := range u.dirs {
		rels = append(rels, rel)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(rels)))
	for _, rel := range rels {
		m := u.dirs[rel]
		p := filepath.Join(u.root, rel)
		if m.mode == 0 && rel == "." {
			m.mode = 0o755
		}
		if err := os.Chmod(p, m.mode); err != nil {
			return err
		}
		if !m.mtime.IsZero() {
			if err := os.Chtimes(p, m.mtime, m.mtime); err != nil {
				return err
			}
		}
	}
	if _, ok := u.dirs["."]; !ok {
		return os.Chmod(u.root, 0o755)
	}
	return nil
}
