package lab

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(RunTests(m)) }

// needSSH skips tests that drive the OpenSSH client when it is missing.
func needSSH(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("lab: no OpenSSH client (apt-get install openssh-client)")
	}
}

// sshRun runs the OpenSSH client with the lab's ssh_config: args are ssh
// arguments (destination, command), stdin may be nil.
func sshRun(t *testing.T, l *Lab, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", append([]string{"-F", l.SSHConfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func TestHostsHaveTheirOwnNameAndHostKey(t *testing.T) {
	l := Shared(t)
	needSSH(t)
	seenKeys := map[string]string{}
	for _, h := range l.Hosts {
		// StrictHostKeyChecking with only the lab's known_hosts: success
		// proves the host presented the key the lab recorded for it.
		out, err := sshRun(t, l, "", h.Name, "hostname")
		if err != nil {
			t.Fatalf("ssh %s hostname: %v: %s", h.Name, err, out)
		}
		if out != h.Name {
			t.Errorf("host %s says its hostname is %q", h.Name, out)
		}
		key := string(h.HostKey.Marshal())
		if other, dup := seenKeys[key]; dup {
			t.Errorf("hosts %s and %s share a host key", h.Name, other)
		}
		seenKeys[key] = h.Name
	}
	if want := 7; len(l.Hosts) != want || len(seenKeys) != want {
		t.Errorf("want %d hosts with distinct host keys, got %d hosts, %d keys", want, len(l.Hosts), len(seenKeys))
	}
}

func TestFilesWrittenOnOneHostStayThere(t *testing.T) {
	l := Shared(t)
	needSSH(t)
	h1, h2 := l.Host("host1"), l.Host("host2")
	const path = "/root/herd-lab-marker"
	if out, err := sshRun(t, l, "", "host1", "echo written-on-host1 > "+path); err != nil {
		t.Fatalf("write on host1: %v: %s", err, out)
	}
	got, err := h1.ReadFile(path)
	if err != nil || string(got) != "written-on-host1\n" {
		t.Errorf("host1.ReadFile(%s) = %q, %v; want the content written over ssh", path, got, err)
	}
	if _, err := os.Stat(h1.Upper + path); err != nil {
		t.Errorf("the write is not in host1's upper layer: %v", err)
	}
	if _, err := h2.ReadFile(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("host2 sees host1's file (err %v)", err)
	}
	if out, err := sshRun(t, l, "", "host2", "test ! -e "+path); err != nil {
		t.Errorf("host2 over ssh sees host1's file: %v %s", err, out)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the controller's own %s exists: a host wrote through to the real root", path)
	}
}

func TestExecRunsInsideTheHost(t *testing.T) {
	l := Shared(t)
	for _, h := range []*Host{l.Host("host2"), l.Host("rack1")} {
		out, err := h.Exec(context.Background(), "hostname")
		if err != nil || strings.TrimSpace(string(out)) != h.Name {
			t.Errorf("%s: Exec hostname = %q, %v", h.Name, out, err)
		}
	}
}
