package exchange

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A watch from a snapshot's revision misses nothing written after it,
// reports deletions with the entry as it was,
// nothing of another namespace or of locks, and ends with its context.
func TestWatchFollowsTheNamespace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etcd")
	ctx := context.Background()
	s := openEmbedded(t, dir, "fleet-a")
	defer s.Close()
	if err := s.Publish(ctx, "web1", "web", []Entry{value("web1", "addr", "10.0.0.1")}, true); err != nil {
		t.Fatal(err)
	}
	es, rev, err := s.Snapshot(ctx)
	if err != nil || len(es) != 1 {
		t.Fatalf("snapshot: %+v %v", es, err)
	}
	// Written before the watch starts, after the snapshot: still seen.
	if err := s.Publish(ctx, "web2", "web", []Entry{value("web2", "addr", "10.0.0.2"), value("web2", "port", "80")}, true); err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, Config{Endpoints: []string{"unix://" + dir + "/client.sock"}, Cluster: "fleet-b"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.Publish(ctx, "web1", "web", []Entry{value("web1", "addr", "elsewhere")}, true)
	l, err := s.NewLocker(ctx, Holder{User: "u"}, 5)
	if err != nil {
		t.Fatal(err)
	}
	l.Lock(ctx, "web1", time.Second)
	l.Close()
	if _, err := s.Forget(ctx, Match{Kind: KindValue, Name: "addr", Host: "web1"}); err != nil {
		t.Fatal(err)
	}

	wctx, cancel := context.WithCancel(ctx)
	ch, ended := s.Watch(wctx, rev+1)
	var got []Change
	for deadline := time.After(5 * time.Second); len(got) < 3; {
		select {
		case b := <-ch:
			got = append(got, b...)
		case <-deadline:
			t.Fatalf("changes within 5 s: %+v", got)
		}
	}
	if len(got) != 3 || got[0].Entry.Host != "web2" || got[1].Entry.Name != "port" || got[0].Deleted {
		t.Fatalf("changes = %+v, want web2's two values first", got)
	}
	if d := got[2]; !d.Deleted || d.Entry.Host != "web1" || string(d.Entry.Data) != `"10.0.0.1"` {
		t.Fatalf("third change = %+v, want web1's addr deleted (fleet-b and the lock unseen)", d)
	}
	// A write now comes as a batch of its own.
	if err := s.Publish(ctx, "web3", "web", []Entry{value("web3", "addr", "10.0.0.3")}, true); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-ch:
		if len(b) != 1 || b[0].Entry.Host != "web3" {
			t.Fatalf("live batch = %+v", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a live write not seen within 5 s")
	}
	cancel()
	for range ch {
	}
	if err := ended(); err != nil {
		t.Fatalf("a cancelled watch ended with %v", err)
	}
}
