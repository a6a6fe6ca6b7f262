package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// MuxStatus is one socket of the mux directory: a live mux's own account
// of itself, or Err saying why it could not be asked (a dead mux's stale
// socket).
type MuxStatus struct {
	MuxInfo
	Err error
}

// ListMuxes asks every mux in dir (DefaultMuxDir when "") about itself,
// each within a few seconds. A missing directory lists nothing.
func ListMuxes(dir string) ([]MuxStatus, error) {
	if dir == "" {
		dir = DefaultMuxDir()
	}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err := secureMuxDir(dir, false); err != nil {
		return nil, err
	}
	socks, err := filepath.Glob(filepath.Join(dir, "*.sock"))
	if err != nil {
		return nil, err
	}
	sort.Strings(socks)
	var out []MuxStatus
	for _, path := range socks {
		st := MuxStatus{MuxInfo: MuxInfo{Socket: path}}
		if info, err := muxRequest(path, "herd-mux-info"); err != nil {
			st.Err = err
		} else {
			st.MuxInfo = info
		}
		out = append(out, st)
	}
	return out, nil
}

// StopMuxes stops the muxes of dir serving host (its inventory name or
// address; "" = all) and removes stale sockets; it returns those it
// stopped or removed.
func StopMuxes(dir, host string) ([]MuxStatus, error) {
	all, err := ListMuxes(dir)
	if err != nil {
		return nil, err
	}
	var done []MuxStatus
	for _, st := range all {
		if st.Err != nil {
			if host == "" {
				os.Remove(st.Socket)
				done = append(done, st)
			}
			continue
		}
		if host != "" && st.Host != host && !strings.Contains(st.Where, "("+host+":") {
			continue
		}
		if _, err := muxRequest(st.Socket, "herd-mux-stop"); err != nil {
			st.Err = err
		}
		done = append(done, st)
	}
	return done, nil
}

// muxRequest logs in to the mux at path and sends one global request.
func muxRequest(path, req string) (MuxInfo, error) {
	var info MuxInfo
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := dialOwnSocket(ctx, path)
	if err != nil {
		return info, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	sc, chans, reqs, err := ssh.NewClientConn(conn, "mux", &ssh.ClientConfig{
		User:            "herd",
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // the peer's uid was checked above
		ClientVersion:   "SSH-2.0-herd",
	})
	if err != nil {
		return info, err
	}
	c := ssh.NewClient(sc, chans, reqs)
	defer c.Close()
	ok, payload, err := c.SendRequest(req, true, nil)
	switch {
	case err != nil:
		return info, err
	case !ok:
		return info, fmt.Errorf("%s refused", req)
	case len(payload) > 0:
		err = json.Unmarshal(payload, &info)
	}
	return info, err
}
