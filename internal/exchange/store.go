// Package exchange is the controller's store for data hosts share: values a
// host exports (a public key, an address), resources it exports for others
// to realize, and every host's facts. It lives in etcd, reached through the
// etcd client only: either a member embedded in this controller (started
// when a run needs it, on a unix socket in a 0700 directory) or an external
// cluster shared by several controllers. Agents never talk to etcd; they
// send their exports to their controller over the channel they already have.
package exchange

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Kinds of entries, the first segment of a key under the cluster prefix.
const (
	KindValue    = "value"    // value/<name>/<host>
	KindResource = "resource" // resource/<host>/<role>/<kind:name>
	KindFacts    = "facts"    // facts/<host>
)

// Entry is one stored item. Host, Run and Time say who wrote it and when;
// Data is the payload (a JSON string for values, the params object for
// resources, the facts object for facts).
type Entry struct {
	Kind string          `json:"kind"`
	Name string          `json:"name"` // value name, resource ID, or "" for facts
	Host string          `json:"host"`
	Role string          `json:"role,omitempty"`
	Run  string          `json:"run"`
	Time time.Time       `json:"time"`
	Tag  string          `json:"tag,omitempty"` // exported resources only
	Data json.RawMessage `json:"data"`
}

// Key is where e lives, below the cluster prefix.
func (e Entry) Key() string {
	switch e.Kind {
	case KindValue:
		return KindValue + "/" + esc(e.Name) + "/" + esc(e.Host)
	case KindResource:
		return KindResource + "/" + esc(e.Host) + "/" + esc(e.Role) + "/" + esc(e.Name)
	default:
		return KindFacts + "/" + esc(e.Host)
	}
}

func esc(s string) string { return url.PathEscape(s) }

// Store is a namespace ("cluster") in an etcd cluster.
type Store struct {
	cli    *clientv3.Client
	prefix string
	member *member // nil for an external cluster
	// Embedded says whether the store runs in this process, and StartTime
	// how long the embedded member took to serve.
	Embedded  bool
	StartTime time.Duration
}

// opTimeout bounds every etcd request: a lost cluster must fail the run,
// not hang it.
const opTimeout = 10 * time.Second

// Cluster returns the namespace name.
func (s *Store) Cluster() string {
	return strings.TrimSuffix(strings.TrimPrefix(s.prefix, "/herd/"), "/")
}

// Close ends the client and stops the embedded member, if any.
func (s *Store) Close() error {
	err := s.cli.Close()
	if s.member != nil {
		s.member.stop()
	}
	return err
}

// Client is the underlying etcd client (for locks).
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix is the key prefix of this store's cluster namespace.
func (s *Store) Prefix() string { return s.prefix }

// Publish writes a host's exports of one role in one transaction: its
// values, its facts, and its exported resources, which replace the ones the
// host exported in that role before (a resource no longer exported goes
// away). Either everything is written or nothing.
func (s *Store) Publish(ctx context.Context, host, role string, entries []Entry, replaceResources bool) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var ops []clientv3.Op
	keep := map[string]bool{}
	for _, e := range entries {
		keep[s.prefix+e.Key()] = true
	}
	if replaceResources {
		// etcd refuses a transaction that deletes a range and puts inside
		// it, so the stale keys are deleted one by one.
		old, err := s.cli.Get(ctx, s.prefix+KindResource+"/"+esc(host)+"/"+esc(role)+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return fmt.Errorf("exchange: reading %s's exports: %w", host, err)
		}
		for _, kv := range old.Kvs {
			if !keep[string(kv.Key)] {
				ops = append(ops, clientv3.OpDelete(string(kv.Key)))
			}
		}
	}
	for _, e := range entries {
		if e.Host != host {
			return fmt.Errorf("exchange: entry for host %s published as %s", e.Host, host)
		}
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		ops = append(ops, clientv3.OpPut(s.prefix+e.Key(), string(b)))
	}
	if len(ops) == 0 {
		return nil
	}
	if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		return fmt.Errorf("exchange: publishing %s's exports: %w", host, err)
	}
	return nil
}

// List returns the entries whose key starts with prefix (below the cluster
// prefix, e.g. "value/" or "" for all), sorted by key.
func (s *Store) List(ctx context.Context, prefix string) ([]Entry, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("exchange: reading %s: %w", s.prefix+prefix, err)
	}
	out := make([]Entry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var e Entry
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			return nil, fmt.Errorf("exchange: entry %s is not valid: %v", kv.Key, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Match selects entries for get and forget: by kind, name and host, each
// empty for "any".
type Match struct{ Kind, Name, Host string }

func (m Match) ok(e Entry) bool {
	return (m.Kind == "" || m.Kind == e.Kind) && (m.Name == "" || m.Name == e.Name) && (m.Host == "" || m.Host == e.Host)
}

// Find returns the entries m selects.
func (s *Store) Find(ctx context.Context, m Match) ([]Entry, error) {
	all, err := s.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range all {
		if m.ok(e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Forget deletes the entries m selects, in one transaction, and returns
// how many there were.
func (s *Store) Forget(ctx context.Context, m Match) (int, error) {
	es, err := s.Find(ctx, m)
	if err != nil || len(es) == 0 {
		return 0, err
	}
	ops := make([]clientv3.Op, len(es))
	for i, e := range es {
		ops[i] = clientv3.OpDelete(s.prefix + e.Key())
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if _, err := s.cli.Txn(ctx).Then(ops...).Commit(); err != nil {
		return 0, fmt.Errorf("exchange: forgetting: %w", err)
	}
	return len(es), nil
}

// Hosts lists the hosts that have entries, sorted.
func Hosts(es []Entry) []string {
	set := map[string]bool{}
	for _, e := range es {
		set[e.Host] = true
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}
