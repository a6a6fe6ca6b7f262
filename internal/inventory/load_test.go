package inventory

import "context"

// Load and LoadContext are the shorthands this package's tests read best
// with; callers use LoadWith or LoadSources.
func Load(path string) (*Inventory, error) { return LoadWith(path, Options{}) }

func LoadContext(ctx context.Context, path string) (*Inventory, error) {
	return LoadSources(ctx, []string{path}, Options{})
}
