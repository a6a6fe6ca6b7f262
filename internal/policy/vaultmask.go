package policy

import (
	"github.com/herd-project/herd/internal/plan"
)

// Values decrypted from an Ansible Vault are secrets: a resource that
// carries one — in a param, a list or dict param, or the rendered content
// of a template — is no_log automatically, so its diffs, command output
// and messages stay out of the terminal, --json, log_path and the agent's
// log (TestScripts/vault_mask greps all of them).
func (p *Policy) revealsVault(res *plan.Resource, blobs map[string][]byte) bool {
	if p.vault == nil {
		return false
	}
	if p.vault.Reveals(res.Name) {
		return true
	}
	for k, v := range res.Params {
		if k == "blob" {
			if h, ok := v.(string); ok && p.vault.Reveals(string(blobs[h])) {
				return true
			}
		}
		if revealsIn(p, v) {
			return true
		}
	}
	// Literal text around deferred values (a template using collect()).
	for _, b := range res.Bind {
		for _, part := range b.Parts {
			if part.IsLit() && p.vault.Reveals(part.Lit) {
				return true
			}
		}
	}
	return false
}

func revealsIn(p *Policy, v any) bool {
	switch x := v.(type) {
	case string:
		return p.vault.Reveals(x)
	case []string:
		for _, s := range x {
			if p.vault.Reveals(s) {
				return true
			}
		}
	case map[string]string:
		for k, s := range x {
			if p.vault.Reveals(k) || p.vault.Reveals(s) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if revealsIn(p, e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if revealsIn(p, e) {
				return true
			}
		}
	}
	return false
}
