package transport

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys verifies one endpoint's host key and remembers what it saw, so
// the dial error can be the checker's own message instead of x/crypto's.
type hostKeys struct {
	e           *endpoint
	db          ssh.HostKeyCallback // nil: no known_hosts file exists yet
	fingerprint string              // of the key the server presented
	err         error               // the refusal, if any
	recorded    bool                // the key was new and added to known_hosts (accept-new)
}

func newHostKeys(e *endpoint) (*hostKeys, error) {
	h := &hostKeys{e: e}
	if !e.check {
		return h, nil
	}
	var files []string
	for _, f := range e.knownHosts {
		if _, err := os.Stat(f); err == nil {
			files = append(files, f)
		} else if !os.IsNotExist(err) {
			return nil, fmt.Errorf("%s: known hosts: %w", e.where(), err)
		}
	}
	if len(files) > 0 {
		db, err := loadKnownHosts(files)
		if err != nil {
			return nil, fmt.Errorf("%s: known hosts: %w", e.where(), err)
		}
		h.db = db
	}
	return h, nil
}

// callback checks key against known_hosts for the endpoint's host:port,
// whatever address the connection was opened with.
func (h *hostKeys) callback(_ string, _ net.Addr, key ssh.PublicKey) error {
	h.fingerprint = keyName(key)
	if !h.e.check {
		return nil
	}
	var err error = &knownhosts.KeyError{}
	if h.db != nil {
		err = h.db(h.e.addr(), anyAddr, key)
	}
	if err == nil {
		return nil
	}
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.As(err, &keyErr) && len(keyErr.Want) == 0 && h.e.acceptNew:
		h.err = h.record(key)
	case errors.As(err, &keyErr) && len(keyErr.Want) == 0:
		h.err = h.unknownError(key)
	case errors.As(err, &keyErr):
		want := keyErr.Want[0]
		h.err = fmt.Errorf("%s: %w: the server offered %s but %s:%d has %s for it. "+
			"Someone may be intercepting the connection, or the host was reinstalled; "+
			"if you expect the change, run ssh-keygen -R %s -f %s and add the new key",
			h.e.where(), ErrHostKeyChanged, keyName(key), want.Filename, want.Line,
			keyName(want.Key), shellQuote(knownhosts.Normalize(h.e.addr())), want.Filename)
	case errors.As(err, &revoked):
		h.err = fmt.Errorf("%s: %w: the server offered %s, which %s:%d marks @revoked",
			h.e.where(), ErrHostKeyChanged, keyName(key), revoked.Revoked.Filename, revoked.Revoked.Line)
	default:
		h.err = fmt.Errorf("%s: host key check: %w", h.e.where(), err)
	}
	return h.err
}

func (h *hostKeys) unknownError(key ssh.PublicKey) error {
	file := "~/.ssh/known_hosts"
	if len(h.e.knownHosts) > 0 {
		file = h.e.knownHosts[0]
	}
	scan := "ssh-keyscan " + h.e.host
	if h.e.port != 22 {
		scan = "ssh-keyscan -p " + strconv.Itoa(h.e.port) + " " + h.e.host
	}
	return fmt.Errorf("%s: %w %s; verify it and add it to %s (e.g. %s >> %s), or let herd record new keys with --strict-host-keys=accept-new",
		h.e.where(), ErrUnknownHostKey, keyName(key), file, scan, file)
}

// record adds a key seen for the first time to the user's known_hosts
// (accept-new), as ssh does: the first UserKnownHostsFile.
func (h *hostKeys) record(key ssh.PublicKey) error {
	file := h.e.knownHosts[0]
	if err := recordHostKey(file, h.e.addr(), key, h.e.hashKnownHosts); err != nil {
		if errors.Is(err, ErrHostKeyChanged) {
			return fmt.Errorf("%s: %w: the server offered %s but %v", h.e.where(), ErrHostKeyChanged, keyName(key),
				strings.TrimPrefix(err.Error(), ErrHostKeyChanged.Error()+": "))
		}
		return fmt.Errorf("%s: cannot record its new host key %s (accept-new): %w", h.e.where(), keyName(key), err)
	}
	h.recorded = true
	return nil
}

// algorithms is the one place that decides which host key algorithms a
// connection asks for. When known_hosts holds keys for the endpoint's
// host:port (port 22 included, hashed or not), only their types are asked
// for, so a server that also has, say, an ECDSA key presents the ED25519 key
// we can verify instead of a false "key changed" (ssh does the same). An
// unknown host gets OpenSSH's order, so accept-new records what ssh would.
func (h *hostKeys) algorithms() []string {
	if h.db == nil {
		return defaultHostKeyAlgorithms
	}
	// known_hosts matches on the address it is given, not the remote one;
	// it must keep its port: Normalize would drop ":22", which the callback
	// cannot parse, so port 22 found nothing.
	err := h.db(h.e.addr(), anyAddr, probeKey())
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) || len(keyErr.Want) == 0 {
		return defaultHostKeyAlgorithms
	}
	var algos []string
	add := func(a ...string) {
		for _, x := range a {
			if !slices.Contains(algos, x) {
				algos = append(algos, x)
			}
		}
	}
	for _, k := range keyErr.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos
}

// defaultHostKeyAlgorithms is OpenSSH's preference (certificates, then
// ED25519 first), used when known_hosts has nothing for the host;
// x/crypto's own puts ECDSA first.
var defaultHostKeyAlgorithms = []string{
	ssh.CertAlgoED25519v01, ssh.CertAlgoECDSA256v01, ssh.CertAlgoECDSA384v01, ssh.CertAlgoECDSA521v01,
	ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01,
	ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
	ssh.KeyAlgoRSA, // OpenSSH < 7.2 servers; the key must still be known
}

// probeKey is a key no host has (all-zero ed25519), used to ask known_hosts
// which keys it holds for an address.
func probeKey() ssh.PublicKey {
	k, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	return k
}

// keyName renders a key the way ssh(1) prints it: "ED25519 SHA256:…".
func keyName(k ssh.PublicKey) string {
	t := k.Type()
	switch {
	case t == ssh.KeyAlgoED25519:
		t = "ED25519"
	case t == ssh.KeyAlgoRSA:
		t = "RSA"
	case strings.HasPrefix(t, "ecdsa-"):
		t = "ECDSA"
	}
	return t + " " + ssh.FingerprintSHA256(k)
}

// ShellQuote quotes s for /bin/sh: the one quoting rule for every command
// herd sends to a login shell (transport's own and the agent bootstrap's).
func ShellQuote(s string) string { return shellQuote(s) }

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
