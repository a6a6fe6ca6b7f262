package main

import (
	"testing"
	"time"

	"github.com/herd-project/herd/internal/push"
)

// The live display: one line per change of a host's state, with since
// when, why, and the running count of hosts per state.
func TestWatchStatusLine(t *testing.T) {
	at := time.Date(2026, 12, 1, 21, 59, 38, 993e6, time.Local)
	for _, tc := range []struct {
		s    push.HostStatus
		t    push.Tally
		want string
	}{
		{push.HostStatus{Host: "web1", State: push.Converging, Since: at, Msg: "role web: whole plan (868 bytes sent)"},
			push.Tally{push.Converging: 1}, "21:59:38  web1 converging since 21:59:38.993: role web: whole plan (868 bytes sent)  [0 converged, 1 converging, 0 failed, 0 lost]"},
		{push.HostStatus{Host: "web1", State: push.Converged, Since: at},
			push.Tally{push.Converged: 2, push.HostLost: 1}, "21:59:38  web1 converged since 21:59:38.993  [2 converged, 0 converging, 0 failed, 1 lost]"},
		{push.HostStatus{Host: "db1", State: push.HostFailed, Since: at, Msg: "role db: file:/etc/x failed"},
			push.Tally{push.Converged: 2, push.HostFailed: 1}, "21:59:38  db1 failed since 21:59:38.993: role db: file:/etc/x failed  [2 converged, 0 converging, 1 failed, 0 lost]"},
		{push.HostStatus{Host: "db2", State: push.HostLost, Since: at, Msg: "connection lost: retrying in 1s"},
			push.Tally{push.HostLost: 1}, "21:59:38  db2 lost since 21:59:38.993: connection lost: retrying in 1s  [0 converged, 0 converging, 0 failed, 1 lost]"},
	} {
		if got := statusLine(tc.s, tc.t); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}
