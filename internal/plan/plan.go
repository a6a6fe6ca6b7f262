// Package plan holds the data that crosses from the controller to the agent:
// a host's resource graph as plain values. It contains no code and nothing
// that must be trusted: the agent re-validates every resource it builds.
package plan

import (
	"fmt"
	"sort"
	"time"
)

// Version is bumped whenever the meaning of a field changes, so an old agent
// refuses a new plan instead of misreading it.
const Version = 1

// Plan is everything one host needs to run one role, sent in one message so
// the agent needs no round trip per resource.
type Plan struct {
	Version   int        `json:"version"`
	Role      string     `json:"role"`
	Host      string     `json:"host"`
	Resources []Resource `json:"resources"`
	// Blobs holds file contents by sha256 hex. Contents live here rather than
	// in Params so that binary data survives JSON and identical files are
	// carried once.
	Blobs map[string][]byte `json:"blobs,omitempty"`
	// Files lists, by sha256 hex, contents too large to travel inline: the
	// agent compares them with what is on disk and fetches them from the
	// controller only when they differ.
	Files map[string]FileRef `json:"files,omitempty"`
}

// FileRef describes a file the agent fetches by hash.
type FileRef struct {
	Size int64 `json:"size"`
}

// AddFile records a file the agent fetches by hash instead of receiving it
// inline. Where the controller finds it is not the agent's business: the
// planner keeps that in its fileserver.Sources.
func (p *Plan) AddFile(hash string, size int64) {
	if p.Files == nil {
		p.Files = map[string]FileRef{}
	}
	p.Files[hash] = FileRef{Size: size}
}

// Resource is one declared resource. ID is "kind:name" and unique in a plan.
type Resource struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Pos    string `json:"pos,omitempty"` // policy file:line:col, for error messages
	Params Params `json:"params,omitempty"`
	// After lists resources that must finish (ok or changed) before this one.
	After []string `json:"after,omitempty"`
	// Notify lists resources that receive a refresh when this one changed.
	Notify []string `json:"notify,omitempty"`
	// Bind fills params from other resources' outputs at run time (send/recv).
	// Every binding source is also an implicit After edge.
	Bind []Binding `json:"bind,omitempty"`
	Meta Meta      `json:"meta,omitempty"`
}

// Binding sets Params[Param] (or its element Index, or its value under Key)
// to the concatenation of Parts when the resource runs.
type Binding struct {
	Param string `json:"param"`
	Index *int   `json:"index,omitempty"` // element of a list param (argv)
	Key   string `json:"key,omitempty"`   // value of a map param (env)
	Parts []Part `json:"parts"`
}

// Part is either literal text or a reference to another resource's output.
type Part struct {
	Lit   string `json:"lit,omitempty"`
	From  string `json:"from,omitempty"`  // resource ID
	Field string `json:"field,omitempty"` // output name, e.g. "value", "stdout"
}

// IsRef reports whether the part refers to another resource's output.
func (p Part) IsRef() bool { return p.From != "" }

// Meta are the parameters every resource accepts.
type Meta struct {
	Retry      int      `json:"retry,omitempty"`
	RetryDelay Duration `json:"retry_delay,omitempty"`
	Timeout    Duration `json:"timeout,omitempty"`
	// Skip is set when the policy's when= evaluated false; the engine reports
	// the resource as skipped and its dependents still run.
	Skip  bool `json:"skip,omitempty"`
	NoLog bool `json:"no_log,omitempty"`
}

// Duration is a time.Duration that encodes as nanoseconds.
type Duration = time.Duration

// ResourceID builds the canonical ID of a resource.
func ResourceID(kind, name string) string { return kind + ":" + name }

// AddBlob stores content and returns its hash.
func (p *Plan) AddBlob(b []byte) string {
	h := Hash(b)
	if p.Blobs == nil {
		p.Blobs = map[string][]byte{}
	}
	p.Blobs[h] = b
	return h
}

// Validate checks the structural rules the engine relies on: unique IDs,
// edges and bindings pointing at existing resources, and blobs that match
// their hashes. It does not check kind-specific params (resource.New does).
func (p *Plan) Validate() error {
	if p.Version != Version {
		return fmt.Errorf("plan version %d is not supported (this herd speaks %d)", p.Version, Version)
	}
	ids := make(map[string]bool, len(p.Resources))
	for _, r := range p.Resources {
		if r.ID == "" || r.Kind == "" {
			return fmt.Errorf("resource %q: empty id or kind", r.ID)
		}
		if ids[r.ID] {
			return fmt.Errorf("%s: duplicate resource %s", r.Pos, r.ID)
		}
		ids[r.ID] = true
	}
	for _, r := range p.Resources {
		check := func(what, id string) error {
			if !ids[id] {
				return fmt.Errorf("%s: %s: %s refers to unknown resource %q", r.Pos, r.ID, what, id)
			}
			return nil
		}
		for _, a := range r.After {
			if err := check("after", a); err != nil {
				return err
			}
		}
		for _, n := range r.Notify {
			if err := check("notify", n); err != nil {
				return err
			}
		}
		for _, b := range r.Bind {
			for _, part := range b.Parts {
				if part.IsRef() {
					if err := check("value reference", part.From); err != nil {
						return err
					}
				}
			}
		}
	}
	for h, f := range p.Files {
		if !IsHash(h) || f.Size < 0 {
			return fmt.Errorf("file reference %q: not a sha256 hash with a size", h)
		}
	}
	for h, b := range p.Blobs {
		if Hash(b) != h {
			return fmt.Errorf("blob %s: content does not match its hash", h)
		}
	}
	return nil
}

// Deps returns the IDs a resource must wait for: After plus binding sources,
// sorted and without duplicates.
func (r Resource) Deps() []string {
	set := map[string]bool{}
	for _, a := range r.After {
		set[a] = true
	}
	for _, b := range r.Bind {
		for _, p := range b.Parts {
			if p.IsRef() {
				set[p.From] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
