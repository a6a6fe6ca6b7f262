package relay

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/ssh"

	"github.com/herd-project/herd/wire"
)

// maxSignatures bounds what a parent can have signed for one child
// connection: one per key tried, with room for a retry.
const maxSignatures = 8

// answer checks a host key or signs for a child connection that is still
// authenticating. A signature is made only over an SSH publickey userauth
// request for the user and one of the keys the controller named for this
// child; everything else is refused, and both are logged. What the parent
// can still do, and why this mode is an opt-in: the session identifier
// inside the data is the parent's to choose, so a signature can log the
// parent in as that user with that key on any host that accepts them, as
// with `ssh -A`.
func (c *Controller) answer(st *stream, m *wire.RelayAsk) {
	reply := &wire.RelayAnswer{ID: m.ID, Seq: m.Seq}
	refuse := func(format string, args ...any) {
		reply.Error = fmt.Sprintf(format, args...)
		if m.What == "sign" {
			c.logf(st.name(), fmt.Sprintf("relay %s: signature refused: %s", c.parent, reply.Error))
		}
		c.wc.Send(reply)
	}
	key, err := ssh.ParsePublicKey(m.Key)
	if err != nil {
		refuse("bad key: %v", err)
		return
	}
	l := st.child.Login
	switch m.What {
	case "hostkey":
		if err := l.CheckHostKey(key); err != nil {
			refuse("%v", err)
			return
		}
	case "sign":
		st.mu.Lock()
		ok := !st.started() && st.signed < maxSignatures
		st.signed++
		st.mu.Unlock()
		if !ok {
			refuse("connection %s is not authenticating", st.name())
			return
		}
		signer := signerFor(l.Signers, m.Key)
		if signer == nil {
			refuse("%s is not a key named for %s", keyName(key), st.name())
			return
		}
		req, err := parseUserauth(m.Data)
		if err != nil {
			refuse("not an SSH login request: %v", err)
			return
		}
		if err := req.allowed(l.User, key, m.Algorithm); err != nil {
			refuse("%v (for %s, the plan names user %q)", err, st.name(), l.User)
			return
		}
		sig, err := sign(signer, m.Data, req.algo)
		if err != nil {
			refuse("sign: %v", err)
			return
		}
		reply.Signature = ssh.Marshal(sig)
		c.logf(st.name(), fmt.Sprintf("relay %s: signed the login of %s as %q with %s", c.parent, l.Addr, req.user, keyName(key)))
	default:
		refuse("unknown question %q", m.What)
		return
	}
	c.wc.Send(reply)
}

// refuseStray answers a question about no open child connection: in the
// default mode no connection is ever opened through a parent's agent, so
// this is every question a parent can ask there.
func (c *Controller) refuseStray(m *wire.RelayAsk) {
	msg := fmt.Sprintf("no child connection %d is open through %s", m.ID, c.parent)
	c.logf(c.parent, fmt.Sprintf("relay %s: %s refused: %s", c.parent, m.What, msg))
	c.wc.Send(&wire.RelayAnswer{ID: m.ID, Seq: m.Seq, Error: msg})
}

func signerFor(signers []ssh.Signer, key []byte) ssh.Signer {
	for _, s := range signers {
		if bytes.Equal(s.PublicKey().Marshal(), key) {
			return s
		}
	}
	return nil
}

func sign(s ssh.Signer, data []byte, algo string) (*ssh.Signature, error) {
	if as, ok := s.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand.Reader, data, algo)
	}
	if algo != s.PublicKey().Type() {
		return nil, fmt.Errorf("key %s cannot sign with %s", s.PublicKey().Type(), algo)
	}
	return s.Sign(rand.Reader, data)
}

// userauth is the data a client signs to log in with a key (RFC 4252
// section 7): session identifier, SSH_MSG_USERAUTH_REQUEST, user,
// "ssh-connection", "publickey", TRUE, algorithm, public key.
type userauth struct {
	session                     []byte
	user, service, method, algo string
	hasSig                      bool
	key                         []byte
}

const msgUserauthRequest = 50

func parseUserauth(data []byte) (*userauth, error) {
	var u userauth
	var err error
	if u.session, data, err = sshString(data); err != nil {
		return nil, fmt.Errorf("session identifier: %w", err)
	}
	if len(u.session) == 0 || len(u.session) > 64 {
		return nil, fmt.Errorf("session identifier of %d bytes", len(u.session))
	}
	if len(data) < 1 || data[0] != msgUserauthRequest {
		return nil, errors.New("not SSH_MSG_USERAUTH_REQUEST")
	}
	data = data[1:]
	fields := []*string{&u.user, &u.service, &u.method}
	for _, f := range fields {
		var b []byte
		if b, data, err = sshString(data); err != nil {
			return nil, err
		}
		*f = string(b)
	}
	if len(data) < 1 {
		return nil, errors.New("truncated")
	}
	u.hasSig, data = data[0] == 1, data[1:]
	var algo []byte
	if algo, data, err = sshString(data); err != nil {
		return nil, err
	}
	u.algo = string(algo)
	if u.key, data, err = sshString(data); err != nil {
		return nil, err
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%d bytes after the public key", len(data))
	}
	return &u, nil
}

func sshString(b []byte) (s, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, errors.New("truncated")
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, errors.New("truncated")
	}
	return b[4 : 4+n], b[4+n:], nil
}

// allowed says whether u is a publickey login as user with key, signed
// with an algorithm that key has (and the one the parent asked for).
func (u *userauth) allowed(user string, key ssh.PublicKey, asked string) error {
	switch {
	case u.service != "ssh-connection" || u.method != "publickey" || !u.hasSig:
		return fmt.Errorf("a %q %q request, not a publickey login", u.service, u.method)
	case u.user != user:
		return fmt.Errorf("a login as %q", u.user)
	case !bytes.Equal(u.key, key.Marshal()):
		return errors.New("the data names another key than the one to sign with")
	case asked != "" && asked != u.algo:
		return fmt.Errorf("algorithm %q asked, %q in the data", asked, u.algo)
	case !algoFits(u.algo, key.Type()):
		return fmt.Errorf("algorithm %q does not fit a %s key", u.algo, key.Type())
	}
	return nil
}

func algoFits(algo, keyType string) bool {
	if keyType == ssh.KeyAlgoRSA {
		return algo == ssh.KeyAlgoRSA || algo == ssh.KeyAlgoRSASHA256 || algo == ssh.KeyAlgoRSASHA512
	}
	return algo == keyType
}
