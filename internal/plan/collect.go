package plan

import (
	"fmt"
	"time"
)

// Collected is a value another host exports in this run (collect() in the
// policy), which the controller pushes to the agent as soon as it exists.
// A resource whose params use one waits for it on the target, at most
// Timeout, and then runs with Fallback (the value of an earlier run) or an
// empty string, saying which hosts were missing.
type Collected struct {
	Host string `json:"host"`
	Name string `json:"name"`
	// Role is the exporting host's role: one value per host, role and name.
	Role        string   `json:"role"`
	Fallback    string   `json:"fallback,omitempty"`
	HasFallback bool     `json:"has_fallback,omitempty"`
	Timeout     Duration `json:"timeout,omitempty"`
	// Later is set when Host runs the role in a later serial batch than
	// this host: its value cannot come in time, so the resource does not
	// wait for it and says so at once.
	Later bool `json:"later,omitempty"`
}

// DefaultCollectTimeout is Collected.Timeout when not set.
const DefaultCollectTimeout = 60 * time.Second

// Key names the value across hosts.
func (c *Collected) Key() string { return c.Role + "\x00" + c.Host + "\x00" + c.Name }

// Wait is how long a resource waits for the value.
func (c *Collected) Wait() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultCollectTimeout
}

func (c *Collected) validate() error {
	if c.Host == "" {
		return fmt.Errorf("collected value %q without a host", c.Name)
	}
	if c.Timeout < 0 || c.Timeout > 24*time.Hour {
		return fmt.Errorf("collected value %q from %s: timeout %v out of range", c.Name, c.Host, c.Timeout)
	}
	return ValidExportName(c.Name)
}

// Collects lists the collected values r's params wait for.
func (r Resource) Collects() []*Collected {
	var out []*Collected
	for _, b := range r.Bind {
		for _, p := range b.Parts {
			if p.Xch != nil {
				out = append(out, p.Xch)
			}
		}
	}
	return out
}
