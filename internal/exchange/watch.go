package exchange

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Change is one entry written (or deleted) in the cluster's namespace, as
// an etcd watch reports it: by this controller, or by another one sharing
// the cluster. Deleted changes carry the entry as it was.
type Change struct {
	Entry   Entry
	Deleted bool
}

// Snapshot is List with the store revision it was read at, so that a
// Watch from Rev+1 misses nothing written after it.
func (s *Store) Snapshot(ctx context.Context) ([]Entry, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, 0, fmt.Errorf("exchange: reading %s: %w", s.prefix, err)
	}
	out := make([]Entry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if e, ok := s.decode(kv.Key, kv.Value); ok {
			out = append(out, e)
		}
	}
	return out, resp.Header.Revision, nil
}

// decode reads an entry, skipping the keys that are not entries (locks,
// the probe) and entries that do not parse.
func (s *Store) decode(key, value []byte) (Entry, bool) {
	k := strings.TrimPrefix(string(key), s.prefix)
	kind, _, _ := strings.Cut(k, "/")
	if kind != KindValue && kind != KindResource && kind != KindFacts {
		return Entry{}, false
	}
	var e Entry
	if json.Unmarshal(value, &e) != nil || e.Kind != kind {
		return Entry{}, false
	}
	return e, true
}

// Watch reports, in batches (an etcd watch response: one transaction, or
// several when catching up from an older revision), every entry
// written or deleted in the namespace from revision rev on, until ctx
// ends. The channel holds at most a few batches: a slow reader slows the
// watch rather than growing memory. It is closed when ctx ends or the
// watch fails (a compacted revision, a lost cluster); err then says why.
func (s *Store) Watch(ctx context.Context, rev int64) (<-chan []Change, func() error) {
	out := make(chan []Change, 4)
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(out)
		wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev), clientv3.WithPrevKV())
		for resp := range wch {
			if e := resp.Err(); e != nil {
				err = e
				return
			}
			var batch []Change
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					if ev.PrevKv == nil {
						continue
					}
					if e, ok := s.decode(ev.PrevKv.Key, ev.PrevKv.Value); ok {
						batch = append(batch, Change{Entry: e, Deleted: true})
					}
					continue
				}
				if e, ok := s.decode(ev.Kv.Key, ev.Kv.Value); ok {
					batch = append(batch, Change{Entry: e})
				}
			}
			if len(batch) == 0 {
				continue
			}
			select {
			case out <- batch:
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() == nil {
			err = fmt.Errorf("exchange: watch of %s ended", s.prefix)
		}
	}()
	return out, func() error { <-done; return err }
}
