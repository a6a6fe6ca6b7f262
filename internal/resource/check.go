package resource

import "github.com/herd-project/herd/internal/plan"

// Check builds r as it will be once its bound values are known: every bound
// place holds its placeholder (plan.Binding.Placeholder) meanwhile. The
// policy calls it at the call site and the engine before it runs anything,
// so the two reject the same resources with the same words.
func Check(r plan.Resource, blobs map[string][]byte) (Resource, error) {
	placed, err := r.WithPlaceholders()
	if err != nil {
		return nil, err
	}
	return New(placed, blobs)
}
