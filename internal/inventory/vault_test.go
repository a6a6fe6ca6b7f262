package inventory

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ansibleVault runs the real ansible-vault (CI installs ansible-core) to
// produce the test vectors; without it the vault tests skip.
func ansibleVault(t *testing.T, dir string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("ansible-vault")
	if err != nil {
		t.Skip("ansible-vault not installed (apt-get install ansible-core)")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ansible-vault %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// vaultProject has an inline !vault value in group_vars (format 1.1), a
// whole vaulted host_vars file (format 1.2, with a vault id) and a vaulted
// YAML inventory, all made by ansible-vault with the password "pw-one".
func vaultProject(t *testing.T) string {
	dir := project(t, map[string]string{
		"pw":                 "pw-one\n",
		"inv.yml":            "all:\n  children:\n    db:\n      hosts:\n        db1:\n          inv_secret: s3\n",
		"group_vars/all.yml": "plain: visible\n",
		"host_vars/db1.yml":  "api_token_value: tok-123\nreplicas: 3\n",
	})
	inline := ansibleVault(t, dir, "encrypt_string", "--vault-password-file", "pw", "hunter2", "--name", "db_root")
	if err := os.WriteFile(filepath.Join(dir, "group_vars", "db.yml"), []byte("port: 5432\n"+inline), 0o644); err != nil {
		t.Fatal(err)
	}
	ansibleVault(t, dir, "encrypt", "--vault-id", "prod@pw", "host_vars/db1.yml")
	ansibleVault(t, dir, "encrypt", "--vault-password-file", "pw", "inv.yml")
	return dir
}

// TestVault makes its files with ansible-vault once (it is slow to start)
// and checks decryption, masking and refusals on them.
func TestVault(t *testing.T) {
	dir := vaultProject(t)
	t.Run("decrypts what ansible-vault encrypts", func(t *testing.T) { testVaultDecrypts(t, dir) })
	t.Run("no password fails naming file:line", func(t *testing.T) { testVaultWithoutPassword(t, dir) })
}

func testVaultDecrypts(t *testing.T, dir string) {
	pw, err := ReadVaultPasswordFile(filepath.Join(dir, "pw"))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := LoadWith(filepath.Join(dir, "inv.yml"), Options{Vault: NewVault([]byte("wrong"), pw)})
	if err != nil {
		t.Fatal(err)
	}
	h := mustHost(t, inv, "db1")
	assertVars(t, h, map[string]any{"db_root": "hunter2", "port": 5432, "api_token_value": "tok-123", "replicas": 3, "plain": "visible", "inv_secret": "s3"})
	// Decrypted values are secrets whatever their names.
	m := inv.MaskedVars(h)
	for _, k := range []string{"db_root", "api_token_value", "replicas", "inv_secret"} {
		if m[k] != Mask {
			t.Errorf("%s = %v in masked output, want %s", k, m[k], Mask)
		}
	}
	if m["plain"] != "visible" || m["port"] != 5432 {
		t.Errorf("non-secret values masked: %v", m)
	}
}

// Without a password, or with the wrong one, vault text is an error naming
// file and line, never a value holding ciphertext.
func testVaultWithoutPassword(t *testing.T, dir string) {
	os.Rename(filepath.Join(dir, "host_vars"), filepath.Join(dir, "hv"))
	plain := "all:\n  children:\n    db:\n      hosts:\n        db1:\n"
	os.WriteFile(filepath.Join(dir, "plain.yml"), []byte(plain), 0o644)
	cases := []struct {
		name, inv string
		vault     *Vault
		want      string
	}{
		{"inline, no password", "plain.yml", nil, "group_vars/db.yml:2: !vault value: it is vault-encrypted and no vault password was given"},
		{"inline, wrong password", "plain.yml", NewVault([]byte("nope")), "group_vars/db.yml:2: !vault value: no vault password decrypts it"},
		{"vaulted inventory, no password", "inv.yml", nil, "inv.yml:1: it is vault-encrypted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadWith(filepath.Join(dir, c.inv), Options{Vault: c.vault})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
	// A vault header without the !vault tag is refused too.
	bad := project(t, map[string]string{"h": "h1\n", "host_vars/h1.yml": "x: \"$ANSIBLE_VAULT;1.1;AES256\\n3132\"\n"})
	if _, err := Load(filepath.Join(bad, "h")); err == nil || !strings.Contains(err.Error(), "host_vars/h1.yml:1") {
		t.Fatalf("untagged vault text: err = %v", err)
	}
}
