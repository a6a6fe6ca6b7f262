package transport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// auth is the list of ways to log in to one endpoint, in ssh(1)'s order:
// agent keys, key files, then password and keyboard-interactive.
type auth struct {
	methods []ssh.AuthMethod
	tried   []string // human descriptions for the failure message
	closer  io.Closer
	signers []ssh.Signer // the keys of methods, for logins transport does not make itself (verify.go)
}

func (a *auth) Close() {
	if a.closer != nil {
		a.closer.Close()
	}
}

func (p *Pool) authFor(e *endpoint) (*auth, error) {
	a := &auth{}
	var signers []ssh.Signer
	seen := map[string]bool{}
	addSigner := func(s ssh.Signer) bool {
		k := string(s.PublicKey().Marshal())
		if seen[k] {
			return false
		}
		seen[k] = true
		signers = append(signers, s)
		return true
	}

	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" && !p.cfg.NoAgent {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			p.cfg.Debugf("%s: ssh-agent at SSH_AUTH_SOCK unusable: %v", e.where(), err)
		} else {
			a.closer = conn
			ss, err := agent.NewClient(conn).Signers()
			if err != nil {
				p.cfg.Debugf("%s: ssh-agent: %v", e.where(), err)
			}
			n := 0
			for _, s := range ss {
				if addSigner(s) {
					n++
				}
			}
			if n > 0 {
				a.tried = append(a.tried, fmt.Sprintf("ssh-agent (%d keys)", n))
			}
		}
	}

	explicit := len(e.keyFiles)
	files := append([]string(nil), e.keyFiles...)
	for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		files = append(files, filepath.Join(homeDir(), ".ssh", name))
	}
	done := map[string]bool{}
	for i, f := range files {
		if done[f] {
			continue
		}
		done[f] = true
		s, err := loadKeyFile(f)
		switch {
		case err == nil:
			if addSigner(s) {
				a.tried = append(a.tried, f)
			}
		case errors.Is(err, os.ErrNotExist) && i >= explicit:
			// ssh(1) silently ignores missing default and configured keys.
		case errors.As(err, new(*ssh.PassphraseMissingError)):
			p.cfg.Debugf("%s: skipping key %s: it is encrypted; load it into ssh-agent", e.where(), f)
		case i < explicit && errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("%s: key file %s does not exist", e.where(), f)
		default:
			p.cfg.Debugf("%s: skipping key %s: %v", e.where(), f, err)
		}
	}
	a.signers = signers
	if len(signers) > 0 {
		a.methods = append(a.methods, ssh.PublicKeys(signers...))
	}

	password := e.password
	var ask func() (string, error)
	switch {
	case password != "":
		ask = func() (string, error) { return password, nil }
		a.tried = append(a.tried, "password")
	case p.cfg.PasswordPrompt != nil:
		// Asked at most once per endpoint and only if the server gets as far
		// as password auth, i.e. after keys failed.
		ask = sync.OnceValues(func() (string, error) { return p.cfg.PasswordPrompt(e.name) })
		a.tried = append(a.tried, "password (prompted)")
	}
	if ask != nil {
		a.methods = append(a.methods,
			ssh.PasswordCallback(ask),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range questions {
					if echos[i] {
						continue // not a password question; we have nothing better to say
					}
					pw, err := ask()
					if err != nil {
						return nil, err
					}
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	return a, nil
}

// loadKeyFile reads a private key; certificates and public keys are not
// identities and are reported as unusable.
func loadKeyFile(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(b, []byte("PRIVATE KEY")) {
		return nil, fmt.Errorf("not a private key")
	}
	return ssh.ParsePrivateKey(b)
}

func (a *auth) failure(e *endpoint) error {
	tried := "no keys or password were available"
	if len(a.tried) > 0 {
		tried = "tried " + strings.Join(a.tried, ", ")
	}
	return fmt.Errorf("%s: %w as user %q (%s); check the user, add your key to the host's authorized_keys or load it into ssh-agent, or set ssh_password",
		e.where(), ErrAuthFailed, e.user, tried)
}
