package transport

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func testHostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A fleet's known_hosts is parsed once for all its connections, not once
// per connection (which kept a copy of the whole file per host: O(hosts²)
// memory, ~400 KB per host at 1,000 hosts); a change to the file (accept-new
// appends to it) is seen by the next connection.
func TestKnownHostsParsedOnceForAllConnections(t *testing.T) {
	const hosts = 1000
	file := filepath.Join(t.TempDir(), "known_hosts")
	var b strings.Builder
	keys := make([]ssh.PublicKey, hosts)
	for i := range keys {
		keys[i] = testHostKey(t)
		fmt.Fprintf(&b, "10.9.%d.%d %s", i/250, i%250+2, ssh.MarshalAuthorizedKey(keys[i]))
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	endpointFor := func(i int) *endpoint {
		return &endpoint{name: fmt.Sprint("host", i), host: fmt.Sprintf("10.9.%d.%d", i/250, i%250+2), port: 22, knownHosts: []string{file}, check: true}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	parses := knownHostsDBs.parses
	held := make([]*hostKeys, 0, hosts)
	for i := 0; i < hosts; i++ {
		h, err := newHostKeys(endpointFor(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.callback("", nil, keys[i]); err != nil {
			t.Fatalf("host %d: its own key refused: %v", i, err)
		}
		held = append(held, h)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(held)
	if n := knownHostsDBs.parses - parses; n != 1 {
		t.Errorf("known_hosts parsed %d times for %d connections, want once", n, hosts)
	}
	// Parsed per connection, 1,000 connections held ~400 MB; shared, the
	// database and the per-connection state fit in a few MB.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
		t.Errorf("heap grew %d KB for %d connections' host key checkers, want a shared database", grew>>10, hosts)
	}
	// A host added to the file is known to the next connection.
	extra := testHostKey(t)
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "10.9.200.2 %s", ssh.MarshalAuthorizedKey(extra))
	f.Close()
	h, err := newHostKeys(&endpoint{name: "new", host: "10.9.200.2", port: 22, knownHosts: []string{file}, check: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.callback("", nil, extra); err != nil {
		t.Errorf("a host added to known_hosts after the first parse: %v", err)
	}
	if err := h.callback("", nil, keys[0]); err == nil {
		t.Errorf("the new host accepted another host's key")
	}
}
