package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/herd-project/herd/internal/plan"
)

// Downloads (download(), archive(url=)) are fetched by the controller, not
// the targets: the sha256 is checked before anything is sent, targets need
// no network access nor an HTTP client in the agent, and a URL is fetched
// once per controller however many hosts want it. The verified content is
// kept in the cache by its sha256 and served like any controller file.

// downloadTimeout bounds one URL fetch as a whole; the connection set-up
// and the wait for the response headers are bounded more tightly.
var downloadTimeout = 30 * time.Minute

// downloads deduplicates concurrent fetches of one content while hosts are
// planned in parallel.
type downloads struct {
	mu       sync.Mutex
	inflight map[string]*downloadCall
}

type downloadCall struct {
	done chan struct{}
	path string
	size int64
	err  error
}

// DefaultCacheDir is ~/.herd/cache.
func DefaultCacheDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "herd-cache")
	}
	return filepath.Join(home, ".herd", "cache")
}

// checkDownloadArgs validates url and sha256 before anything is fetched.
func checkDownloadArgs(rawURL, sum string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("url %q: want an http:// or https:// URL", rawURL)
	}
	if sum == "" {
		return "", fmt.Errorf("url= needs sha256= (the content's sha256, as published beside the download)")
	}
	sum = strings.ToLower(strings.TrimPrefix(sum, "sha256:"))
	if !plan.IsHash(sum) {
		return "", fmt.Errorf("sha256 %q is not 64 hex digits", sum)
	}
	return sum, nil
}

// urlContent makes the content of rawURL, which must have sha256 sum, part
// of b's plan: inline when small, else servable from the cache by hash.
// It reports whether the content travels by reference (and its size).
func (p *Policy) urlContent(b *builder, rawURL, sum string) (size int64, remote bool, err error) {
	path, size, err := p.download(rawURL, sum)
	if err != nil {
		return 0, false, err
	}
	if size < InlineLimit {
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, false, err
		}
		if plan.Hash(data) != sum {
			os.Remove(path)
			return 0, false, fmt.Errorf("cached %s no longer matches its sha256 (removed); run again", path)
		}
		b.plan.AddBlob(data)
		return size, false, nil
	}
	b.plan.AddFile(sum, size)
	b.sources.AddCached(sum, path, size)
	return size, true, nil
}

// download returns the cached file holding content sum, fetching rawURL
// into the cache first when needed.
func (p *Policy) download(rawURL, sum string) (string, int64, error) {
	path := filepath.Join(p.cacheDir, "sha256", sum)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		if h, n, err := p.hashFile(path); err == nil && h == sum {
			return path, n, nil
		}
		os.Remove(path) // damaged: fetch again
	}
	p.dl.mu.Lock()
	if p.dl.inflight == nil {
		p.dl.inflight = map[string]*downloadCall{}
	}
	c, busy := p.dl.inflight[sum]
	if !busy {
		c = &downloadCall{done: make(chan struct{}), path: path}
		p.dl.inflight[sum] = c
	}
	p.dl.mu.Unlock()
	if !busy {
		c.size, c.err = p.fetchURL(rawURL, sum, path)
		close(c.done)
		p.dl.mu.Lock()
		delete(p.dl.inflight, sum)
		p.dl.mu.Unlock()
	}
	select {
	case <-c.done:
	case <-p.stop:
		return "", 0, errors.New("interrupted")
	}
	return c.path, c.size, c.err
}

// fetchURL streams rawURL into a temp file in the cache, hashing as it
// goes, and renames it into place only when the sha256 matches.
func (p *Policy) fetchURL(rawURL, sum, path string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), downloadTimeout)
	defer cancel()
	if p.stop != nil {
		go func() {
			select {
			case <-p.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := downloadClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("url %s: %v", rawURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("url %s: %s", rawURL, resp.Status)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".download-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := plan.NewHasher()
	n, err := io.Copy(io.MultiWriter(tmp, h), resp.Body)
	if err != nil {
		return 0, fmt.Errorf("url %s: %v", rawURL, unwrapURLError(err))
	}
	if got := h.Sum(); got != sum {
		return 0, fmt.Errorf("url %s: the downloaded content (%d bytes) has sha256 %s, not %s as sha256= says; nothing was sent to any host", rawURL, n, got, sum)
	}
	if err := tmp.Sync(); err != nil {
		return 0, err
	}
	if err := tmp.Close(); err != nil {
		return 0, err
	}
	return n, os.Rename(tmp.Name(), path)
}

var downloadClient = &http.Client{Transport: func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 30 * time.Second
	t.ResponseHeaderTimeout = 60 * time.Second
	return t
}()}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
