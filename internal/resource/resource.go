// Package resource implements the kinds of resources herd manages, one file
// per kind, each with a Check/Apply contract: Check never changes the system,
// Apply is only called after Check said a change is needed and never in check
// mode. Kinds register a Schema so the policy layer can reject bad arguments
// at file:line before anything runs.
package resource

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/herd-project/herd/internal/plan"
)

// Env is what the engine lends a resource while it runs.
type Env struct {
	// StateDir is a private directory for herd's own state on this machine
	// (generated passwords, pending notifications). Created 0700 by the engine.
	StateDir string
	// Log receives human-readable messages (e.g. noop's message). Resources
	// must not log secrets; the engine suppresses Log for no_log resources.
	Log func(msg string)
	// Refreshed is true when this resource received a refresh in this run.
	Refreshed bool
	// BoundChanged says, per bound param, whether a resource it receives a
	// value from changed in this run (send/recv: the receiver sees the value
	// and whether it changed, e.g. a freshly generated password).
	BoundChanged map[string]bool
	// Fetch copies the controller's file with content hash h, from byte
	// offset on, into w; the caller verifies the hash. Nil when no
	// controller serves files (local runs): only inline blobs exist then.
	Fetch func(ctx context.Context, h string, offset int64, w io.Writer) error
}

// Change describes what Check found or Apply did.
type Change struct {
	Changed bool
	// Summary is a short description of the change, e.g. "content, mode 0644→0600".
	Summary string
	// Diff is a unified diff of file content when relevant (empty otherwise).
	Diff string
	// Stdout and Stderr are captured output of commands, kept separate.
	Stdout, Stderr string
	// Run, from Check, asks for Apply even when Changed is false, and says
	// that Apply's Changed is its verdict (the engine otherwise counts
	// every Apply as a change): exec with changes=False, changed_codes or
	// ok_codes runs, then decides from the exit code.
	Run bool
}

// Resource is one managed thing.
type Resource interface {
	// Check inspects the system and reports whether (and how) it differs from
	// the wanted state. It must not change anything.
	Check(ctx context.Context, env *Env) (Change, error)
	// Apply makes the change Check reported. It returns what it did.
	Apply(ctx context.Context, env *Env) (Change, error)
}

// Refresher is implemented by resources that act on a refresh (notify):
// exec re-runs, service reloads, noop logs.
type Refresher interface {
	Refresh(ctx context.Context, env *Env) (Change, error)
}

// Sender is implemented by resources whose outputs other resources can bind
// to (send/recv). Outputs is called after the resource ran (checked or
// applied); a missing field is an error at bind time.
type Sender interface {
	Outputs() map[string]string
}

// Secret marks resources whose outputs are secrets (password): the engine
// never puts their values in events, logs or diffs of receivers.
type Secret interface {
	SecretOutputs() bool
}

// ParamType is the type a param must have.
type ParamType int

const (
	String ParamType = iota
	Bool
	Int
	StringList
	StringMap
	Mode    // an int or an octal string such as "0644"
	IntList // a list of ints, e.g. exit codes
)

func (t ParamType) String() string {
	return [...]string{"string", "bool", "int", "list of strings", "dict of strings", "mode (int or octal string)", "list of ints"}[t]
}

// Param describes one accepted argument.
type Param struct {
	Name     string
	Type     ParamType
	Required bool
	Doc      string
}

// Schema describes a kind: its params, and which outputs it sends.
type Schema struct {
	Kind    string
	Params  []Param
	Outputs []string // fields other resources may reference, e.g. "value"
	Doc     string
	// Factory builds a Resource from validated params. It must not touch the
	// system; it may reject combinations of params.
	Factory func(name string, p plan.Params, blobs map[string][]byte) (Resource, error)
}

// Param returns the named param spec.
func (s *Schema) Param(name string) (Param, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

var registry = map[string]*Schema{}

// Register adds a kind. Called from init functions in this package.
func Register(s *Schema) {
	if _, dup := registry[s.Kind]; dup {
		panic("resource: duplicate kind " + s.Kind)
	}
	registry[s.Kind] = s
}

// Lookup returns the schema of a kind.
func Lookup(kind string) (*Schema, bool) {
	s, ok := registry[kind]
	return s, ok
}

// Kinds lists registered kinds, sorted.
func Kinds() []string {
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// New validates r's params against its kind's schema and builds it.
func New(r plan.Resource, blobs map[string][]byte) (Resource, error) {
	s, ok := registry[r.Kind]
	if !ok {
		return nil, fmt.Errorf("unknown resource kind %q", r.Kind)
	}
	for k := range r.Params {
		if _, ok := s.Param(k); !ok {
			return nil, invalid(r, fmt.Errorf("%s: unknown argument %q", r.Kind, k))
		}
	}
	for _, p := range s.Params {
		if p.Required && !r.Params.Has(p.Name) {
			return nil, invalid(r, fmt.Errorf("%s: missing required argument %q", r.Kind, p.Name))
		}
	}
	res, err := s.Factory(r.Name, r.Params, blobs)
	if err != nil {
		return nil, invalid(r, err)
	}
	return res, nil
}

// InvalidError is a resource its kind refused to build. Its message is the
// kind's own ("line /etc/x: regexp: ..."); Problem is the same without the
// "kind name: " or "kind: " the kinds start with, for callers that name the
// resource already (the policy's file:line messages).
type InvalidError struct {
	Kind, Name string
	Problem    string
	err        error
}

func (e *InvalidError) Error() string { return e.err.Error() }
func (e *InvalidError) Unwrap() error { return e.err }

// invalid wraps a kind's refusal; the prefix convention of the factories
// is known here, beside them, and nowhere else.
func invalid(r plan.Resource, err error) *InvalidError {
	msg := err.Error()
	for _, prefix := range []string{r.Kind + ": ", r.Kind + " " + r.Name + ": "} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	return &InvalidError{Kind: r.Kind, Name: r.Name, Problem: msg, err: err}
}
