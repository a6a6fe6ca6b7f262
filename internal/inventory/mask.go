package inventory

import (
	"fmt"
	"strings"
)

// Mask replaces secret values in Masked output.
const Mask = "********"

// secretWords mark a variable name as secret wherever they appear in it.
var secretWords = []string{"password", "secret", "token", "pass"}

// Masked returns a deep copy of vars safe to print: values of password-ish
// magic variables and of any key containing password, secret, token or pass
// (case-insensitive, at any nesting level) become Mask. Erring towards
// masking too much is deliberate: `herd inventory --vars` output ends up in
// tickets and CI logs.
func Masked(vars map[string]any) map[string]any {
	if vars == nil {
		return nil
	}
	out := make(map[string]any, len(vars))
	for k, v := range vars {
		if isSecretKey(k) {
			out[k] = Mask
			continue
		}
		out[k] = maskValue(v)
	}
	return out
}

func maskValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return Masked(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = maskValue(e)
		}
		return out
	}
	return v
}

func isSecretKey(k string) bool {
	if secretMagicVars[k] {
		return true
	}
	lk := strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(lk, w) {
			return true
		}
	}
	return false
}

// MaskedVars is Masked for one host of inv, also hiding every value that
// was decrypted from an Ansible Vault, whatever its name.
func (inv *Inventory) MaskedVars(h *Host) map[string]any {
	m := Masked(h.Vars)
	if inv.vault == nil {
		return m
	}
	for k, v := range m {
		m[k] = maskVault(v, inv.vault)
	}
	return m
}

func maskVault(v any, vault *Vault) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = maskVault(e, vault)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = maskVault(e, vault)
		}
		return x
	case string:
		if vault.isVaultSecret(x) {
			return Mask
		}
		return x
	case nil:
		return nil
	}
	if vault.isVaultSecret(fmt.Sprint(v)) {
		return Mask
	}
	return v
}
