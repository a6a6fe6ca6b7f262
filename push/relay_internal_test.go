package push

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/herd-project/herd/wire"
)

// The controller signs only for a child connection it opened, only while
// it authenticates, and only with the keys offered for it: a parent cannot
// use it as a signing oracle for connections of its own.
func TestRelaySignsOnlyForAuthenticatingChildren(t *testing.T) {
	newSigner := func() ssh.Signer {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ours, other := newSigner(), newSigner()
	hostKey := newSigner().PublicKey()
	tests := []struct {
		name    string
		started bool
		ask     wire.RelayAsk
		wantErr string // "" = a valid signature (sign) or acceptance (hostkey)
	}{
		{"sign while authenticating", false, wire.RelayAsk{What: "sign", Key: ours.PublicKey().Marshal(), Data: []byte("session")}, ""},
		{"sign after the agent spoke", true, wire.RelayAsk{What: "sign", Key: ours.PublicKey().Marshal(), Data: []byte("session")}, "not authenticating"},
		{"sign with a key not offered", false, wire.RelayAsk{What: "sign", Key: other.PublicKey().Marshal(), Data: []byte("x")}, "not a key offered"},
		{"known host key", false, wire.RelayAsk{What: "hostkey", Key: hostKey.Marshal()}, ""},
		{"other host key", false, wire.RelayAsk{What: "hostkey", Key: other.PublicKey().Marshal()}, "HOST KEY CHANGED"},
		{"unknown question", false, wire.RelayAsk{What: "shell", Key: hostKey.Marshal()}, "unknown question"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w := io.Pipe()
			ac := &agentConn{name: "bastion", wc: wire.NewConn(nil, w, wire.Options{})}
			h := &relayHub{ac: ac, children: map[uint64]*relayStream{}}
			st := &relayStream{id: 1, started: tt.started, spec: relaySpec{
				name: "rack1", signers: []ssh.Signer{ours},
				hostKey: func(k ssh.PublicKey) error {
					if string(k.Marshal()) != string(hostKey.Marshal()) {
						return errors.New("HOST KEY CHANGED")
					}
					return nil
				},
			}}
			tt.ask.ID, tt.ask.Seq = 1, 7
			go h.answer(st, &tt.ask)
			a, err := wire.Expect[wire.RelayAnswer](wire.NewConn(r, nil, wire.Options{}))
			if err != nil {
				t.Fatal(err)
			}
			if a.ID != 1 || a.Seq != 7 {
				t.Errorf("answer for %d/%d, want 1/7", a.ID, a.Seq)
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
				if err := ours.PublicKey().Verify(tt.ask.Data, sig); err != nil {
					t.Errorf("signature does not verify: %v", err)
				}
			}
		})
	}
}
