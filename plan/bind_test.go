package plan

import (
	"reflect"
	"testing"
)

func TestBindingSetAndPlaceholder(t *testing.T) {
	idx := func(i int) *int { return &i }
	ref := Part{From: "password:db", Field: "value"}
	tests := []struct {
		name        string
		params      Params
		b           Binding
		placeholder string
		want        any // params[b.Param] after Set(params, "V")
		wantErr     bool
	}{
		{"whole string", Params{}, Binding{Param: "command", Parts: []Part{{Lit: "echo "}, ref}},
			"echo x", "V", false},
		{"leading reference looks like a path", Params{}, Binding{Param: "dest", Parts: []Part{ref, {Lit: ".conf"}}},
			"/x.conf", "V", false},
		{"list element", Params{"argv": []string{"sh", "", "z"}}, Binding{Param: "argv", Index: idx(1), Parts: []Part{ref}},
			"/x", []string{"sh", "V", "z"}, false},
		{"list element after JSON", Params{"argv": []any{"sh", ""}}, Binding{Param: "argv", Index: idx(1), Parts: []Part{ref}},
			"/x", []string{"sh", "V"}, false},
		{"index outside the list", Params{"argv": []string{"sh"}}, Binding{Param: "argv", Index: idx(3), Parts: []Part{ref}},
			"/x", nil, true},
		{"negative index", Params{"argv": []string{"sh"}}, Binding{Param: "argv", Index: idx(-1), Parts: []Part{ref}},
			"/x", nil, true},
		{"map value", Params{"env": map[string]string{"A": "a"}}, Binding{Param: "env", Key: "PW", Parts: []Part{{Lit: "pw="}, ref}},
			"pw=x", map[string]string{"A": "a", "PW": "V"}, false},
		{"map value, param absent", Params{}, Binding{Param: "env", Key: "PW", Parts: []Part{ref}},
			"/x", map[string]string{"PW": "V"}, false},
		{"list binding on a string param", Params{"argv": "sh"}, Binding{Param: "argv", Index: idx(0), Parts: []Part{ref}},
			"/x", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Placeholder(); got != tt.placeholder {
				t.Errorf("Placeholder() = %q, want %q", got, tt.placeholder)
			}
			orig := tt.params.Clone()
			p := tt.params.Clone()
			err := tt.b.Set(p, "V")
			if (err != nil) != tt.wantErr {
				t.Fatalf("Set: err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !reflect.DeepEqual(p[tt.b.Param], tt.want) {
				t.Errorf("Set: %s = %#v, want %#v", tt.b.Param, p[tt.b.Param], tt.want)
			}
			if !reflect.DeepEqual(tt.params, orig) {
				t.Errorf("Set modified the original params: %#v", tt.params)
			}
		})
	}
}
