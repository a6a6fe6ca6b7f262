package push

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// A parent that ignores the window fails that child with an error naming
// it and tells the parent to hang up, instead of growing the controller's
// buffer.
func TestRelayStreamFailsWhenTheParentOverrunsItsBuffer(t *testing.T) {
	r, w := io.Pipe()
	defer r.Close()
	h := &relayHub{ac: &agentConn{name: "racktop", wc: wire.NewConn(nil, w, wire.Options{})}, children: map[uint64]*relayStream{}}
	st := h.newStream(3, relaySpec{name: "rack3"})
	h.children[3] = st
	chunk := bytes.Repeat([]byte{'x'}, 256<<10)
	for range 4 {
		h.handle(&wire.RelayData{ID: 3, Data: chunk}) // exactly the window: fine
	}
	if h.child(3) == nil {
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
	h.handle(&wire.RelayData{ID: 3, Data: []byte("one more")})
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
func TestRelayWriterWaitsForTheParentsCredit(t *testing.T) {
	r, w := io.Pipe()
	defer r.Close()
	h := &relayHub{ac: &agentConn{name: "racktop", wc: wire.NewConn(nil, w, wire.Options{})}, children: map[uint64]*relayStream{}}
	st := h.newStream(3, relaySpec{name: "rack3"})
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
		_, err := (&relayWriter{h: h, st: st}).Write(make([]byte, total))
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
	time.Sleep(200 * time.Millisecond)
	if got := sent.Load(); got != wire.RelayWindow {
		t.Fatalf("%d bytes sent without an acknowledgement, want the window of %d", got, wire.RelayWindow)
	}
	h.handle(&wire.RelayData{ID: 3, Ack: wire.RelayAckEvery})
	waitFor(wire.RelayWindow + wire.RelayAckEvery)
	h.handle(&wire.RelayData{ID: 3, Ack: total})
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	waitFor(total)

	// A writer waiting for credit is released when the child ends.
	go func() {
		_, err := (&relayWriter{h: h, st: st}).Write(make([]byte, 2*wire.RelayWindow))
		wrote <- err
	}()
	time.Sleep(50 * time.Millisecond)
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
