package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/herd-project/herd/internal/graph"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/resource"
)

// prepared is what Run learns about a plan before running anything.
type prepared struct {
	index map[string]int // resource ID → position in plan.Resources
	graph *graph.Graph
	// noLog marks resources whose details must not leave the engine: no_log
	// ones and, transitively, those that receive a secret or no_log value.
	noLog []bool
}

// where names a resource for an error message: "site.star:3:1: file:/a".
func where(r plan.Resource) string {
	if r.Pos == "" {
		return r.ID
	}
	return r.Pos + ": " + r.ID
}

// prepare validates the plan and builds every resource once with bound
// values replaced by placeholders (resource.Check, as the policy does), so
// that a typo in the policy is reported before the first change is made
// rather than halfway through.
func prepare(p *plan.Plan) (*prepared, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("invalid plan: %w", err)
	}
	prep := &prepared{index: make(map[string]int, len(p.Resources)), noLog: make([]bool, len(p.Resources))}
	nodes := make([]string, len(p.Resources))
	for i, r := range p.Resources {
		prep.index[r.ID] = i
		nodes[i] = r.ID
	}

	secret := make([]bool, len(p.Resources))
	for i, r := range p.Resources {
		if err := checkBindings(p, prep.index, r); err != nil {
			return nil, err
		}
		inst, err := resource.Check(r, p.Blobs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where(r), err)
		}
		if inst == nil {
			return nil, fmt.Errorf("%s: kind %s built no resource", where(r), r.Kind)
		}
		if s, ok := inst.(resource.Secret); ok && s.SecretOutputs() {
			secret[i] = true
		}
	}

	var edges []graph.Edge
	for _, r := range p.Resources {
		for _, d := range r.Deps() {
			edges = append(edges, graph.Edge{From: d, To: r.ID})
		}
		// The notified resource runs after its notifier, so the refresh is
		// delivered in the same run.
		for _, n := range r.Notify {
			edges = append(edges, graph.Edge{From: r.ID, To: n})
		}
	}
	g, err := graph.New(nodes, edges)
	if err != nil {
		return nil, fmt.Errorf("invalid plan: %w", err)
	}
	order, err := g.Order()
	if err != nil {
		var ce *graph.CycleError
		if errors.As(err, &ce) {
			return nil, cycleError(p, prep, ce)
		}
		return nil, err
	}
	prep.graph = g

	// Senders finish before receivers, so one pass in topological order
	// carries no_log along chains of bindings.
	for _, id := range order {
		i := prep.index[id]
		r := p.Resources[i]
		prep.noLog[i] = r.Meta.NoLog
		for _, b := range r.Bind {
			for _, part := range b.Parts {
				if part.IsRef() {
					s := prep.index[part.From]
					if secret[s] || prep.noLog[s] {
						prep.noLog[i] = true
					}
				}
			}
		}
	}
	return prep, nil
}

// checkBindings rejects references to outputs the sender's kind never
// produces, which would otherwise only fail when the receiver runs.
func checkBindings(p *plan.Plan, index map[string]int, r plan.Resource) error {
	for _, b := range r.Bind {
		if b.Param == "" {
			return fmt.Errorf("%s: binding with no param name", where(r))
		}
		if b.Index != nil && b.Key != "" {
			return fmt.Errorf("%s: binding of %s has both an index and a key", where(r), b.Param)
		}
		for _, part := range b.Parts {
			if !part.IsRef() {
				continue
			}
			from := p.Resources[index[part.From]]
			s, ok := resource.Lookup(from.Kind)
			if !ok {
				continue // reported when the sender itself is built
			}
			if !slices.Contains(s.Outputs, part.Field) {
				sends := "sends nothing"
				if len(s.Outputs) > 0 {
					sends = "sends " + strings.Join(s.Outputs, ", ")
				}
				return fmt.Errorf("%s: %s: %s has no output %q (kind %s %s)",
					where(r), b.Place(), part.From, part.Field, from.Kind, sends)
			}
		}
	}
	return nil
}

// cycleError names the cycle and where each of its resources is declared,
// since the fix is in the policy.
func cycleError(p *plan.Plan, prep *prepared, ce *graph.CycleError) error {
	var at []string
	for _, id := range ce.Path[:len(ce.Path)-1] {
		r := p.Resources[prep.index[id]]
		if r.Pos != "" {
			at = append(at, id+" at "+r.Pos)
		}
	}
	if len(at) == 0 {
		return fmt.Errorf("invalid plan: %w", ce)
	}
	return fmt.Errorf("invalid plan: %w (%s)", ce, strings.Join(at, ", "))
}
