package exchange

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// startCluster starts a real 3-member etcd cluster on loopback, as an
// operator's external cluster would be, and returns its client endpoints.
func startCluster(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	var peers, clients []string
	for i := 0; i < 3; i++ {
		p, _ := freePort()
		c, _ := freePort()
		peers = append(peers, fmt.Sprintf("m%d=http://127.0.0.1:%d", i, p))
		clients = append(clients, fmt.Sprintf("http://127.0.0.1:%d", c))
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := 0; i < 3; i++ {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = filepath.Join(dir, cfg.Name)
		cfg.LogLevel = "error"
		cfg.LogOutputs = []string{"/dev/null"}
		pu, _ := url.Parse(strings.SplitN(peers[i], "=", 2)[1])
		cu, _ := url.Parse(clients[i])
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
		cfg.InitialCluster = strings.Join(peers, ",")
		cfg.InitialClusterToken = "herd-test"
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := embed.StartEtcd(cfg)
			if err != nil {
				errs[i] = err
				return
			}
			t.Cleanup(e.Close)
			select {
			case <-e.Server.ReadyNotify():
			case <-time.After(30 * time.Second):
				errs[i] = fmt.Errorf("member %d not ready", i)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return clients
}

// Two controllers on one external 3-member cluster, each talking to a
// different member: what one publishes the other reads; host locks
// serialize them and name the holder; a controller that dies without
// releasing its locks loses them when its lease expires.
func TestExternalClusterSharedAndLocked(t *testing.T) {
	eps := startCluster(t)
	ctx := context.Background()
	a, err := Open(ctx, Config{Endpoints: eps[:1], Cluster: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, Config{Endpoints: eps[2:], Cluster: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Embedded || b.Embedded {
		t.Fatal("external store reports embedded")
	}
	if err := a.Publish(ctx, "db1", "db", []Entry{value("db1", "addr", "10.0.0.5")}, false); err != nil {
		t.Fatal(err)
	}
	if es, err := b.Find(ctx, Match{Name: "addr"}); err != nil || len(es) != 1 || es[0].Host != "db1" {
		t.Fatalf("controller b reads %+v %v", es, err)
	}

	la, err := a.NewLocker(ctx, Holder{User: "alice", Controller: "laptop-a", Pid: 11, Run: "ra", Since: time.Now()}, 2)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.NewLocker(ctx, Holder{User: "bob", Controller: "laptop-b", Pid: 22, Run: "rb", Since: time.Now()}, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	if err := la.Lock(ctx, "web1", time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = lb.Lock(ctx, "web1", 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "alice@laptop-a pid 11") {
		t.Fatalf("second controller: %v, want a refusal naming alice@laptop-a pid 11", err)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 5*time.Second {
		t.Fatalf("waited %v, want about --lock-wait", d)
	}
	if err := lb.Lock(ctx, "web2", time.Second); err != nil {
		t.Fatalf("another host's lock: %v", err)
	}
	// Controller a releases: b gets web1 while waiting.
	go func() { time.Sleep(300 * time.Millisecond); la.Close() }()
	if err := lb.Lock(ctx, "web1", 5*time.Second); err != nil {
		t.Fatalf("after release: %v", err)
	}

	// A controller that dies holding a lock: its client goes away without
	// revoking the lease; the lock frees itself within the TTL.
	c, err := Open(ctx, Config{Endpoints: eps[1:2], Cluster: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	lc, err := c.NewLocker(ctx, Holder{User: "carol", Controller: "laptop-c", Pid: 33, Run: "rc", Since: time.Now()}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.Lock(ctx, "web3", time.Second); err != nil {
		t.Fatal(err)
	}
	lc.sess.Orphan() // stop keep-alives, as a SIGKILLed process would
	c.cli.Close()
	start = time.Now()
	if err := lb.Lock(ctx, "web3", 10*time.Second); err != nil {
		t.Fatalf("dead controller's lock never expired: %v", err)
	}
	t.Logf("dead controller's lock expired after %v", time.Since(start).Round(time.Millisecond))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("exchange: no free loopback port for etcd's peer listener: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
