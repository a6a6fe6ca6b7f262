package inventory

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Several sources, a directory source and the policy (playbook) directory's
// group_vars/host_vars resolve as ansible-inventory resolves them with the
// same -i options and --playbook-dir.
func TestSourcesLikeAnsibleInventory(t *testing.T) {
	bin, err := exec.LookPath("ansible-inventory")
	if err != nil {
		t.Skip("ansible-inventory not installed (apt-get install ansible-core)")
	}
	dir := project(t, map[string]string{
		"inventory/prod/10-web":              "[web]\nweb1 tier=inline\nweb2\n",
		"inventory/prod/20-db.yml":           "db:\n  hosts:\n    db1:\n      tier: inline-db\n",
		"inventory/prod/old.ini":             "[old]\nold1\n",
		"inventory/prod/group_vars/all.yml":  "a: inv-all\nb: inv-all\nc: inv-all\n",
		"inventory/prod/group_vars/web.yml":  "b: inv-web\n",
		"inventory/prod/host_vars/web2.yml":  "h: inv-host\n",
		"inventory/extra/hosts":              "[web]\nweb3\n[cache]\ncache1\n",
		"inventory/extra/group_vars/web.yml": "b: extra-web\nx: extra\n",
		"group_vars/all.yml":                 "a: pb-all\n",
		"group_vars/web.yml":                 "c: pb-web\n",
		"host_vars/web2.yml":                 "h: pb-host\n",
		"host_vars/db1.yml":                  "tier: pb-host\n",
	})
	prod, extra := filepath.Join(dir, "inventory/prod"), filepath.Join(dir, "inventory/extra/hosts")
	cmd := exec.Command(bin, "-i", prod, "-i", extra, "--playbook-dir", dir, "--list")
	cmd.Env = append(cmd.Environ(), "ANSIBLE_LOCALHOST_WARNING=False", "ANSIBLE_INVENTORY_UNPARSED_WARNING=False")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ansible-inventory: %v", err)
	}
	inv, err := LoadSources(context.Background(), []string{prod, extra}, Options{PlaybookDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := WriteList(inv, &b); err != nil {
		t.Fatal(err)
	}
	var a, h any
	json.Unmarshal(out, &a)
	json.Unmarshal([]byte(b.String()), &h)
	if !reflect.DeepEqual(a, h) {
		t.Errorf("herd:\n%s\nansible-inventory:\n%s", b.String(), out)
	}
	if _, ok := inv.Host("old1"); ok {
		t.Error("old.ini in an inventory directory was read; Ansible skips .ini there")
	}
}
