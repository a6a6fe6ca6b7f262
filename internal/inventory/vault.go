package inventory

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Vault decrypts Ansible Vault data (format 1.1 and 1.2, AES256), so
// inventories with vaulted group_vars or !vault values work unchanged.
// The format: a header "$ANSIBLE_VAULT;1.1;AES256" (1.2 adds ";vault-id"),
// then hex of "hex(salt)\nhex(hmac)\nhex(ciphertext)"; the keys are
// PBKDF2-SHA256(password, salt, 10000) split into a 32-byte AES-256-CTR
// key, a 32-byte HMAC-SHA256 key and a 16-byte counter; the plaintext is
// PKCS#7 padded.
type Vault struct {
	passwords [][]byte
	// secrets are the plaintexts decrypted so far, for masking.
	secrets map[string]bool
}

// NewVault returns a Vault trying each password in turn.
func NewVault(passwords ...[]byte) *Vault {
	return &Vault{passwords: passwords, secrets: map[string]bool{}}
}

// ReadVaultPasswordFile reads a password file as ansible-vault does: the
// first line, surrounding whitespace stripped. An empty password is refused.
func ReadVaultPasswordFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vault password file: %w", err)
	}
	pw := bytes.TrimSpace(data)
	if len(pw) == 0 {
		return nil, fmt.Errorf("vault password file %s is empty", path)
	}
	return pw, nil
}

const vaultHeader = "$ANSIBLE_VAULT;"

// IsVaulted reports whether data is vault-encrypted text.
func IsVaulted(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(data), []byte(vaultHeader))
}

var errVaultPassword = errors.New("no vault password decrypts it (wrong --vault-password-file?)")

// Decrypt returns the plaintext of vaulted text.
func (v *Vault) Decrypt(text []byte) ([]byte, error) {
	if v == nil || len(v.passwords) == 0 {
		return nil, errors.New("it is vault-encrypted and no vault password was given (use --vault-password-file, --ask-vault-pass or HERD_VAULT_PASSWORD_FILE)")
	}
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	hdr := strings.Split(strings.TrimSpace(lines[0]), ";")
	if len(hdr) < 3 || hdr[0] != "$ANSIBLE_VAULT" || (hdr[1] != "1.1" && hdr[1] != "1.2") {
		return nil, fmt.Errorf("unsupported vault header %q (want $ANSIBLE_VAULT;1.1;AES256 or 1.2)", lines[0])
	}
	if strings.TrimSpace(hdr[2]) != "AES256" {
		return nil, fmt.Errorf("unsupported vault cipher %q (only AES256 exists)", hdr[2])
	}
	var body strings.Builder
	for _, l := range lines[1:] {
		body.WriteString(strings.TrimSpace(l))
	}
	outer, err := hex.DecodeString(body.String())
	if err != nil {
		return nil, fmt.Errorf("vault body is not hex: %v", err)
	}
	parts := bytes.Split(outer, []byte("\n"))
	if len(parts) != 3 {
		return nil, errors.New("vault body: want salt, hmac and ciphertext")
	}
	var salt, mac, ct []byte
	for i, dst := range []*[]byte{&salt, &mac, &ct} {
		if *dst, err = hex.DecodeString(string(parts[i])); err != nil {
			return nil, fmt.Errorf("vault body: %v", err)
		}
	}
	for _, pw := range v.passwords {
		if plain, ok := decryptWith(pw, salt, mac, ct); ok {
			if v.secrets != nil {
				v.secrets[string(plain)] = true
			}
			return plain, nil
		}
	}
	return nil, errVaultPassword
}

func decryptWith(pw, salt, mac, ct []byte) ([]byte, bool) {
	key, err := pbkdf2.Key(sha256.New, string(pw), salt, 10000, 80)
	if err != nil {
		return nil, false
	}
	h := hmac.New(sha256.New, key[32:64])
	h.Write(ct)
	if !hmac.Equal(h.Sum(nil), mac) {
		return nil, false
	}
	block, err := aes.NewCipher(key[:32])
	if err != nil {
		return nil, false
	}
	plain := make([]byte, len(ct))
	cipher.NewCTR(block, key[64:80]).XORKeyStream(plain, ct)
	n := len(plain)
	if n == 0 || n%aes.BlockSize != 0 {
		return nil, false
	}
	pad := int(plain[n-1])
	if pad == 0 || pad > aes.BlockSize || !bytes.Equal(plain[n-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, false
	}
	return plain[:n-pad], true
}

// decryptFile decrypts a whole vault-encrypted file, and returns data
// unchanged otherwise. Every string in a decrypted vars file is a secret.
func (v *Vault) decryptFile(file string, data []byte) ([]byte, error) {
	if !IsVaulted(data) {
		return data, nil
	}
	plain, err := v.Decrypt(data)
	if err != nil {
		return nil, &ParseError{File: file, Line: 1, Msg: err.Error()}
	}
	if v.secrets != nil {
		var doc any
		if yaml.Unmarshal(plain, &doc) == nil {
			markSecrets(doc, v.secrets)
		}
	}
	return plain, nil
}

func markSecrets(x any, into map[string]bool) {
	switch x := x.(type) {
	case map[string]any:
		for _, e := range x {
			markSecrets(e, into)
		}
	case []any:
		for _, e := range x {
			markSecrets(e, into)
		}
	case string:
		if x != "" {
			into[x] = true
		}
	default:
		if x != nil {
			into[fmt.Sprint(x)] = true
		}
	}
}

// decryptNodes replaces every !vault scalar under n by its plaintext, or
// fails naming the file and line: vault text must never load silently as
// a value.
func (v *Vault) decryptNodes(file string, n *yaml.Node) error {
	if n == nil {
		return nil
	}
	if n.Tag == "!vault" || n.Tag == "!vault-encrypted" {
		plain, err := v.Decrypt([]byte(n.Value))
		if err != nil {
			return &ParseError{File: file, Line: n.Line, Msg: "!vault value: " + err.Error()}
		}
		n.Tag, n.Value, n.Style = "!!str", string(plain), 0
		return nil
	}
	if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Value, vaultHeader) {
		return &ParseError{File: file, Line: n.Line, Msg: "value is vault text without the !vault tag; add !vault | before it"}
	}
	for _, c := range n.Content {
		if err := v.decryptNodes(file, c); err != nil {
			return err
		}
	}
	return nil
}

// isVaultSecret reports whether s was decrypted from a vault.
func (v *Vault) isVaultSecret(s string) bool { return v != nil && v.secrets[s] }

// Reveals reports whether s contains a value decrypted from a vault, so
// that whatever carries s is kept out of output as no_log would (package
// policy marks such resources).
func (v *Vault) Reveals(s string) bool {
	if v == nil {
		return false
	}
	for secret := range v.secrets {
		if secret != "" && strings.Contains(s, secret) {
			return true
		}
	}
	return false
}
