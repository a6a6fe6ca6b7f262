//go:build !herd_noembed

package exchange

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The attack on the embedded member: another local user (uid 65534) tries
// every socket of the member, raw and with an etcd client, and any TCP or
// UDP port the member opened. The member must offer none of them:
// sockets live in a 0700 directory and are 0600 themselves, and nothing
// listens on the network.
func TestEmbeddedMemberUnreachableByOtherUsers(t *testing.T) {
	// The parent is open to all: only the member's own modes protect it.
	dir := filepath.Join(publicDir(t), "etcd")
	before := listeningInet(t)
	s := openEmbedded(t, dir, "attack")
	defer s.Close()
	if err := s.Publish(context.Background(), "db1", "db", []Entry{value("db1", "secret", "s3cret")}, true); err != nil {
		t.Fatal(err)
	}

	for l := range listeningInet(t) {
		if !before[l] {
			t.Errorf("the embedded member listens on the network: %s", l)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("etcd dir %s: %v %v, want 0700", dir, fi.Mode(), err)
	}
	socks := unixSocketsOf(t)
	if len(socks) < 2 {
		t.Fatalf("want the client and peer unix sockets, found %v", socks)
	}
	for _, p := range socks {
		if !strings.HasPrefix(p, dir+"/") {
			t.Errorf("unix socket %s outside the private directory %s", p, dir)
		}
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("socket %s: %v %v, want 0600", p, fi.Mode(), err)
		}
	}

	if os.Getuid() != 0 {
		t.Skip("connecting as another user needs root to switch uid")
	}
	// The attacker runs this test binary as nobody (copied where nobody
	// may execute it) in attackerMode: it dials each socket.
	bin := filepath.Join(publicDir(t), "exchange.test")
	copyFile(t, mustExecutable(t), bin, 0o755)
	for _, p := range socks {
		cmd := exec.Command(bin, "-test.run=^TestAttackerHelper$")
		cmd.Env = append(os.Environ(), "HERD_XCH_ATTACK="+p)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if strings.Contains(string(out), "ATTACK-OK") {
			t.Errorf("uid 65534 reached the member at %s:\n%s", p, out)
		} else if !strings.Contains(string(out), "ATTACK-REFUSED") {
			t.Errorf("attacker on %s did not run as intended (%v):\n%s", p, err, out)
		}
	}
	// A symlinked etcd directory is refused (it could point anywhere).
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), Config{DataDir: link}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("symlinked etcd dir: %v, want a refusal", err)
	}
}

// TestAttackerHelper is the attacker process of the test above; it does
// nothing unless HERD_XCH_ATTACK names a socket. It prints ATTACK-OK when
// it got in, ATTACK-REFUSED when every attempt failed.
func TestAttackerHelper(t *testing.T) {
	p := os.Getenv("HERD_XCH_ATTACK")
	if p == "" {
		return
	}
	if c, err := net.DialTimeout("unix", p, 2*time.Second); err == nil {
		c.Close()
		fmt.Println("ATTACK-OK raw connect as uid", os.Getuid())
		return
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"unix://" + p}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := cli.Get(ctx, "/", clientv3.WithPrefix())
		cancel()
		cli.Close()
		if err == nil {
			fmt.Println("ATTACK-OK read", len(r.Kvs), "keys as uid", os.Getuid())
			return
		}
	}
	fmt.Println("ATTACK-REFUSED as uid", os.Getuid())
}

// listeningInet lists this process's listening TCP sockets and bound UDP
// sockets (protocol and local address), from /proc.
func listeningInet(t *testing.T) map[string]bool {
	inodes := socketInodes(t)
	out := map[string]bool{}
	for _, f := range []string{"tcp", "tcp6", "udp", "udp6"} {
		for _, row := range procNetRows(t, "/proc/self/net/"+f) {
			// sl local_address rem_address st ... inode (field 9)
			if len(row) < 10 || !inodes[row[9]] {
				continue
			}
			if strings.HasPrefix(f, "tcp") && row[3] != "0A" {
				continue
			}
			out[f+" "+row[1]] = true
		}
	}
	return out
}

// unixSocketsOf lists the paths of this process's listening unix sockets.
func unixSocketsOf(t *testing.T) []string {
	inodes := socketInodes(t)
	var out []string
	for _, row := range procNetRows(t, "/proc/self/net/unix") {
		// Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening
		if len(row) >= 8 && inodes[row[6]] && row[3] == "00010000" {
			out = append(out, row[7])
		}
	}
	return out
}

func socketInodes(t *testing.T) map[string]bool {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && strings.HasPrefix(l, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	return out
}

func procNetRows(t *testing.T, path string) [][]string {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		rows = append(rows, strings.Fields(sc.Text()))
	}
	return rows
}

// publicDir is a directory any user may enter and read.
func publicDir(t *testing.T) string {
	d, err := os.MkdirTemp("", "herd-xch-attack")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
