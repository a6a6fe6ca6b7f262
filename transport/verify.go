package transport

import (
	"fmt"
	"net"

	"golang.org/x/crypto/ssh"
)

// Login is what transport would use to log in to a target, for a
// connection that another process dials: a trusted relay parent
// (herd_via_mode = "trusted") dials the child, while the keys, the host key
// check and the host key algorithm pinning stay here, the same code as for
// direct and ProxyJump connections. Close it when the login is over: it
// may hold a connection to ssh-agent.
type Login struct {
	Name     string // inventory name, for messages
	Addr     string // host:port after ssh_config, as the parent must dial it
	User     string
	Password string // secret; "" when none is configured
	// Signers are the keys transport would offer, in its order (ssh-agent,
	// explicit key files, ssh_config IdentityFiles, ~/.ssh/id_*).
	Signers []ssh.Signer
	// HostKeyAlgorithms pins the host key types known_hosts holds for
	// Addr, as for a direct connection (nil: no preference).
	HostKeyAlgorithms []string

	hk   *hostKeys
	auth *auth
	e    *endpoint
}

// Login resolves t with the pool's ssh_config (ProxyJump is not followed:
// the path is the relay's) and prepares its keys and host key check.
func (p *Pool) Login(t Target) (*Login, error) {
	sc, err := p.load()
	if err != nil {
		return nil, err
	}
	t.ProxyJump = nil
	e, err := sc.resolveDepth(t, 0, false)
	if err != nil {
		return nil, err
	}
	hk, err := newHostKeys(e)
	if err != nil {
		return nil, err
	}
	a, err := p.authFor(e)
	if err != nil {
		return nil, err
	}
	return &Login{
		Name: e.name, Addr: e.addr(), User: e.user, Password: e.password,
		Signers: a.signers, HostKeyAlgorithms: hk.algorithms(),
		hk: hk, auth: a, e: e,
	}, nil
}

// CheckHostKey checks the key the child presented against known_hosts,
// with the message and error kinds (ErrHostKeyChanged, ErrUnknownHostKey)
// of a direct connection.
func (l *Login) CheckHostKey(key ssh.PublicKey) error {
	// The hostname is what known_hosts is searched for; the remote address
	// is only parsed (the controller does not know what the parent dialled).
	remote := &net.TCPAddr{IP: net.IPv4zero, Port: l.e.port}
	if ip := net.ParseIP(l.e.host); ip != nil {
		remote.IP = ip
	}
	if err := l.hk.callback(l.Addr, remote, key); err != nil {
		return err
	}
	if !l.e.check {
		return nil
	}
	if len(l.HostKeyAlgorithms) > 0 && !pinned(l.HostKeyAlgorithms, key.Type()) {
		return fmt.Errorf("%s: %w: the server offered a %s key, not one of the types known_hosts has for it", l.e.where(), ErrHostKeyChanged, key.Type())
	}
	return nil
}

func pinned(algos []string, keyType string) bool {
	for _, a := range algos {
		if a == keyType {
			return true
		}
	}
	return false
}

// AuthFailure is the message for a login that no key or password opened.
func (l *Login) AuthFailure() error { return l.auth.failure(l.e) }

// Where names the login in messages, as direct connections do.
func (l *Login) Where() string { return l.e.where() }

// Close ends the ssh-agent connection, if any; Signers from ssh-agent stop
// working.
func (l *Login) Close() { l.auth.Close() }
