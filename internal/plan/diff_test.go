package plan

import (
	"reflect"
	"strings"
	"testing"
)

func res(id string, mod func(*Resource)) Resource {
	kind, name, _ := strings.Cut(id, ":")
	r := Resource{ID: id, Kind: kind, Name: name, Params: Params{"content": "x"}}
	if mod != nil {
		mod(&r)
	}
	return r
}

func TestDiff(t *testing.T) {
	base := &Plan{Version: Version, Resources: []Resource{
		res("file:/a", nil), res("file:/b", nil), res("file:/c", nil),
	}}
	tests := []struct {
		name             string
		next             []Resource
		changed, removed []string
	}{
		{"same", base.Resources, nil, nil},
		{"moved in the policy file only", []Resource{res("file:/a", func(r *Resource) { r.Pos = "x.star:9:1" }), res("file:/b", nil), res("file:/c", nil)}, nil, nil},
		{"param changed", []Resource{res("file:/a", nil), res("file:/b", func(r *Resource) { r.Params = Params{"content": "y"} }), res("file:/c", nil)}, []string{"file:/b"}, nil},
		{"added and removed", []Resource{res("file:/a", nil), res("file:/d", nil)}, []string{"file:/d"}, []string{"file:/b", "file:/c"}},
		{"edge changed", []Resource{res("file:/a", nil), res("file:/b", func(r *Resource) { r.Notify = []string{"file:/a"} }), res("file:/c", nil)}, []string{"file:/b"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, r := Diff(base, &Plan{Version: Version, Resources: tt.next})
			if !reflect.DeepEqual(c, tt.changed) || !reflect.DeepEqual(r, tt.removed) {
				t.Fatalf("Diff = %v, %v; want %v, %v", c, r, tt.changed, tt.removed)
			}
		})
	}
	if c, _ := Diff(nil, base); len(c) != 3 {
		t.Fatalf("everything is new against no plan, got %v", c)
	}
}

func TestSubset(t *testing.T) {
	// dir ← conf (notifies reload) ← other (declaration order) ;
	// pw → db (binds pw.value); reload is refresh-only.
	p := &Plan{Version: Version, Resources: []Resource{
		res("directory:/d", nil),
		res("file:/d/conf", func(r *Resource) { r.After = []string{"directory:/d"}; r.Notify = []string{"exec:reload"} }),
		res("file:/d/other", func(r *Resource) { r.After = []string{"file:/d/conf"} }),
		res("exec:reload", func(r *Resource) { r.After = []string{"file:/d/other"} }),
		res("password:pw", nil),
		res("file:/d/db", func(r *Resource) {
			r.After = []string{"exec:reload"}
			r.Bind = []Binding{{Param: "content", Parts: []Part{{From: "password:pw", Field: "value"}}}}
		}),
	}}
	tests := []struct {
		name string
		ids  []string
		want map[string][]string // member → its After in the subset
	}{
		{"a file and what it notifies, ordered through a non-member", []string{"file:/d/conf"},
			map[string][]string{"file:/d/conf": nil, "exec:reload": {"file:/d/conf"}}},
		{"a value's producer comes along", []string{"file:/d/db"},
			map[string][]string{"password:pw": nil, "file:/d/db": nil}},
		{"a producer brings its consumers", []string{"password:pw"},
			map[string][]string{"password:pw": nil, "file:/d/db": nil}},
		{"nothing", nil, map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := Subset(p, tt.ids)
			got := map[string][]string{}
			for _, r := range sub.Resources {
				got[r.ID] = r.After
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Subset(%v) = %v, want %v", tt.ids, got, tt.want)
			}
			if err := sub.Validate(); err != nil {
				t.Fatalf("subset does not validate: %v", err)
			}
		})
	}
}

// A subset keeps the exports whose sources all run in it (and literal
// ones), so a watch's agent reports a re-run command's new output; an
// export of a resource left out is left out too (the plan validates).
func TestSubsetExports(t *testing.T) {
	p := &Plan{Version: Version, Resources: []Resource{res("exec:addr", nil), res("exec:key", nil)},
		Exports: []Export{
			{Name: "addr", Parts: []Part{{From: "exec:addr", Field: "stdout"}}},
			{Name: "both", Parts: []Part{{From: "exec:addr", Field: "stdout"}, {Lit: ":"}, {From: "exec:key", Field: "stdout"}}},
			{Name: "lit", Parts: []Part{{Lit: "v1"}}},
		}}
	sub := Subset(p, []string{"exec:addr"})
	var got []string
	for _, e := range sub.Exports {
		got = append(got, e.Name)
	}
	if want := []string{"addr", "lit"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("exports of the subset = %v, want %v", got, want)
	}
	if err := sub.Validate(); err != nil {
		t.Fatal(err)
	}
}
