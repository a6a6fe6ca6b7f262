package transport

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestParseStrictHostKeys(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"yes", StrictYes}, {"ask", StrictYes}, {" Yes ", StrictYes},
		{"accept-new", AcceptNew}, {"no", AcceptNew}, {"off", AcceptNew},
		{"maybe", ""}, {"", ""},
	} {
		got, err := ParseStrictHostKeys(tt.in)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("ParseStrictHostKeys(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func newKey(t *testing.T) ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ssh.NewPublicKey(pub)
	return k
}

func TestRecordHostKeyFormat(t *testing.T) {
	key := newKey(t)
	blob := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	for _, tt := range []struct {
		addr, want string
		hash       bool
	}{
		{addr: "web1.example.com:22", want: "web1.example.com " + blob},
		{addr: "10.0.0.5:2222", want: "[10.0.0.5]:2222 " + blob},
		{addr: "[fd00::5]:22", want: "fd00::5 " + blob},
		{addr: "10.0.0.5:22", hash: true},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "sub", "known_hosts")
			if err := recordHostKey(file, tt.addr, key, tt.hash); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(file)
			if tt.hash {
				if !strings.HasPrefix(string(b), "|1|") || strings.Contains(string(b), "10.0.0.5") {
					t.Errorf("hashed entry is %q", b)
				}
			} else if string(b) != tt.want+"\n" {
				t.Errorf("recorded %q, want %q", b, tt.want+"\n")
			}
			db, err := knownhosts.New(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := db(tt.addr, anyAddr, key); err != nil {
				t.Errorf("the recorded key does not verify %s: %v", tt.addr, err)
			}
			if st, _ := os.Stat(filepath.Dir(file)); st.Mode().Perm() != 0o700 {
				t.Errorf("made directory with %v, want 0700", st.Mode().Perm())
			}
			if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
				t.Errorf("made file with %v, want 0600", st.Mode().Perm())
			}
		})
	}
}

// UserKnownHostsFile /dev/null (or none) with accept-new: ssh connects and
// remembers nothing; so does herd.
func TestRecordHostKeyDevNull(t *testing.T) {
	if err := recordHostKey(os.DevNull, "a:22", newKey(t), false); err != nil {
		t.Fatal(err)
	}
}

// A file whose last line has no newline is not glued to the new entry.
func TestRecordHostKeyAfterUnterminatedLine(t *testing.T) {
	other, key := newKey(t), newKey(t)
	file := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(file, []byte(strings.TrimSpace(knownhosts.Line([]string{"a"}, other))), 0o600)
	if err := recordHostKey(file, "b:22", key, false); err != nil {
		t.Fatal(err)
	}
	db, err := knownhosts.New(file)
	if err != nil {
		t.Fatal(err)
	}
	if errA, errB := db("a:22", anyAddr, other), db("b:22", anyAddr, key); errA != nil || errB != nil {
		t.Errorf("after appending: a: %v, b: %v", errA, errB)
	}
}

// Parallel first connections: each host is written once, and a connection
// that saw another key than the one recorded meanwhile is refused.
func TestRecordHostKeyConcurrent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "known_hosts")
	keys := map[string]ssh.PublicKey{}
	for i := range 10 {
		keys[fmt.Sprintf("h%d:22", i)] = newKey(t)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 5 {
		for addr, key := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- recordHostKey(file, addr, key, false)
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	b, _ := os.ReadFile(file)
	if n := strings.Count(string(b), "\n"); n != len(keys) {
		t.Errorf("%d lines for %d hosts:\n%s", n, len(keys), b)
	}
	err := recordHostKey(file, "h3:22", newKey(t), false)
	if !errors.Is(err, ErrHostKeyChanged) || !strings.Contains(err.Error(), file+":") {
		t.Errorf("recording a second key for h3: %v, want %v naming %s", err, ErrHostKeyChanged, file)
	}
}

func TestResolveStrictHostKeys(t *testing.T) {
	cfg := writeSSHConfig(t, `
Host lax
  StrictHostKeyChecking no
  HashKnownHosts yes
Host strict
  StrictHostKeyChecking ask
Host broken
  StrictHostKeyChecking sometimes
Host nofile
  UserKnownHostsFile none
`)
	sc, err := loadSSHConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, explicit string
		check          bool
		acceptNew      bool
		wantErr        string
	}{
		{name: "other", check: true},
		{name: "lax", check: true, acceptNew: true},
		{name: "strict", check: true},
		{name: "strict", explicit: AcceptNew, check: true, acceptNew: true},
		{name: "lax", explicit: StrictYes, check: true},
		{name: "lax", check: false},
		{name: "broken", check: true, wantErr: "host broken: StrictHostKeyChecking in " + cfg + `: "sometimes"`},
		{name: "other", explicit: "perhaps", check: true, wantErr: `host other: strict host key checking: "perhaps"`},
	} {
		e, err := sc.resolve(Target{Name: tt.name, StrictHostKeys: tt.explicit, CheckHostKeys: tt.check})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s/%q: err = %v, want %q", tt.name, tt.explicit, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.acceptNew != tt.acceptNew {
			t.Errorf("%s/%q/check=%v: acceptNew = %v, want %v", tt.name, tt.explicit, tt.check, e.acceptNew, tt.acceptNew)
		}
	}
	if e, _ := sc.resolve(Target{Name: "lax", CheckHostKeys: true}); !e.hashKnownHosts {
		t.Error("HashKnownHosts yes not honoured")
	}
	if e, _ := sc.resolve(Target{Name: "nofile", CheckHostKeys: true}); len(e.knownHosts) != 1 || e.knownHosts[0] != os.DevNull {
		t.Errorf("UserKnownHostsFile none gives %v, want [%s]", e.knownHosts, os.DevNull)
	}
}

// TestHostKeyAlgorithms: the key types asked for follow what
// known_hosts holds for the host:port, in every form OpenSSH writes.
func TestHostKeyAlgorithms(t *testing.T) {
	ed := newKey(t)
	dir := t.TempDir()
	line := func(host string, hash bool) string {
		if hash {
			host = knownhosts.HashHostname(host)
		}
		return knownhosts.Line([]string{host}, ed) + "\n"
	}
	for _, tt := range []struct {
		name, content string
		port          int
		want          []string
	}{
		{name: "plain, port 22", content: line("10.0.0.5", false), want: []string{ssh.KeyAlgoED25519}},
		{name: "hashed, port 22", content: line("10.0.0.5", true), want: []string{ssh.KeyAlgoED25519}},
		{name: "[host]:port", content: line("[10.0.0.5]:2222", false), port: 2222, want: []string{ssh.KeyAlgoED25519}},
		{name: "hashed [host]:port", content: line("[10.0.0.5]:2222", true), port: 2222, want: []string{ssh.KeyAlgoED25519}},
		{name: "other port only", content: line("[10.0.0.5]:2222", false), want: defaultHostKeyAlgorithms},
		{name: "other host only", content: line("10.0.0.6", false), want: defaultHostKeyAlgorithms},
	} {
		t.Run(tt.name, func(t *testing.T) {
			kh := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
			os.WriteFile(kh, []byte(tt.content), 0o600)
			target := Target{Name: "web", Address: "10.0.0.5", Port: tt.port, CheckHostKeys: true, KnownHosts: []string{kh}}
			e, err := (&sshConfig{}).resolve(target)
			if err != nil {
				t.Fatal(err)
			}
			hk, err := newHostKeys(e)
			if err != nil {
				t.Fatal(err)
			}
			cb, algos := hk.callback, hk.algorithms()
			if !slices.Equal(algos, tt.want) {
				t.Errorf("algorithms = %v, want %v", algos, tt.want)
			}
			// The callback checks the endpoint's host:port whatever address
			// the caller dialled.
			err = cb("elsewhere:1", anyAddr, ed)
			if known := len(tt.want) == 1; known != (err == nil) {
				t.Errorf("callback(known key) = %v, want success %v", err, known)
			}
			if err := cb("", anyAddr, newKey(t)); err == nil {
				t.Error("callback accepted a key known_hosts does not hold")
			}
		})
	}
}
