package resource

import (
	"context"

	"github.com/herd-project/herd/internal/plan"
)

func init() {
	Register(&Schema{
		Kind: "noop",
		Doc:  "Does nothing; on refresh it logs its message. Useful as a notification hub.",
		Params: []Param{
			{Name: "message", Type: String, Doc: "logged on refresh (default \"refreshed <name>\")"},
		},
		Factory: newNoop,
	})
}

type noop struct{ name, message string }

func newNoop(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	msg, err := p.Str("message", "")
	if err != nil {
		return nil, err
	}
	if msg == "" {
		msg = "refreshed " + name
	}
	return &noop{name: name, message: msg}, nil
}

func (n *noop) Check(ctx context.Context, env *Env) (Change, error) { return Change{}, nil }
func (n *noop) Apply(ctx context.Context, env *Env) (Change, error) { return Change{}, nil }

func (n *noop) Refresh(ctx context.Context, env *Env) (Change, error) {
	if env.Log != nil {
		env.Log(n.message)
	}
	return Change{Changed: true, Summary: n.message}, nil
}
