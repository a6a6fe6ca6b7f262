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
		db, err := knownhosts.New(files...)
		if err != nil {
			return nil, fmt.Errorf("%s: known hosts: %w", e.where(), err)
		}
		h.db = db
	}
	return h, nil
}

func (h *hostKeys) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	h.fingerprint = keyName(key)
	if !h.e.check {
		return nil
	}
	var err error = &knownhosts.KeyError{}
	if h.db != nil {
		err = h.db(hostname, remote, key)
	}
	if err == nil {
		return nil
	}
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
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
	return fmt.Errorf("%s: %w %s; verify it and add it to %s (e.g. %s >> %s), or set check_host_keys=False",
		h.e.where(), ErrUnknownHostKey, keyName(key), file, scan, file)
}

// algorithms lists the host key algorithms known_hosts has for the endpoint,
// so the server presents a key we can verify rather than its preferred one
// (OpenSSH does the same). Nil means "no preference".
func (h *hostKeys) algorithms() []string {
	if h.db == nil {
		return nil
	}
	err := h.db(knownhosts.Normalize(h.e.addr()), &net.TCPAddr{IP: net.IPv4zero}, probeKey())
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) {
		return nil
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

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
