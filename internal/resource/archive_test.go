package resource

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/herd-project/herd/internal/plan"
)

// tarEntry describes one member of a test archive.
type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func regular(name, body string) tarEntry {
	return tarEntry{name: name, body: body, typ: tar.TypeReg, mode: 0o644}
}
func dirEntry(name string) tarEntry { return tarEntry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, to string) tarEntry {
	return tarEntry{name: name, link: to, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlink(name, to string) tarEntry {
	return tarEntry{name: name, link: to, typ: tar.TypeLink, mode: 0o644}
}

func makeTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0)}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			io.WriteString(tw, e.body)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func zstded(t *testing.T, b []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

func makeZip(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		switch e.typ {
		case tar.TypeDir:
			h.SetMode(fs.ModeDir | 0o755)
		case tar.TypeSymlink:
			h.SetMode(fs.ModeSymlink | 0o777)
			e.body = e.link
		default:
			h.SetMode(fs.FileMode(e.mode))
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, e.body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// archiveRes builds an archive resource whose content travels inline.
func archiveRes(t *testing.T, dest string, data []byte, extra plan.Params) Resource {
	t.Helper()
	h := plan.Hash(data)
	p := plan.Params{"sha256": h}
	for k, v := range extra {
		p[k] = v
	}
	return build(t, "archive", dest, p, map[string][]byte{h: data})
}

// tree lists every path under root with its type and, for files, content.
func tree(t *testing.T, root string) string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			out = append(out, rel+" -> "+l)
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			b, _ := os.ReadFile(p)
			if filepath.Base(rel) == ArchiveRecord {
				b = nil // its content is tested on its own
			}
			out = append(out, rel+"="+strings.TrimSuffix(string(b), "\n"))
		}
		return nil
	})
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func TestArchiveFormats(t *testing.T) {
	entries := []tarEntry{dirEntry("app/"), dirEntry("app/bin/"), regular("app/bin/run", "#!/bin/sh\n"), regular("app/README", "hi\n"), symlink("app/current", "bin/run"), hardlink("app/bin/run2", "app/bin/run")}
	entries[2].mode = 0o755
	tarball := makeTar(t, entries...)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"tar", tarball},
		{"tar.gz", gzipped(t, tarball)},
		{"tar.zst", zstded(t, tarball)},
		{"zip", makeZip(t, entries[:5]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "opt")
			r := archiveRes(t, dest, tc.data, plan.Params{"strip_components": 1})
			env := testEnv(t)
			if c := mustCheck(t, r, env); !c.Changed || c.Summary != "unpack "+plan.Hash(tc.data)[:12]+" into new "+dest {
				t.Fatalf("check: %+v", c)
			}
			applyIdempotent(t, r, env)
			want := "./\n" + ArchiveRecord + "=\nREADME=hi\nbin/\nbin/run2=#!/bin/sh\nbin/run=#!/bin/sh\ncurrent -> bin/run"
			if tc.name == "zip" {
				want = strings.Replace(want, "bin/run2=#!/bin/sh\n", "", 1)
			}
			got := tree(t, dest)
			if got != want {
				t.Errorf("tree:\n%s\nwant:\n%s", got, want)
			}
			if fi, _ := os.Stat(filepath.Join(dest, "bin/run")); fi.Mode().Perm() != 0o755 {
				t.Errorf("bin/run mode %v", fi.Mode())
			}
			if tc.name == "tar" {
				a, _ := os.Stat(filepath.Join(dest, "bin/run"))
				b, _ := os.Stat(filepath.Join(dest, "bin/run2"))
				if !os.SameFile(a, b) {
					t.Error("the hard link is a copy")
				}
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".herd-*")); len(left) > 0 {
				t.Errorf("temp files left: %v", left)
			}
		})
	}
}

// TestArchiveDriftAndUpdate: a second run reads only metadata; an edited,
// removed or added entry, or a new archive, makes it unpack again.
func TestArchiveDriftAndUpdate(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "app")
	v1 := makeTar(t, regular("a.conf", "one\n"), dirEntry("lib/"), regular("lib/x", "x\n"))
	env := testEnv(t)
	applyIdempotent(t, archiveRes(t, dest, v1, nil), env)

	for _, tc := range []struct {
		name, want string
		drift      func()
	}{
		{"edited", "changed a.conf", func() { writeFile(t, filepath.Join(dest, "a.conf"), "tampered\n", 0o644) }},
		{"removed", "missing lib/x", func() { os.Remove(filepath.Join(dest, "lib/x")) }},
		{"added", "extra new", func() { writeFile(t, filepath.Join(dest, "new"), "", 0o644) }},
		{"chmod", "changed lib", func() { os.Chmod(filepath.Join(dest, "lib"), 0o700) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.drift()
			r := archiveRes(t, dest, v1, nil)
			c := mustCheck(t, r, env)
			if !c.Changed || !strings.Contains(c.Summary, "1 entry changed since unpacked") || !strings.Contains(c.Diff, tc.want) {
				t.Fatalf("check after drift: %+v", c)
			}
			applyIdempotent(t, r, env)
			if got := tree(t, dest); !strings.Contains(got, "a.conf=one") || !strings.Contains(got, "lib/x=x") || strings.Contains(got, "new=") {
				t.Errorf("not repaired:\n%s", got)
			}
		})
	}

	v2 := makeTar(t, regular("a.conf", "two\n"))
	r := archiveRes(t, dest, v2, nil)
	if c := mustCheck(t, r, env); c.Summary != "archive "+plan.Hash(v1)[:12]+"→"+plan.Hash(v2)[:12] {
		t.Errorf("new archive: %+v", c)
	}
	applyIdempotent(t, r, env)
	if got := tree(t, dest); strings.Contains(got, "lib") || !strings.Contains(got, "a.conf=two") {
		t.Errorf("v2 tree:\n%s", got)
	}
}

// TestArchiveSwap: the new tree replaces dest in one step, with
// RENAME_EXCHANGE and with the fallback, and a directory herd did not
// unpack is not replaced without force.
func TestArchiveSwap(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		if fallback {
			saved := archiveExchange
			archiveExchange = func(a, b string) error { return syscall.EINVAL }
			t.Cleanup(func() { archiveExchange = saved })
		}
		base := t.TempDir()
		dest := filepath.Join(base, "app")
		os.Mkdir(dest, 0o755)
		writeFile(t, filepath.Join(dest, "precious"), "x", 0o644)
		data := makeTar(t, regular("f", "new\n"))
		r := archiveRes(t, dest, data, nil)
		if _, err := r.Check(context.Background(), testEnv(t)); err == nil || !strings.Contains(err.Error(), "was not unpacked by herd; empty it or give force=True") {
			t.Fatalf("unmanaged dest: %v", err)
		}
		r = archiveRes(t, dest, data, plan.Params{"force": true})
		held, _ := os.Open(dest) // a reader inside the old tree keeps it
		applyIdempotent(t, r, testEnv(t))
		names, _ := held.Readdirnames(-1)
		held.Close()
		if len(names) != 0 && !(len(names) == 1 && names[0] == "precious") {
			t.Errorf("old tree seen through an open handle: %v", names)
		}
		if got := tree(t, base); !strings.Contains(got, "app/f=new") || strings.Contains(got, "precious") || strings.Contains(got, ".herd-unpack") || strings.Contains(got, ".herd-partial") {
			t.Errorf("fallback=%v: after the swap:\n%s", fallback, got)
		}
	}
}

// TestArchiveAttacks unpacks hostile archives: each is refused with one
// line naming the entry, and nothing is written outside dest (nor is dest
// changed: the half-unpacked temp tree is removed).
func TestArchiveAttacks(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	os.Mkdir(outside, 0o755)
	writeFile(t, filepath.Join(outside, "secret"), "s", 0o600)
	parent := filepath.Join(base, "a", "b")
	os.MkdirAll(parent, 0o755)
	dest := filepath.Join(parent, "dest")

	// A first good unpack, so refusals must also leave dest as it was.
	env := testEnv(t)
	applyIdempotent(t, archiveRes(t, dest, makeTar(t, regular("keep", "k")), nil), env)
	before := tree(t, base)

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"dotdot", makeTar(t, regular("ok", "1"), regular("../../../outside/evil", "x")), `entry "../../../outside/evil": ".." in the path would leave dest`},
		{"dotdot inside", makeTar(t, regular("a/../../evil", "x")), `entry "a/../../evil": ".." in the path`},
		{"absolute", makeTar(t, regular(filepath.Join(outside, "evil"), "x")), `entry "` + filepath.Join(outside, "evil") + `": absolute path`},
		{"absolute symlink then file", makeTar(t, symlink("l", outside), regular("l/evil", "x")), `entry "l" is a symlink to "` + outside + `", outside dest`},
		{"relative symlink out", makeTar(t, symlink("l", "../../../outside"), regular("l/evil", "x")), `entry "l" is a symlink to "../../../outside", outside dest`},
		{"symlink chain out", makeTar(t, symlink("a", "."), symlink("b", "a/../.."), regular("b/evil", "x")), `entry "b" is a symlink to "a/../..", outside dest`},
		{"file through inside symlink", makeTar(t, dirEntry("sub/"), symlink("l", "sub"), regular("l/evil", "x")), `entry "l/evil" goes through the symlink "l"`},
		{"symlink then same-name file", makeTar(t, symlink("f", "sub"), regular("f", "x")), `entry "f" appears twice in the archive`},
		{"hardlink outside", makeTar(t, hardlink("h", "../../../outside/secret")), `entry "h": hard link to "../../../outside/secret", which is not a file inside dest`},
		{"hardlink absolute", makeTar(t, hardlink("h", filepath.Join(outside, "secret"))), `entry "h": hard link to "` + filepath.Join(outside, "secret") + `"`},
		{"hardlink to a symlink", makeTar(t, symlink("l", "x"), hardlink("h", "l")), `entry "h": hard link to "l", which is not a file unpacked before it`},
		{"device", makeTar(t, tarEntry{name: "null", typ: tar.TypeChar, mode: 0o666}), `entry "null" is a character device; only files, directories and links are unpacked`},
		{"zip dotdot", makeZip(t, regular("../../../outside/evil", "x")), `entry "../../../outside/evil": ".." in the path`},
		{"zip symlink out", makeZip(t, symlink("l", "../../../outside"), regular("l/evil", "x")), `entry "l" is a symlink to "../../../outside", outside dest`},
		{"gzip dotdot", gzipped(t, makeTar(t, regular("../evil", "x"))), `entry "../evil": ".." in the path`},
		{"not an archive", []byte("hello, not an archive at all"), "not a tar, tar.gz, tar.zst or zip archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := archiveRes(t, dest, tc.data, nil)
			_, err := r.Apply(context.Background(), env)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Apply: %v\nwant one line with %q", err, tc.want)
			}
			if after := tree(t, base); after != before {
				t.Errorf("the filesystem changed:\n%s\nwas:\n%s", after, before)
			}
		})
	}
}

// TestArchiveFetched: an archive that stays on the controller is fetched
// by hash; content that does not match the sha256 is refused before
// anything is unpacked.
func TestArchiveFetched(t *testing.T) {
	data := gzipped(t, makeTar(t, regular("f", "fetched\n")))
	h := plan.Hash(data)
	for _, tc := range []struct {
		name  string
		serve []byte
		want  string
	}{
		{"good", data, ""},
		{"wrong sha256", gzipped(t, makeTar(t, regular("evil", "x"))), "received content has sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dest := filepath.Join(base, "app")
			r := build(t, "archive", dest, plan.Params{"sha256": h, "size": len(data)}, nil)
			env := testEnv(t)
			env.Fetch = func(ctx context.Context, hash string, off int64, w io.Writer) error {
				if hash != h {
					return errors.New("unknown hash")
				}
				_, err := w.Write(tc.serve[off:])
				return err
			}
			_, err := r.Apply(context.Background(), env)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := tree(t, base); !strings.Contains(got, "app/f=fetched") || strings.Contains(got, ".herd-unpack") || strings.Contains(got, ".herd-partial") {
					t.Errorf("tree:\n%s", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply: %v", err)
			}
			if got := tree(t, base); got != "." && got != "./" {
				t.Errorf("something was written:\n%s", got)
			}
		})
	}
}

func TestArchiveParams(t *testing.T) {
	for _, tc := range []struct {
		p    plan.Params
		want string
	}{
		{plan.Params{"sha256": "abc", "size": 1}, "is not 64 hex digits"},
		{plan.Params{"sha256": strings.Repeat("a", 64)}, "neither in the plan nor fetchable"},
		{plan.Params{"sha256": strings.Repeat("a", 64), "size": 1, "strip_components": -1}, "strip_components"},
		{plan.Params{"size": 1}, `sha256 "" is not 64 hex digits`},
	} {
		_, err := New(plan.Resource{Kind: "archive", Name: "/opt/x", Params: tc.p}, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.p, err, tc.want)
		}
	}
}

// TestArchiveOwner: owner= gives every unpacked entry to that user, and a
// changed owner= unpacks again.
func TestArchiveOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dest := filepath.Join(t.TempDir(), "app")
	data := makeTar(t, dirEntry("d/"), regular("d/f", "x"), symlink("l", "d/f"))
	env := testEnv(t)
	applyIdempotent(t, archiveRes(t, dest, data, nil), env)
	r := archiveRes(t, dest, data, plan.Params{"owner": "nobody"})
	if c := mustCheck(t, r, env); c.Summary != "unpack "+plan.Hash(data)[:12]+" again: strip=0 owner= group=→strip=0 owner=nobody group=" {
		t.Errorf("owner change: %q", c.Summary)
	}
	applyIdempotent(t, r, env)
	nobody, _ := lookupUID("nobody")
	for _, rel := range []string{".", "d", "d/f", "l"} {
		fi, err := os.Lstat(filepath.Join(dest, rel))
		if err != nil || int(fi.Sys().(*syscall.Stat_t).Uid) != nobody {
			t.Errorf("%s: not owned by nobody (%v)", rel, err)
		}
	}
}
