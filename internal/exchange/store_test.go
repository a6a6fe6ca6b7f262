package exchange

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openEmbedded(t *testing.T, dir, cluster string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{DataDir: dir, Cluster: cluster})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedded etcd started in %v", s.StartTime)
	return s
}

func value(host, name, v string) Entry {
	b, _ := json.Marshal(v)
	return Entry{Kind: KindValue, Name: name, Host: host, Run: "r1", Time: time.Now(), Data: b}
}

// The embedded member keeps its data across restarts, listens for clients
// only on a socket in a directory no one else may enter, and namespaces
// keep clusters apart.
func TestEmbeddedPersistsAndNamespaces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	ctx := context.Background()
	s := openEmbedded(t, dir, "fleet-a")
	if err := s.Publish(ctx, "web1", "web", []Entry{value("web1", "addr", "10.0.0.1")}, true); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("etcd dir: %v %v, want mode 0700", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "client.sock")); err != nil {
		t.Fatalf("no client socket: %v", err)
	}
	s.Close()

	s = openEmbedded(t, dir, "fleet-a")
	es, err := s.List(ctx, "value/")
	if err != nil || len(es) != 1 || es[0].Host != "web1" || string(es[0].Data) != `"10.0.0.1"` || es[0].Run != "r1" {
		t.Fatalf("after restart: %+v %v", es, err)
	}
	s.Close()

	other := openEmbedded(t, dir, "fleet-b")
	defer other.Close()
	if es, err := other.List(ctx, ""); err != nil || len(es) != 0 {
		t.Fatalf("cluster fleet-b sees %+v %v, want nothing", es, err)
	}
}

// A resource that a host no longer exports is gone after its next publish;
// forget removes exactly what it matches.
func TestPublishReplacesResourcesAndForget(t *testing.T) {
	s := openEmbedded(t, filepath.Join(t.TempDir(), "etcd"), "c")
	defer s.Close()
	ctx := context.Background()
	res := func(host, id string) Entry {
		return Entry{Kind: KindResource, Name: id, Host: host, Role: "r", Run: "r1", Time: time.Now(), Data: json.RawMessage(`{}`)}
	}
	if err := s.Publish(ctx, "a", "r", []Entry{res("a", "file:/x"), res("a", "file:/y"), value("a", "k", "1")}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, "b", "r", []Entry{res("b", "file:/z")}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, "a", "r", []Entry{res("a", "file:/y")}, true); err != nil {
		t.Fatal(err)
	}
	es, _ := s.List(ctx, "resource/")
	var ids []string
	for _, e := range es {
		ids = append(ids, e.Host+" "+e.Name)
	}
	if len(ids) != 2 || ids[0] != "a file:/y" || ids[1] != "b file:/z" {
		t.Fatalf("resources %v, want [a file:/y, b file:/z]", ids)
	}
	if err := s.Publish(ctx, "a", "r", []Entry{value("b", "k", "x")}, false); err == nil {
		t.Fatal("publishing an entry for another host succeeded")
	}
	n, err := s.Forget(ctx, Match{Host: "a"})
	if err != nil || n != 2 {
		t.Fatalf("forget host a: %d %v, want 2", n, err)
	}
	if es, _ := s.List(ctx, ""); len(es) != 1 || es[0].Host != "b" {
		t.Fatalf("left %+v, want b's resource only", es)
	}
}

func TestClusterName(t *testing.T) {
	a, b := ClusterName("/x/hosts.toml"), ClusterName("/y/hosts.toml")
	if a == b || !clusterRE.MatchString(a) || a[:6] != "hosts-" {
		t.Fatalf("ClusterName: %q %q", a, b)
	}
	if _, err := Open(context.Background(), Config{Cluster: "a/b", DataDir: t.TempDir()}); err == nil {
		t.Fatal("cluster name with / accepted")
	}
}
