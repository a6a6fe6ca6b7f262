package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/herd-project/herd/internal/inventory"
)

// sourcesFlag is a repeatable -i: each names an inventory file or
// directory, merged in order as Ansible merges repeated -i options.
type sourcesFlag []string

func (s *sourcesFlag) String() string { return strings.Join(*s, " ") }
func (s *sourcesFlag) Type() string   { return "path" }
func (s *sourcesFlag) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty inventory path")
	}
	*s = append(*s, v)
	return nil
}

// vaultFlags are Ansible's vault options: --vault-password-file (repeatable,
// default $HERD_VAULT_PASSWORD_FILE) and --ask-vault-pass.
type vaultFlags struct {
	files sourcesFlag
	ask   bool
}

func (v *vaultFlags) register(fs *pflag.FlagSet) {
	fs.Var(&v.files, "vault-password-file", "file holding an Ansible Vault password (repeatable; default $HERD_VAULT_PASSWORD_FILE)")
	fs.BoolVar(&v.ask, "ask-vault-pass", false, "ask once for the Ansible Vault password")
}

// vault returns the passwords' vault, or nil when none was given (vault
// text is then an error naming its file and line).
func (v *vaultFlags) vault() (*inventory.Vault, error) {
	files := v.files
	if len(files) == 0 {
		if env := os.Getenv("HERD_VAULT_PASSWORD_FILE"); env != "" {
			files = sourcesFlag{env}
		}
	}
	var pws [][]byte
	for _, f := range files {
		pw, err := inventory.ReadVaultPasswordFile(f)
		if err != nil {
			return nil, err
		}
		pws = append(pws, pw)
	}
	if v.ask {
		pw, err := readPassword("Vault password: ")
		if err != nil {
			return nil, err
		}
		pws = append(pws, []byte(pw))
	}
	if len(pws) == 0 {
		return nil, nil
	}
	return inventory.NewVault(pws...), nil
}

// loadSources loads the -i sources with the policy directory's vars.
func loadSources(sources []string, policyFile string, vault *inventory.Vault) (*inventory.Inventory, error) {
	o := inventory.Options{Vault: vault}
	if policyFile != "" {
		o.PlaybookDir = filepath.Dir(policyFile)
	}
	return inventory.LoadSources(context.Background(), sources, o)
}
