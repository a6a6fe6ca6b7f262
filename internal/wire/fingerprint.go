package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// Fingerprint names the protocol this binary speaks: Version and the shape
// of every message (each field's name, Go type and JSON tag, down through
// the plan and event types they carry), hashed. Two builds with the same
// fingerprint encode and decode each other's messages alike. The
// controller compares it with a lean agent's (`herd-agent identity`)
// before shipping that agent, so a herd-agent left over from another
// build is refused at the start of a run rather than failing, or worse
// half-working, on every host. Adding a field changes it, on purpose: the
// controller and its agent come from one build.
func Fingerprint() string {
	fingerprintOnce.Do(func() {
		var b strings.Builder
		fmt.Fprintf(&b, "version %d\n", Version)
		seen := map[reflect.Type]bool{}
		for t := Type(1); t < 255; t++ {
			m := newMessage(t)
			if m == nil {
				continue
			}
			fmt.Fprintf(&b, "type %d %s: ", t, t)
			describe(&b, reflect.TypeOf(m).Elem(), seen)
			b.WriteByte('\n')
		}
		sum := sha256.Sum256([]byte(b.String()))
		fingerprint = hex.EncodeToString(sum[:16])
	})
	return fingerprint
}

var (
	fingerprintOnce sync.Once
	fingerprint     string
)

// describe writes t's shape; a named struct already described is written
// by name only, which also ends recursion through self-referencing types.
func describe(b *strings.Builder, t reflect.Type, seen map[reflect.Type]bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		b.WriteString(t.Kind().String() + "(")
		if t.Kind() == reflect.Map {
			describe(b, t.Key(), seen)
			b.WriteString(" ")
		}
		describe(b, t.Elem(), seen)
		b.WriteString(")")
	case reflect.Struct:
		name := t.PkgPath() + "." + t.Name()
		if t.Name() != "" && seen[t] {
			b.WriteString(name)
			return
		}
		seen[t] = true
		b.WriteString(name + "{")
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			fmt.Fprintf(b, "%s %q ", f.Name, f.Tag.Get("json"))
			describe(b, f.Type, seen)
			b.WriteString("; ")
		}
		b.WriteString("}")
	default:
		// Basic kinds and interfaces: the named type says enough.
		b.WriteString(t.String())
	}
}
