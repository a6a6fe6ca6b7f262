package relay

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/herd-project/herd/internal/transport"
	"github.com/herd-project/herd/internal/wire"
)

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, s := newKey(t)
	return s
}

func newKey(t *testing.T) (ed25519.PrivateKey, ssh.Signer) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, s
}

// testLogin is transport's own login for a child at 192.0.2.7:22 whose
// known_hosts entry is hostKey and whose key file holds key.
func testLogin(t *testing.T, name, user string, key ed25519.PrivateKey, hostKey ssh.PublicKey) *transport.Login {
	t.Helper()
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte("192.0.2.7 "+string(ssh.MarshalAuthorizedKey(hostKey))), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id")
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := transport.NewPool(transport.Config{SSHConfigFile: "none", NoAgent: true}).Login(transport.Target{
		Name: name, Address: "192.0.2.7", Port: 22, User: user, KeyFiles: []string{keyFile},
		CheckHostKeys: true, KnownHosts: []string{kh},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// userauthData is what an SSH client signs to log in with key (RFC 4252
// section 7), with the fields given.
func userauthData(user, service, method, algo string, key ssh.PublicKey) []byte {
	return ssh.Marshal(struct {
		Session               []byte
		Msg                   byte
		User, Service, Method string
		HasSig                bool
		Algo                  string
		Key                   []byte
	}{[]byte("0123456789abcdef0123456789abcdef"), 50, user, service, method, true, algo, key.Marshal()})
}

// logs collects what the controller logs.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) add(host, msg string) {
	l.mu.Lock()
	l.lines = append(l.lines, host+": "+msg)
	l.mu.Unlock()
}
func (l *logs) String() string { l.mu.Lock(); defer l.mu.Unlock(); return strings.Join(l.lines, "\n") }

// The controller signs only a publickey login request for the user and a
// key it named for a child it opened, only while that child
// authenticates; everything a parent could ask beyond that is refused and
// logged, and every signature made is logged too.
func TestTrustedRelaySignsOnlyTheNamedLogin(t *testing.T) {
	oursPriv, ours := newKey(t)
	other := newSigner(t)
	hostKey := newSigner(t).PublicKey()
	key := ours.PublicKey()
	login := func(user string) []byte { return userauthData(user, "ssh-connection", "publickey", key.Type(), key) }
	sign := func(data []byte) wire.RelayAsk {
		return wire.RelayAsk{What: "sign", Key: key.Marshal(), Data: data}
	}
	tests := []struct {
		name    string
		started bool
		ask     wire.RelayAsk
		wantErr string // "" = a valid signature (sign) or acceptance (hostkey)
	}{
		{"the named login", false, sign(login("root")), ""},
		{"after the agent spoke", true, sign(login("root")), "not authenticating"},
		{"another user", false, sign(login("admin")), `a login as "admin"`},
		{"a key not named", false, wire.RelayAsk{What: "sign", Key: other.PublicKey().Marshal(), Data: userauthData("root", "ssh-connection", "publickey", key.Type(), other.PublicKey())}, "not a key named for rack1"},
		{"data naming another key", false, sign(userauthData("root", "ssh-connection", "publickey", key.Type(), other.PublicKey())), "names another key"},
		{"not a login request", false, sign([]byte("session")), "not an SSH login request"},
		{"trailing bytes", false, sign(append(login("root"), 0)), "after the public key"},
		{"another service", false, sign(userauthData("root", "ssh-userauth", "publickey", key.Type(), key)), "not a publickey login"},
		{"an algorithm the key has not", false, sign(userauthData("root", "ssh-connection", "publickey", ssh.KeyAlgoRSASHA256, key)), "does not fit"},
		{"known host key", false, wire.RelayAsk{What: "hostkey", Key: hostKey.Marshal()}, ""},
		{"other host key", false, wire.RelayAsk{What: "hostkey", Key: other.PublicKey().Marshal()}, "HOST KEY CHANGED"},
		{"unknown question", false, wire.RelayAsk{What: "shell", Key: hostKey.Marshal()}, "unknown question"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w := io.Pipe()
			log := &logs{}
			h := NewController("bastion", wire.NewConn(nil, w, wire.Options{}), log.add)
			st := h.newStream(1, Child{Login: testLogin(t, "rack1", "root", oursPriv, hostKey)})
			if tt.started {
				close(st.spoke)
			}
			tt.ask.ID, tt.ask.Seq = 1, 7
			go h.answer(st, &tt.ask)
			a, err := wire.Expect[wire.RelayAnswer](wire.NewConn(r, nil, wire.Options{}))
			if err != nil {
				t.Fatal(err)
			}
			if a.ID != 1 || a.Seq != 7 {
				t.Errorf("answer for %d/%d, want 1/7", a.ID, a.Seq)
			}
			if tt.ask.What == "sign" {
				want := "signed the login of 192.0.2.7:22 as \"root\""
				if tt.wantErr != "" {
					want = "signature refused: "
				}
				if !strings.Contains(log.String(), want) {
					t.Errorf("controller log %q, want %q", log, want)
				}
			}
			if tt.wantErr != "" {
				if !strings.Contains(a.Error, tt.wantErr) || a.Signature != nil {
					t.Errorf("answer %+v, want refusal %q", a, tt.wantErr)
				}
				return
			}
			if a.Error != "" {
				t.Fatalf("refused: %s", a.Error)
			}
			if tt.ask.What == "sign" {
				sig := new(ssh.Signature)
				if err := ssh.Unmarshal(a.Signature, sig); err != nil {
					t.Fatal(err)
				}
				if err := key.Verify(tt.ask.Data, sig); err != nil {
					t.Errorf("signature does not verify: %v", err)
				}
			}
		})
	}
}

// A parent that ignores the window fails that child with an error naming
// it and tells the parent to hang up, instead of growing the controller's
// buffer.
func TestRelayStreamFailsWhenTheParentOverrunsItsBuffer(t *testing.T) {
	r, w := io.Pipe()
	defer r.Close()
	h := NewController("racktop", wire.NewConn(nil, w, wire.Options{}), nil)
	st := h.newStream(3, Child{Login: testLogin(t, "rack3", "root", ed25519.NewKeyFromSeed(make([]byte, 32)), newSigner(t).PublicKey())})
	h.children[3] = st
	chunk := bytes.Repeat([]byte{'x'}, 256<<10)
	for range 4 {
		h.Handle(&wire.RelayData{ID: 3, Data: chunk}) // exactly the window: fine
	}
	if h.stream(3) == nil {
		t.Fatal("a full window failed the child")
	}
	closed := make(chan *wire.RelayClose, 1)
	go func() {
		m, err := wire.Expect[wire.RelayClose](wire.NewConn(r, nil, wire.Options{}))
		if err != nil {
			t.Error(err)
		}
		closed <- m
	}()
	h.Handle(&wire.RelayData{ID: 3, Data: []byte("one more")})
	select {
	case m := <-closed:
		if m != nil && m.ID != 3 {
			t.Errorf("closed connection %d, want 3", m.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the parent was not told to close the child")
	}
	<-st.done
	if st.err == nil || !strings.Contains(st.err.Error(), "relay buffer for rack3 exceeded 1 MiB: racktop ignored flow control") {
		t.Errorf("child ended with %v, want the buffer overrun naming rack3 and racktop", st.err)
	}
}

// What the controller writes to a child's stdin waits for the parent's
// credit, so a child that does not read cannot make its parent buffer it.
//
// It runs in a synctest bubble: synctest.Wait returns once every goroutine
// is blocked, so "nothing more was sent" is proven without sleeping.
func TestRelayWriterWaitsForTheParentsCredit(t *testing.T) {
	login := testLogin(t, "rack3", "root", ed25519.NewKeyFromSeed(make([]byte, 32)), newSigner(t).PublicKey())
	synctest.Test(t, func(t *testing.T) { relayWriterWaitsForCredit(t, login) })
}

func relayWriterWaitsForCredit(t *testing.T, login *transport.Login) {
	r, w := io.Pipe()
	defer r.Close()
	h := NewController("racktop", wire.NewConn(nil, w, wire.Options{}), nil)
	st := h.newStream(3, Child{Login: login})
	h.children[3] = st
	var sent atomic.Int64
	go func() {
		c := wire.NewConn(r, nil, wire.Options{})
		for {
			m, err := c.Recv()
			if err != nil {
				return
			}
			if d, ok := m.(*wire.RelayData); ok {
				sent.Add(int64(len(d.Data)))
			}
		}
	}()
	const total = 8 << 20
	wrote := make(chan error, 1)
	go func() {
		_, err := (&writer{c: h, st: st}).Write(make([]byte, total))
		wrote <- err
	}()
	waitFor := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for sent.Load() < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := sent.Load(); got != want {
			t.Fatalf("%d bytes sent, want %d", got, want)
		}
	}
	waitFor(wire.RelayWindow)
	synctest.Wait() // the writer is blocked on credit, the reader on the pipe
	if got := sent.Load(); got != wire.RelayWindow {
		t.Fatalf("%d bytes sent without an acknowledgement, want the window of %d", got, wire.RelayWindow)
	}
	h.Handle(&wire.RelayData{ID: 3, Ack: wire.RelayAckEvery})
	waitFor(wire.RelayWindow + wire.RelayAckEvery)
	h.Handle(&wire.RelayData{ID: 3, Ack: total})
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	waitFor(total)

	// A writer waiting for credit is released when the child ends.
	go func() {
		_, err := (&writer{c: h, st: st}).Write(make([]byte, 2*wire.RelayWindow))
		wrote <- err
	}()
	synctest.Wait() // the writer is waiting for credit
	st.finish(errors.New("rack3 went away"))
	select {
	case err := <-wrote:
		if err == nil {
			t.Error("write to an ended child succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("writer still blocked after the child ended")
	}
}
