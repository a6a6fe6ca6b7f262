package push

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"

	"github.com/herd-project/herd/internal/exchange"
	"github.com/herd-project/herd/internal/wire"
)

// processNonce tells this controller process apart from every other one,
// on this machine or another, in the run lock's token.
var processNonce = func() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}()

// lockRequest is what every agent of this run tells the host's run lock
// (package agent): who is applying, so a run that finds the host locked can
// name them, and how long to wait for another run (--lock-wait, lock_wait
// in defaults.toml). The token is the same for all agents of this run, and
// different for any other run.
func (r *runner) lockRequest() *wire.RunLock {
	wait := wire.DefaultLockWait
	if r.o.Defaults.LockWait != nil {
		wait = *r.o.Defaults.LockWait
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return &wire.RunLock{Wait: wait, User: name, Host: host, Pid: os.Getpid(), Run: fmt.Sprintf("%s-%p", processNonce, r)}
}

// clusterLock takes the host's lock in a shared exchange (package exchange)
// before its first change: the same user/host/pid the run lock records.
func (r *runner) clusterLock(ctx context.Context, host string) error {
	if r.xv == nil || !r.o.ExchangeLocks || r.o.Check {
		return nil
	}
	lr := r.lockRequest()
	h := exchange.Holder{User: lr.User, Controller: lr.Host, Pid: lr.Pid, Run: r.xv.run, Since: r.started}
	return r.xv.lockHost(ctx, host, h, lr.Wait)
}
