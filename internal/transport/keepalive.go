package transport

import (
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// keepAliveMisses is OpenSSH's ServerAliveCountMax default.
const keepAliveMisses = 3

// KeepAlive closes c when its server stops answering, so that reads on its
// sessions fail instead of hanging on a frozen or vanished host. It sends
// keepalive@openssh.com every interval until done is closed; after three
// intervals without a reply it calls dead with how long the server was
// silent, just before closing c, so the failure can name its cause rather
// than the closed stream. The controller runs it for its own connections,
// a relay agent for its children's.
func KeepAlive(done <-chan struct{}, c *ssh.Client, interval time.Duration, dead func(silent time.Duration)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastReply atomic.Int64
	lastReply.Store(time.Now().UnixNano())
	var pending atomic.Bool
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if silent := time.Since(time.Unix(0, lastReply.Load())); silent > keepAliveMisses*interval {
			dead(silent)
			c.Close()
			return
		}
		if pending.CompareAndSwap(false, true) {
			go func() {
				defer pending.Store(false)
				// Any reply counts, including OpenSSH's "failure" for this
				// request type: it proves the peer is alive.
				if _, _, err := c.SendRequest("keepalive@openssh.com", true, nil); err == nil {
					lastReply.Store(time.Now().UnixNano())
				}
			}()
		}
	}
}
