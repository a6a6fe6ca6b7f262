package policy

import (
	"fmt"
	"strconv"
	"strings"

	"go.starlark.net/syntax"

	"github.com/herd-project/herd/resource"
)

// modeParamNames are the keyword arguments that take a file mode, from the
// resource schemas (mode, dir_mode).
func modeParamNames() map[string]bool {
	names := map[string]bool{}
	for _, k := range resource.Kinds() {
		s, _ := resource.Lookup(k)
		for _, p := range s.Params {
			if p.Type == resource.Mode {
				names[p.Name] = true
			}
		}
	}
	return names
}

// checkModeLiterals refuses a mode written as a decimal literal, such as
// mode=644: it is the number 644 (0o1204, sticky bit and odd permissions),
// never what its author meant. Once evaluated an int no longer says how it
// was written, so this looks at the source. Any call's keyword argument
// with a mode name counts, so helpers that pass mode= through are covered.
// Decimal 0 to 7 read the same in octal and are allowed.
func checkModeLiterals(f *syntax.File) error {
	names := modeParamNames()
	var err error
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || err != nil {
			return err == nil
		}
		for _, a := range call.Args {
			kw, ok := a.(*syntax.BinaryExpr)
			if !ok || kw.Op != syntax.EQ {
				continue
			}
			id, ok := kw.X.(*syntax.Ident)
			lit, isLit := kw.Y.(*syntax.Literal)
			if !ok || !isLit || !names[id.Name] || lit.Token != syntax.INT {
				continue
			}
			if e := decimalMode(id.Name, lit); e != "" {
				err = errorAt(lit.TokenPos.String(), "%s", e)
			}
		}
		return true
	})
	return err
}

// decimalMode explains why lit is refused as a mode, or returns "".
func decimalMode(name string, lit *syntax.Literal) string {
	raw := strings.ToLower(lit.Raw)
	if strings.HasPrefix(raw, "0o") || strings.HasPrefix(raw, "0x") || strings.HasPrefix(raw, "0b") {
		return ""
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(raw, "_", ""), 10, 64)
	if err != nil || n < 8 {
		return ""
	}
	if o, err := strconv.ParseInt(raw, 8, 64); err == nil && o <= 0o7777 {
		return fmt.Sprintf("%s=%s is a decimal number (0o%o), not the octal mode it looks like; write 0o%s or \"%s\"", name, lit.Raw, n, raw, raw)
	}
	return fmt.Sprintf("%s=%s is a decimal number (0o%o); write modes in octal, such as 0o%o", name, lit.Raw, n, n)
}
