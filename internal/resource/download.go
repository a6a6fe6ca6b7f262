package resource

import (
	"errors"
	"fmt"
	"strings"

	"github.com/herd-project/herd/internal/plan"
)

func init() {
	Register(&Schema{
		Kind: "download",
		Doc: "A file downloaded from a URL, pinned by its sha256: download(dest, url=..., sha256=...). The " +
			"controller fetches the URL (http or https), refuses content whose sha256 differs before anything " +
			"is sent, keeps it under ~/.herd/cache/sha256/, and serves it to targets like file(source=...): " +
			"targets need no network access, and a target whose file already has that sha256 fetches nothing.",
		Params: []Param{
			{Name: "url", Type: String, Required: true, Doc: "http(s) URL, fetched by the controller"},
			{Name: "sha256", Type: String, Required: true, Doc: "the content's sha256 (hex); a mismatch fails the plan"},
			{Name: "mode", Type: Mode, Doc: "permission bits (default: keep, 0644 when created)"},
			{Name: "owner", Type: String, Doc: "owner user name or numeric uid (default: keep)"},
			{Name: "group", Type: String, Doc: "group name or numeric gid (default: keep)"},
			{Name: "size", Type: Int, Doc: "the content's size when it is fetched from the controller (set by the controller)"},
		},
		Factory: newDownload,
	})
}

// newDownload is a file resource whose content is the URL's: the
// controller already turned the URL into a blob or a servable hash.
func newDownload(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	fail := func(err error) (Resource, error) { return nil, fmt.Errorf("download %s: %w", name, err) }
	h, err := p.Str("sha256", "")
	if err != nil {
		return fail(err)
	}
	h = strings.ToLower(h)
	if !plan.IsHash(h) {
		return fail(fmt.Errorf("sha256 %q is not 64 hex digits", h))
	}
	if _, inline := blobs[h]; !inline && !p.Has("size") {
		return fail(errors.New("the content is neither in the plan nor fetchable from the controller"))
	}
	fp := plan.Params{"blob": h}
	for _, k := range []string{"mode", "owner", "group", "size"} {
		if v, ok := p[k]; ok {
			fp[k] = v
		}
	}
	if _, inline := blobs[h]; inline {
		delete(fp, "size")
	}
	r, err := newFile(name, fp, blobs)
	if err != nil {
		return nil, errors.New("download" + strings.TrimPrefix(err.Error(), "file"))
	}
	return r, nil
}
