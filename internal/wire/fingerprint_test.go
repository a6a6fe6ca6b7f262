package wire

import (
	"reflect"
	"strings"
	"testing"
)

// The fingerprint sees every change of a message's shape that would make
// two builds misread each other: a field added, renamed, retyped or
// retagged, also inside nested types.
func TestFingerprintSeesShapeChanges(t *testing.T) {
	type inner struct{ N int }
	type inner2 struct{ N int64 }
	shapes := []any{
		struct{ A string }{},
		struct {
			A string `json:"a"`
		}{},
		struct{ B string }{},
		struct{ A []byte }{},
		struct {
			A string
			C int
		}{},
		struct{ A map[string]inner }{},
		struct{ A map[string]inner2 }{},
	}
	seen := map[string]int{}
	for i, v := range shapes {
		var b strings.Builder
		describe(&b, reflect.TypeOf(v), map[reflect.Type]bool{})
		if j, dup := seen[b.String()]; dup {
			t.Errorf("shapes %d and %d describe alike: %s", j, i, b.String())
		}
		seen[b.String()] = i
	}
	if f := Fingerprint(); len(f) != 32 || f != Fingerprint() {
		t.Errorf("Fingerprint() = %q, want 32 stable hex digits", f)
	}
}
