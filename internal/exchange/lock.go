package exchange

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Holder identifies a controller run holding host locks.
type Holder struct {
	User       string    `json:"user"`
	Controller string    `json:"controller"` // the controller's host name
	Pid        int       `json:"pid"`
	Run        string    `json:"run"`
	Since      time.Time `json:"since"`
}

func (h Holder) String() string {
	return fmt.Sprintf("%s@%s pid %d (run %s) since %s", h.User, h.Controller, h.Pid, h.Run, h.Since.Format(time.RFC3339))
}

// Locker takes per-host locks for one controller run. The locks live on one
// lease kept alive while the controller lives: a controller that dies
// (SIGKILL, lost laptop) releases them when the lease's TTL runs out.
type Locker struct {
	s      *Store
	sess   *concurrency.Session
	holder Holder
	value  string
}

// NewLocker starts the run's lease (ttl seconds, at least 2).
func (s *Store) NewLocker(ctx context.Context, h Holder, ttl int) (*Locker, error) {
	if ttl < 2 {
		ttl = 2
	}
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(ttl), concurrency.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("exchange: lease for host locks: %w", err)
	}
	b, _ := json.Marshal(h)
	return &Locker{s: s, sess: sess, holder: h, value: string(b)}, nil
}

func (l *Locker) key(host string) string { return l.s.prefix + "lock/" + esc(host) }

// Lock takes host's lock, waiting up to wait for another run to release
// it; on timeout the error names the holder.
func (l *Locker) Lock(ctx context.Context, host string, wait time.Duration) error {
	key := l.key(host)
	deadline := time.Now().Add(wait)
	for {
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		resp, err := l.s.cli.Txn(cctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, l.value, clientv3.WithLease(l.sess.Lease()))).
			Else(clientv3.OpGet(key)).Commit()
		cancel()
		if err != nil {
			return fmt.Errorf("exchange: lock for %s: %w", host, err)
		}
		if resp.Succeeded {
			return nil
		}
		var other Holder
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			if string(kvs[0].Value) == l.value {
				return nil // this run holds it already
			}
			_ = json.Unmarshal(kvs[0].Value, &other)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is locked by another controller: %s (waited %s)", host, other, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Close releases every lock of the run (revokes the lease).
func (l *Locker) Close() error { return l.sess.Close() }
