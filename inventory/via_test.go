package inventory

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestViaChainsAreCheckedWhenRead(t *testing.T) {
	tests := []struct {
		name, ini string
		want      string // error substring; "" for a good inventory
	}{
		{"a tree is fine", "bastion\nrack1 herd_via=bastion\nrack2 mitogen_via=rack1\n", ""},
		{"two hosts via each other", "h1 herd_via=h2\nh2 herd_via=h1\n", "herd_via cycle: h1 -> h2 -> h1"},
		{"a host via itself", "h1 herd_via=h1\n", "herd_via cycle: h1 -> h1"},
		{"a longer cycle", "h1 herd_via=h2\nh2 herd_via=h3\nh3 herd_via=h1\n", "herd_via cycle: h1 -> h2 -> h3 -> h1"},
		{"a chain that runs into a cycle names only the cycle", "h0 herd_via=h1\nh1 herd_via=h2\nh2 herd_via=h1\n",
			"herd_via cycle: h1 -> h2 -> h1"},
		{"a cycle set on groups", "[a]\nh1\n[a:vars]\nherd_via=h2\n[b]\nh2\n[b:vars]\nherd_via=h1\n", "herd_via cycle: h1 -> h2 -> h1"},
		{"a parent from another inventory is checked by the run", "h1 herd_via=elsewhere\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := project(t, map[string]string{"hosts.ini": tt.ini})
			path := filepath.Join(dir, "hosts.ini")
			_, err := Load(path)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want one naming %s and %q", err, path, tt.want)
			}
		})
	}
}

func TestCheckViaRefusesUnknownParents(t *testing.T) {
	inv := loadFiles(t, "hosts.ini", map[string]string{"hosts.ini": "h1 herd_via=h2\nh2 herd_via=ghost\n"})
	err := CheckVia(inv.Hosts(), inv.Host, false)
	if want := `host h2: herd_via names "ghost", which is not in the inventory`; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}
