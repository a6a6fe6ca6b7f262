package push_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/herd-project/herd/internal/agent"
	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/wire"
)

// The rogue relay parent: when rogueRelayConfig exists on a lab host, the
// test binary run there as "agent" is a compromised parent. It runs the
// real agent behind a man-in-the-middle on its own stream and sends the
// controller forged RelayAsks (the attack), recording every answer and
// every child connection the controller opened through it.
const (
	rogueRelayConfig  = "/tmp/herd-rogue-relay.json"
	rogueRelayResults = "/tmp/herd-rogue-relay-results.json"
	rogueSeq          = 1000 // forged asks' Seq, above what the real agent uses
)

type rogueRelayPlan struct {
	// Stray asks are sent right after the hello, for child connections
	// the controller never opened: a sign for the controller's own key
	// as root, and a host key question.
	Stray bool `json:"stray"`
	// Forge: on the first real sign request for a child, the rogue also
	// asks to sign that login as ForgeUser, and with OtherKey.
	Forge     bool   `json:"forge"`
	ForgeUser string `json:"forge_user"`
	Key       []byte `json:"key"`       // the controller's public key
	OtherKey  []byte `json:"other_key"` // a key the plan does not name
}

type rogueRelayResult struct {
	Opens   int                `json:"opens"` // child connections opened through this parent
	Asked   int                `json:"asked"` // forged asks sent
	Answers []wire.RelayAnswer `json:"answers"`
}

// rogueRelay is called by TestMain on the host; it reports whether it ran.
func rogueRelay(args []string) (code int, ran bool) {
	b, err := os.ReadFile(rogueRelayConfig)
	if err != nil || strings.Contains(strings.Join(args, " "), "become-socket") {
		return 0, false
	}
	var plan rogueRelayPlan
	if err := json.Unmarshal(b, &plan); err != nil {
		return 3, true
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	hash := fs.String("hash", "", "")
	stateDir := fs.String("state-dir", "", "")
	fs.String("log", "", "")
	fs.Parse(args)

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	go func() {
		agent.Serve(context.Background(), agent.Options{Hash: *hash, StateDir: *stateDir, LogPath: "-", In: inR, Out: outW})
		outW.Close()
	}()
	outer := wire.NewConn(os.Stdin, os.Stdout, wire.Options{})
	inner := wire.NewConn(outR, inW, wire.Options{})
	var mu sync.Mutex
	var res rogueRelayResult
	save := func(f func()) {
		mu.Lock()
		defer mu.Unlock()
		f()
		out, _ := json.Marshal(res)
		os.WriteFile(rogueRelayResults, out, 0o600)
	}
	forge := func(ask *wire.RelayAsk) {
		save(func() { res.Asked++ })
		outer.Send(ask)
	}
	var forged sync.Once
	done := make(chan struct{})
	go func() { // agent → controller
		defer close(done)
		for {
			m, err := inner.Recv()
			if err != nil {
				return
			}
			if ask, ok := m.(*wire.RelayAsk); ok && ask.What == "sign" && plan.Forge {
				forged.Do(func() {
					session := rogueSession(ask.Data)
					forge(&wire.RelayAsk{ID: ask.ID, Seq: rogueSeq, What: "sign", Key: ask.Key, Algorithm: ask.Algorithm,
						Data: rogueUserauth(session, plan.ForgeUser, ask.Key)})
					forge(&wire.RelayAsk{ID: ask.ID, Seq: rogueSeq + 1, What: "sign", Key: plan.OtherKey,
						Data: rogueUserauth(session, "root", plan.OtherKey)})
				})
			}
			if outer.Send(m) != nil {
				return
			}
			if _, ok := m.(*wire.Hello); ok && plan.Stray {
				for id := uint64(1); id <= 2; id++ {
					forge(&wire.RelayAsk{ID: id, Seq: rogueSeq, What: "sign", Key: plan.Key,
						Data: rogueUserauth([]byte("forged-session-identifier-012345"), "root", plan.Key)})
				}
				forge(&wire.RelayAsk{ID: 3, Seq: rogueSeq, What: "hostkey", Key: plan.Key})
			}
		}
	}()
	for { // controller → agent
		m, err := outer.Recv()
		if err != nil {
			break
		}
		switch v := m.(type) {
		case *wire.RelayAnswer:
			if v.Seq >= rogueSeq {
				save(func() { res.Answers = append(res.Answers, *v) })
				continue
			}
		case *wire.RelayOpen:
			save(func() { res.Opens++ })
		}
		if inner.Send(m) != nil {
			break
		}
	}
	inW.Close()
	<-done
	return 0, true
}

// rogueSession is the session identifier at the start of a real login
// request's signed data.
func rogueSession(data []byte) []byte {
	if len(data) < 4 {
		return nil
	}
	n := int(data[0])<<24 | int(data[1])<<16 | int(data[2])<<8 | int(data[3])
	if n > len(data)-4 {
		return nil
	}
	return data[4 : 4+n]
}

// rogueUserauth is what an SSH client signs to log in as user with key.
func rogueUserauth(session []byte, user string, key []byte) []byte {
	pub, err := ssh.ParsePublicKey(key)
	if err != nil {
		return nil
	}
	return ssh.Marshal(struct {
		Session               []byte
		Msg                   byte
		User, Service, Method string
		HasSig                bool
		Algo                  string
		Key                   []byte
	}{session, 50, user, "ssh-connection", "publickey", true, pub.Type(), key})
}

// armRogueRelay makes h a compromised parent for the next agent start.
func armRogueRelay(t *testing.T, l *lab.Lab, h *lab.Host, plan rogueRelayPlan) {
	t.Helper()
	b, err := os.ReadFile(l.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	plan.Key = signer.PublicKey().Marshal()
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _ := ssh.NewPublicKey(other)
	plan.OtherKey = otherPub.Marshal()
	os.Remove(h.Path(rogueRelayResults))
	if err := os.WriteFile(h.Path(rogueRelayConfig), must(json.Marshal(plan)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.Remove(h.Path(rogueRelayConfig))
		os.Remove(h.Path(rogueRelayResults))
	})
}

// rogueRelayOutcome waits (bounded) until the rogue has an answer to every
// forged ask, and returns what it recorded.
func rogueRelayOutcome(t *testing.T, h *lab.Host) rogueRelayResult {
	t.Helper()
	var res rogueRelayResult
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := h.ReadFile(rogueRelayResults)
		if err == nil {
			json.Unmarshal(b, &res)
		}
		if (res.Asked > 0 && len(res.Answers) == res.Asked) || time.Now().After(deadline) {
			return res
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func attackInventory(l *lab.Lab, mode string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[groups.relays.hosts]\n%q = \"herd_host=%s\"\n", "bastion", l.Host("bastion").Addr)
	fmt.Fprintf(&b, "[groups.targets.hosts]\n%q = \"herd_host=%s herd_via=bastion %s\"\n", "racktop", l.Host("racktop").Addr, mode)
	for _, n := range []string{"rack1", "rack2"} {
		fmt.Fprintf(&b, "%q = \"herd_host=%s herd_via=racktop %s\"\n", n, l.Host(n).Addr, mode)
	}
	return b.String()
}

const attackPolicy = `
inv = inventory("inventory.toml")

def main(host):
    file("/srv/attack", content = host.name + "\n")

role("targets", hosts = inv.filter(groups = "targets"), main = main)
`

func logs(rec *recorder, host, substr string) []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var out []string
	for _, e := range rec.events {
		if e.Type == event.Log && e.Host == host && strings.Contains(e.Msg, substr) {
			out = append(out, e.Msg)
		}
	}
	return out
}

// Default mode, compromised parent: racktop's agent asks the controller to
// sign a root login with the controller's own key (and to vouch for a host
// key) for connections it makes up. The controller answers every ask with
// a refusal and logs it; no child connection goes through racktop's agent
// at all (rack1 and rack2 are end-to-end SSH through racktop's sshd), and
// the children are still configured.
func TestDefaultViaParentCannotObtainASignature(t *testing.T) {
	l := treeLab(t)
	racktop := l.Host("racktop")
	armRogueRelay(t, l, racktop, rogueRelayPlan{Stray: true})
	dir := project(t, map[string]string{"inventory.toml": attackInventory(l, ""), "site.star": attackPolicy})
	rec := &recorder{}
	o := options(t, l, rec)
	o.Agent = testBinaryAgent(t) // the rogue runs from this test binary
	res := run(t, load(t, dir), o)
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("run failed:\n%s", rec.dump())
	}
	got := rogueRelayOutcome(t, racktop)
	if got.Asked != 3 || len(got.Answers) != 3 {
		t.Fatalf("rogue parent: %d forged asks, %d answers; want 3 and 3 (did the rogue run?)", got.Asked, len(got.Answers))
	}
	for _, a := range got.Answers {
		if a.Signature != nil || a.Error == "" {
			t.Errorf("ATTACK WORKED: the controller answered a forged ask for connection %d: %+v", a.ID, a)
		}
	}
	if got.Opens != 0 {
		t.Errorf("the controller opened %d child connections through racktop's agent, want none (end-to-end SSH)", got.Opens)
	}
	if refused := logs(rec, "racktop", "sign refused"); len(refused) != 2 {
		t.Errorf("controller logged %d refused sign asks from racktop, want 2: %q", len(refused), refused)
	} else {
		t.Logf("controller log: %s", refused[0])
	}
	for _, n := range []string{"rack1", "rack2"} {
		if b, err := l.Host(n).ReadFile("/srv/attack"); err != nil || string(b) != n+"\n" {
			t.Errorf("%s: /srv/attack = %q, %v", n, b, err)
		}
	}
}

// Trusted mode, compromised parent: while rack1's real login is being
// signed, racktop also asks for that login as another user and for one
// with a key the plan does not name. Both are refused and logged; the
// real login is signed (and logged) and rack1 is configured.
func TestTrustedViaParentCannotGetOtherLoginsSigned(t *testing.T) {
	l := treeLab(t)
	racktop := l.Host("racktop")
	armRogueRelay(t, l, racktop, rogueRelayPlan{Forge: true, ForgeUser: "deploy"})
	dir := project(t, map[string]string{"inventory.toml": attackInventory(l, "herd_via_mode=trusted"), "site.star": attackPolicy})
	rec := &recorder{}
	o := options(t, l, rec)
	o.Agent = testBinaryAgent(t) // the rogue runs from this test binary
	res := run(t, load(t, dir), o)
	if failed, unreachable := res.Failed(); failed || unreachable {
		t.Fatalf("run failed:\n%s", rec.dump())
	}
	got := rogueRelayOutcome(t, racktop)
	if got.Opens != 2 || got.Asked != 2 || len(got.Answers) != 2 {
		t.Fatalf("rogue parent: %d child connections, %d forged asks, %d answers; want 2, 2, 2", got.Opens, got.Asked, len(got.Answers))
	}
	want := map[uint64]string{rogueSeq: `a login as "deploy"`, rogueSeq + 1: "is not a key named for"}
	for _, a := range got.Answers {
		if a.Signature != nil || !strings.Contains(a.Error, want[a.Seq]) {
			t.Errorf("ATTACK WORKED or wrong refusal: forged ask %d answered %+v, want refusal %q", a.Seq, a, want[a.Seq])
		}
	}
	var child string
	for _, n := range []string{"rack1", "rack2"} {
		if r := logs(rec, n, "signature refused"); len(r) > 0 {
			child = n
			if len(r) != 2 {
				t.Errorf("%s: controller logged %d refusals, want 2: %q", n, len(r), r)
			}
			t.Logf("controller log: %s", strings.Join(r, "; "))
		}
		if len(logs(rec, n, "signed the login")) == 0 {
			t.Errorf("%s: no signature logged on the controller", n)
		}
		if b, err := l.Host(n).ReadFile("/srv/attack"); err != nil || string(b) != n+"\n" {
			t.Errorf("%s: /srv/attack = %q, %v", n, b, err)
		}
	}
	if child == "" {
		t.Errorf("no refusal logged for rack1 or rack2:\n%s", rec.dump())
	}
}
