package policy

import (
	"os"
	"strings"
	"testing"
)

// The README's list of the arguments every resource takes is the table's:
// a meta argument added to the table and not documented fails here.
func TestMetaArgsAreDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(readme), "Every resource takes")
	if i < 0 {
		t.Fatal(`README has no "Every resource takes" list`)
	}
	list := string(readme[i:])
	list = list[:strings.Index(list, ". ")]
	for _, m := range metaArgs {
		if !strings.Contains(list, "`"+m.name+"=`") {
			t.Errorf("README's list of meta arguments lacks `%s=`", m.name)
		}
		if m.typ == "" || m.def == "" || m.doc == "" || m.set == nil {
			t.Errorf("meta argument %s is not fully defined: %+v", m.name, m)
		}
	}
	if n := strings.Count(list, "=`"); n != len(metaArgs) {
		t.Errorf("README lists %d meta arguments, the table has %d", n, len(metaArgs))
	}
}
