package push_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/policy"
)

// tarOf builds a tar of name → content ("dir/" names are directories,
// content "->x" a symlink to x).
func tarOf(t *testing.T, names []string, content map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := &tar.Header{Name: n, Mode: 0o644, ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg, Size: int64(len(content[n]))}
		switch c := content[n]; {
		case strings.HasSuffix(n, "/"):
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case strings.HasPrefix(c, "->"):
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, c[2:], 0
		case strings.HasPrefix(c, "#!"):
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(content[n]))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// TestKindsArchiveAndDownload: archive(source=) inline, archive(url=) too
// big to travel in the plan (fetched by hash from the controller's cache
// over the agent's connection), and download(): check mode predicts the
// first run, the first run unpacks, the second changes nothing, a drifted
// file is repaired, and each URL is fetched once by the controller.
func TestKindsArchiveAndDownload(t *testing.T) {
	l := flatLab(t)
	app := tarOf(t, []string{"app-1.0/", "app-1.0/bin/", "app-1.0/bin/run", "app-1.0/etc/app.conf", "app-1.0/current"},
		map[string]string{"app-1.0/bin/run": "#!/bin/sh\necho app\n", "app-1.0/etc/app.conf": "port = 80\n", "app-1.0/current": "->bin/run"})
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(app)
	zw.Close()

	noise := make([]byte, 300<<10) // incompressible: the .tar.zst stays over the inline limit
	rand.Read(noise)
	zenc, _ := zstd.NewWriter(nil)
	big := zenc.EncodeAll(tarOf(t, []string{"data.bin"}, map[string]string{"data.bin": string(noise)}), nil)
	zenc.Close()
	tool := []byte("#!/bin/sh\necho tool\n")

	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/big.tar.zst":
			w.Write(big)
		case "/tool":
			w.Write(tool)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"kinds": kindHosts}),
		"app.tar.gz":     gz.String(),
		"site.star": "inv = inventory(\"inventory.toml\")\n" + `
def main(host):
    archive("/opt/herd-app", source = "app.tar.gz", strip_components = 1)
    archive("/opt/herd-big", url = "` + srv.URL + `/big.tar.zst", sha256 = "` + plan.Hash(big) + `")
    download("/usr/local/bin/herd-tool", url = "` + srv.URL + `/tool", sha256 = "` + plan.Hash(tool) + `", mode = 0o755)
role("archive", hosts = inv.hosts, main = main)
`,
	})
	cache := t.TempDir()
	ids := []string{"archive:/opt/herd-app", "archive:/opt/herd-big", "download:/usr/local/bin/herd-tool"}
	pushArchive := func(check bool) (*recorder, event.Counts) {
		t.Helper()
		pol, err := policy.Load(filepath.Join(dir, "site.star"), policy.LoadOptions{CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		o := options(t, l, rec)
		o.Check = check
		res := run(t, pol, o)
		if failed, unreachable := res.Failed(); failed || unreachable {
			t.Fatalf("run failed:\n%s", rec.dump())
		}
		return rec, total(res)
	}
	for _, name := range kindHosts {
		hostExec(t, l.Host(name), "rm", "-rf", "/opt/herd-app", "/opt/herd-big", "/usr/local/bin/herd-tool")
	}

	recCheck, c := pushArchive(true)
	if c.Changed != 3*len(kindHosts) {
		t.Errorf("check: %+v\n%s", c, recCheck.dump())
	}
	for _, name := range kindHosts {
		if out := hostExec(t, l.Host(name), "sh", "-c", "ls -d /opt/herd-* /usr/local/bin/herd-tool 2>/dev/null; true"); out != "" {
			t.Errorf("%s: check mode created %s", name, out)
		}
	}

	rec, c := pushArchive(false)
	if c.Changed != 3*len(kindHosts) {
		t.Errorf("first run: %+v\n%s", c, rec.dump())
	}
	for _, name := range kindHosts {
		h := l.Host(name)
		for _, id := range ids {
			typ, msg := msgOf(rec, name, id)
			if _, cmsg := msgOf(recCheck, name, id); typ != event.Changed || cmsg != msg {
				t.Errorf("%s: %s: check mode said %q, the run %s %q", name, id, cmsg, typ, msg)
			}
		}
		if typ, msg := msgOf(rec, name, "archive:/opt/herd-app"); msg != "unpack "+plan.Hash(gz.Bytes())[:12]+" into new /opt/herd-app" {
			t.Errorf("%s: %s %q", name, typ, msg)
		}
		got := hostExec(t, h, "sh", "-c", "cd /opt/herd-app && find . | sort && readlink current && stat -c '%a %n' bin/run etc/app.conf && ./current && /usr/local/bin/herd-tool && stat -c %s /opt/herd-big/data.bin")
		want := ".\n./.herd-archive\n./bin\n./bin/run\n./current\n./etc\n./etc/app.conf\nbin/run\n755 bin/run\n644 etc/app.conf\napp\ntool\n307200"
		if got != want {
			t.Errorf("%s: unpacked:\n%s\nwant:\n%s", name, got, want)
		}
		if b, _ := h.ReadFile("/opt/herd-big/data.bin"); !bytes.Equal(b, noise) {
			t.Errorf("%s: data.bin differs", name)
		}
		if out := hostExec(t, h, "sh", "-c", "ls -a /opt /usr/local/bin | grep herd-unpack; true"); out != "" {
			t.Errorf("%s: temp files left: %s", name, out)
		}
	}

	rec, c = pushArchive(false)
	if c.Changed != 0 || c.OK != 3*len(kindHosts) {
		t.Errorf("second run: %+v, want changed=0\n%s", c, rec.dump())
	}

	// A file edited on a host is found by its metadata and put back.
	hostExec(t, l.Host("host9"), "sh", "-c", "echo 'port = 81' >/opt/herd-app/etc/app.conf")
	rec, c = pushArchive(false)
	if typ, msg := msgOf(rec, "host9", "archive:/opt/herd-app"); typ != event.Changed || msg != "unpack "+plan.Hash(gz.Bytes())[:12]+" again: 1 entry changed since unpacked" || c.Changed != 1 {
		t.Errorf("drift: %s %q (%+v)", typ, msg, c)
	}
	if got := readHostFile(t, l.Host("host9"), "/opt/herd-app/etc/app.conf"); got != "port = 80\n" {
		t.Errorf("drift not repaired: %q", got)
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("the controller made %d requests, want each URL fetched once", n)
	}
}

// TestKindsArchiveHostileRefused sends a tar whose symlink points at /etc
// followed by a file through it: the host fails that resource with one
// line naming the entry, and nothing is written, neither in /etc nor
// beside dest.
func TestKindsArchiveHostileRefused(t *testing.T) {
	l := flatLab(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc", Mode: 0o777})
	tw.WriteHeader(&tar.Header{Name: "l/herd-evil", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5})
	tw.Write([]byte("evil\n"))
	tw.Close()
	dir := project(t, map[string]string{
		"inventory.toml": tomlInventory(l, map[string][]string{"kinds": kindHosts}),
		"evil.tar":       buf.String(),
		"site.star": "inv = inventory(\"inventory.toml\")\n" + `
def main(host):
    archive("/opt/herd-evil", source = "evil.tar")
role("archive", hosts = inv.hosts, main = main)
`,
	})
	rec := &recorder{}
	res := run(t, load(t, dir), options(t, l, rec))
	if failed, _ := res.Failed(); !failed {
		t.Fatalf("a hostile archive was applied:\n%s", rec.dump())
	}
	for _, name := range kindHosts {
		typ, msg := msgOf(rec, name, "archive:/opt/herd-evil")
		if typ != event.Failed || !strings.Contains(msg, `entry "l" is a symlink to "/etc", outside dest`) || strings.Contains(msg, "\n") {
			t.Errorf("%s: %s %q", name, typ, msg)
		}
		if out := hostExec(t, l.Host(name), "sh", "-c", "ls -d /etc/herd-evil /opt/herd-evil /opt/.herd-* 2>/dev/null; true"); out != "" {
			t.Errorf("%s: written: %s", name, out)
		}
	}
}
