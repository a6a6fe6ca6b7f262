package policy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/herd-project/herd/internal/fileserver"
	"github.com/herd-project/herd/internal/plan"
)

// webFiles serves name → content on a loopback server and counts requests.
func webFiles(t *testing.T, files map[string][]byte) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, ok := files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestDownloadOnTheController: the controller fetches a URL once, checks
// its sha256, caches it, and the plan carries the content (inline, or by
// hash served from the cache); a wrong sha256 fails at the call site with
// nothing cached.
func TestDownloadOnTheController(t *testing.T) {
	small := []byte("tool v1\n")
	big := bytes.Repeat([]byte("x"), InlineLimit+1)
	srv, hits := webFiles(t, map[string][]byte{"tool": small, "big.tar": big})
	cache := t.TempDir()
	policy := func(sum string) string {
		return "-- site.star --\n" +
			"def web(host):\n" +
			"    download(\"/usr/local/bin/tool\", url = \"" + srv.URL + "/tool\", sha256 = \"" + sum + "\", mode = 0o755)\n" +
			"    archive(\"/opt/big\", url = \"" + srv.URL + "/big.tar\", sha256 = \"" + plan.Hash(big) + "\")\n" +
			"role(\"web\", main = web)\n"
	}

	p := mustLoad(t, policy(plan.Hash(small)), LoadOptions{CacheDir: cache})
	for round := range 2 {
		pl, sources, err := p.PlanWithSources(p.Roles[0], web1)
		if err != nil {
			t.Fatal(err)
		}
		dl, ar := pl.Resources[0], pl.Resources[1]
		if dl.ID != "download:/usr/local/bin/tool" || string(pl.Blobs[plan.Hash(small)]) != string(small) || dl.Params["url"] != srv.URL+"/tool" {
			t.Errorf("download: %+v", dl)
		}
		bh := plan.Hash(big)
		if ar.Params["sha256"] != bh || ar.Params["size"] != int64(len(big)) || pl.Files[bh].Size != int64(len(big)) {
			t.Errorf("archive params %v, files %v", ar.Params, pl.Files)
		}
		src := sources[bh]
		if !src.Cached || src.Path != filepath.Join(cache, "sha256", bh) {
			t.Errorf("source %+v", src)
		}
		// The cache lies outside every fileserving root, yet is served.
		rules, _ := fileserver.NewRules(t.TempDir(), nil, nil, nil)
		var got bytes.Buffer
		if err := fileserver.NewIndex(sources, rules).Fetch(t.Context(), bh, 0, &got); err != nil || !bytes.Equal(got.Bytes(), big) {
			t.Errorf("serving the cached archive: %v (%d bytes)", err, got.Len())
		}
		if hits.Load() != 2 {
			t.Errorf("round %d: %d requests, want each URL fetched once", round, hits.Load())
		}
	}

	// A fresh controller process finds the content in the cache.
	srv.Close()
	p = mustLoad(t, policy(plan.Hash(small)), LoadOptions{CacheDir: cache})
	if _, err := p.Plan(p.Roles[0], web1); err != nil {
		t.Errorf("from the cache with the server gone: %v", err)
	}

	// The server now lies: a sha256 that does not match is refused.
	srv2, _ := webFiles(t, map[string][]byte{"tool": []byte("tool v1, trojaned\n")})
	wrong := strings.ReplaceAll(policy(plan.Hash(small)), srv.URL, srv2.URL)
	wrong = strings.Replace(wrong, plan.Hash(small), plan.Hash([]byte("something else")), 1)
	p = mustLoad(t, wrong, LoadOptions{CacheDir: cache})
	_, err := p.Plan(p.Roles[0], web1)
	if err == nil || !strings.HasPrefix(err.Error(), "site.star:2:13: download \"/usr/local/bin/tool\": url "+srv2.URL+"/tool: the downloaded content (18 bytes) has sha256 ") ||
		!strings.Contains(err.Error(), "nothing was sent to any host") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("wrong sha256: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(cache, "sha256"))
	if len(entries) != 2 {
		t.Errorf("cache holds %d entries after a refused download, want the 2 good ones", len(entries))
	}
}

func TestDownloadArgumentErrors(t *testing.T) {
	for _, tc := range []struct{ call, want string }{
		{`download("/x", url = "ftp://h/x", sha256 = "` + strings.Repeat("a", 64) + `")`, `want an http:// or https:// URL`},
		{`download("/x", url = "http://127.0.0.1:1/x")`, `url= needs sha256=`},
		{`download("/x", url = "http://127.0.0.1:1/x", sha256 = "abc")`, `sha256 "abc" is not 64 hex digits`},
		{`download("/x", url = "http://127.0.0.1:1/x", sha256 = "` + strings.Repeat("a", 64) + `", size = 3)`, `size is computed`},
		{`archive("/x", url = "http://127.0.0.1:1/x", source = "f")`, `source= and url= are exclusive`},
		{`archive("/x")`, `give source= (a controller file) or url= with sha256=`},
		{`archive("/x", source = "f", sha256 = "` + strings.Repeat("a", 64) + `")`, `source f has sha256 ` + plan.Hash([]byte("f\n")) + `, not aaaa`},
		{`archive("/x", url = "http://127.0.0.1:1/x", sha256 = "` + strings.Repeat("a", 64) + `")`, `url http://127.0.0.1:1/x: `},
	} {
		p := mustLoad(t, "-- site.star --\ndef web(host):\n    "+tc.call+"\nrole(\"web\", main = web)\n-- f --\nf\n", LoadOptions{CacheDir: t.TempDir()})
		_, err := p.Plan(p.Roles[0], web1)
		if err == nil || !strings.HasPrefix(err.Error(), "site.star:2:") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.call, err, tc.want)
		}
	}
}
