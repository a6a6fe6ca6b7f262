package plan

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// Params are a resource's kind-specific arguments. Values are limited to
// string, bool, int64, []string and map[string]string so that they survive a
// JSON round trip; the getters accept the shapes JSON decoding produces.
type Params map[string]any

// Has reports whether key was given.
func (p Params) Has(key string) bool { _, ok := p[key]; return ok }

// Str returns a string param or def when absent.
func (p Params) Str(key, def string) (string, error) {
	v, ok := p[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: want string, got %T", key, v)
	}
	return s, nil
}

// Bool returns a bool param or def when absent.
func (p Params) Bool(key string, def bool) (bool, error) {
	v, ok := p[key]
	if !ok || v == nil {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s: want bool, got %T", key, v)
	}
	return b, nil
}

// Int returns an integer param or def when absent.
func (p Params) Int(key string, def int64) (int64, error) {
	v, ok := p[key]
	if !ok || v == nil {
		return def, nil
	}
	switch n := v.(type) {
	case int:
		return int64(n), nil
	case int64:
		return n, nil
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, fmt.Errorf("%s: %v is not an integer", key, n)
		}
		return int64(n), nil
	case json.Number:
		return n.Int64()
	}
	return 0, fmt.Errorf("%s: want int, got %T", key, v)
}

// List returns a list-of-strings param (nil when absent).
func (p Params) List(key string) ([]string, error) {
	v, ok := p[key]
	if !ok || v == nil {
		return nil, nil
	}
	switch l := v.(type) {
	case []string:
		return l, nil
	case []any:
		out := make([]string, len(l))
		for i, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%s[%d]: want string, got %T", key, i, e)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: want list of strings, got %T", key, v)
}

// IntList returns a list-of-ints param (nil when absent); JSON may have
// made the ints float64 or json.Number.
func (p Params) IntList(key string) ([]int64, error) {
	v, ok := p[key]
	if !ok || v == nil {
		return nil, nil
	}
	var l []any
	switch x := v.(type) {
	case []int64:
		return x, nil
	case []any:
		l = x
	default:
		return nil, fmt.Errorf("%s: want list of ints, got %T", key, v)
	}
	out := make([]int64, len(l))
	for i, e := range l {
		n, err := Params{key: e}.Int(key, 0)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: want int, got %T", key, i, e)
		}
		out[i] = n
	}
	return out, nil
}

// Map returns a string-to-string map param (nil when absent).
func (p Params) Map(key string) (map[string]string, error) {
	v, ok := p[key]
	if !ok || v == nil {
		return nil, nil
	}
	switch m := v.(type) {
	case map[string]string:
		return m, nil
	case map[string]any:
		out := make(map[string]string, len(m))
		for k, e := range m {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%s[%q]: want string, got %T", key, k, e)
			}
			out[k] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: want dict of strings, got %T", key, v)
}

// Keys returns the param names, sorted.
func (p Params) Keys() []string {
	out := make([]string, 0, len(p))
	for k := range p {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Clone returns a shallow copy, so bindings can be applied without touching
// the plan.
func (p Params) Clone() Params {
	out := make(Params, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}
