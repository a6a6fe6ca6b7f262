package plan

import (
	"fmt"
	"regexp"
)

// Export is a value this host publishes to the controller's exchange when
// the plan has run: literal text, or the output of a resource of the plan
// (a command's stdout, a generated password) that only exists on the
// target. The agent resolves it after the run and returns it in its Done.
type Export struct {
	Name  string `json:"name"`
	Parts []Part `json:"parts"`
	Pos   string `json:"pos,omitempty"` // policy file:line:col of export()
}

// Literal returns the export's value when it needs nothing from the target.
func (e Export) Literal() (string, bool) {
	s := ""
	for _, p := range e.Parts {
		if p.IsRef() {
			return "", false
		}
		s += p.Lit
	}
	return s, true
}

// Shared is what a plan offers to and takes from the exchange, on the
// controller only (it never travels to the agent).
type Shared struct {
	// Reads is set when planning read the exchange (collect, host_facts,
	// collect_resources): the plan is made again before its role runs,
	// with what earlier roles of the run published.
	Reads bool
	// Resources are the resources this host exports for others.
	Resources []SharedResource
}

// SharedResource is a resource declared for other hosts to realize.
type SharedResource struct {
	Kind   string         `json:"kind"`
	Name   string         `json:"name"`
	Tag    string         `json:"tag,omitempty"`
	Params map[string]any `json:"params"`
}

var exportNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// ValidExportName says whether name can key an exchange entry.
func ValidExportName(name string) error {
	if !exportNameRE.MatchString(name) {
		return fmt.Errorf("export name %q: use letters, digits, '_', '.', '-' (at most 128)", name)
	}
	return nil
}

func (p *Plan) validateExports(ids map[string]bool) error {
	seen := map[string]bool{}
	for _, e := range p.Exports {
		if err := ValidExportName(e.Name); err != nil {
			return err
		}
		if seen[e.Name] {
			return fmt.Errorf("export %q twice", e.Name)
		}
		seen[e.Name] = true
		for _, part := range e.Parts {
			if part.IsRef() && !ids[part.From] {
				return fmt.Errorf("export %q refers to unknown resource %q", e.Name, part.From)
			}
		}
	}
	return nil
}
