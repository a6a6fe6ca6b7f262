package lab

import (
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/ssh"
)

// accounts are the user database files every host of a lab gets: the
// controller's own, with deploy and deploy-pw added and root's password set.
type accounts struct {
	passwd, group, shadow, gshadow string
	uid                            map[string]int
}

// newPassword makes a 24-character alphanumeric password: easy to pass on
// stdin or type into a prompt, hard to guess.
func newPassword() string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 24)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// hashPassword returns a crypt(3) bcrypt hash, which the hosts' libxcrypt
// verifies; the cost is minimal because these are throwaway test secrets.
func hashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	return string(h), err
}

func makeAccounts(pw Passwords) (*accounts, error) {
	read := func(p string) ([]string, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading the controller's %s: %w", p, err)
		}
		return strings.Split(strings.TrimRight(string(b), "\n"), "\n"), nil
	}
	passwd, err := read("/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := read("/etc/group")
	if err != nil {
		return nil, err
	}
	shadow, err := read("/etc/shadow")
	if err != nil {
		return nil, err
	}
	gshadow, _ := read("/etc/gshadow")
	ours := map[string]bool{UserDeploy: true, UserDeployPW: true}
	used := map[int]bool{}
	keep := func(lines []string, idField int) []string {
		var out []string
		for _, ln := range lines {
			f := strings.Split(ln, ":")
			if ln == "" || ours[f[0]] {
				continue
			}
			if idField > 0 && len(f) > idField {
				if id, err := strconv.Atoi(f[idField]); err == nil {
					used[id] = true
				}
			}
			out = append(out, ln)
		}
		return out
	}
	passwd, group, shadow, gshadow = keep(passwd, 2), keep(group, 2), keep(shadow, 0), keep(gshadow, 0)
	rootHash, err := hashPassword(pw.Root)
	if err != nil {
		return nil, err
	}
	pwHash, err := hashPassword(pw.DeployPW)
	if err != nil {
		return nil, err
	}
	days := strconv.FormatInt(time.Now().Unix()/86400, 10)
	for i, ln := range shadow {
		if f := strings.Split(ln, ":"); f[0] == "root" && len(f) > 2 {
			f[1], f[2] = rootHash, days
			shadow[i] = strings.Join(f, ":")
		}
	}
	a := &accounts{uid: map[string]int{}}
	id := 2000
	for _, u := range []struct{ name, hash string }{{UserDeploy, "*"}, {UserDeployPW, pwHash}} {
		for used[id] {
			id++
		}
		used[id] = true
		a.uid[u.name] = id
		passwd = append(passwd, fmt.Sprintf("%s:x:%d:%d:herd lab:/home/%s:/bin/bash", u.name, id, id, u.name))
		group = append(group, fmt.Sprintf("%s:x:%d:", u.name, id))
		// "*" is no password without locking the account: sshd refuses key
		// logins to locked ("!") accounts when PAM is off.
		shadow = append(shadow, fmt.Sprintf("%s:%s:%s:0:99999:7:::", u.name, u.hash, days))
		if gshadow != nil {
			gshadow = append(gshadow, u.name+":!::")
		}
	}
	j := func(l []string) string { return strings.Join(l, "\n") + "\n" }
	a.passwd, a.group, a.shadow = j(passwd), j(group), j(shadow)
	if gshadow != nil {
		a.gshadow = j(gshadow)
	}
	return a, nil
}

// Privilege rules the lab promises: deploy escalates without a password,
// deploy-pw with its own, with sudo and doas alike.
const (
	sudoersLab = "# herd lab\nDefaults lecture=never\n" +
		UserDeploy + " ALL=(ALL:ALL) NOPASSWD: ALL\n" +
		UserDeployPW + " ALL=(ALL:ALL) ALL\n"
	doasConf = "# herd lab\npermit nopass " + UserDeploy + " as root\npermit " + UserDeployPW + " as root\n"
)

// populate writes the host's identity, users, keys and sshd configuration
// into its root (so into its upper layer), before its sshd starts.
func (h *Host) populate(a *accounts, userKey ssh.PublicKey) error {
	hostKey, err := h.writeHostKey()
	if err != nil {
		return err
	}
	h.HostKey = hostKey
	var hosts strings.Builder
	hosts.WriteString("127.0.0.1\tlocalhost\n127.0.1.1\t" + h.Name + "\n")
	for _, o := range h.lab.Hosts {
		if o != h {
			hosts.WriteString(o.Addr + "\t" + o.Name + "\n")
		}
	}
	auth := ssh.MarshalAuthorizedKey(userKey)
	type file struct {
		path     string
		data     string
		mode     os.FileMode
		uid, gid int
	}
	files := []file{
		{"/etc/hostname", h.Name + "\n", 0o644, 0, 0},
		{"/etc/hosts", hosts.String(), 0o644, 0, 0},
		{"/etc/passwd", a.passwd, 0o644, 0, 0},
		{"/etc/group", a.group, 0o644, 0, 0},
		{"/etc/shadow", a.shadow, 0o640, 0, shadowGid()},
		{"/etc/sudoers.d/herd-lab", sudoersLab, 0o440, 0, 0},
		{"/etc/doas.conf", doasConf, 0o600, 0, 0},
		{sshdConfigPath, h.sshdConfig(), 0o644, 0, 0},
		{"/root/.ssh/authorized_keys", string(auth), 0o600, 0, 0},
	}
	if a.gshadow != "" {
		files = append(files, file{"/etc/gshadow", a.gshadow, 0o640, 0, shadowGid()})
	}
	// A lab host is a fresh machine: root's shell start-up files come from
	// /etc/skel, not from the controller's /root (whose .bashrc may run
	// slow tools such as pyenv on every SSH session, or wait on their locks).
	for _, name := range []string{".bashrc", ".profile"} {
		skel, err := os.ReadFile("/etc/skel/" + name)
		if err != nil {
			skel = []byte("# herd lab host\n")
		}
		files = append(files, file{"/root/" + name, string(skel), 0o644, 0, 0})
	}
	for _, user := range []string{UserDeploy, UserDeployPW} {
		id := a.uid[user]
		home := "/home/" + user
		for _, d := range []struct {
			p    string
			mode os.FileMode
		}{{home, 0o755}, {home + "/.ssh", 0o700}} {
			if err := os.MkdirAll(h.Path(d.p), d.mode); err != nil {
				return err
			}
			if err := os.Chown(h.Path(d.p), id, id); err != nil {
				return err
			}
		}
		files = append(files, file{home + "/.ssh/authorized_keys", string(auth), 0o600, id, id})
	}
	if err := os.MkdirAll(h.Path("/root/.ssh"), 0o700); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeFileAtomic(h.Path(f.path), []byte(f.data), f.mode); err != nil {
			return err
		}
		if err := os.Chown(h.Path(f.path), f.uid, f.gid); err != nil {
			return err
		}
	}
	return nil
}

// shadowGid is the gid of group shadow, which owns /etc/shadow on Debian.
func shadowGid() int {
	b, _ := os.ReadFile("/etc/group")
	for _, ln := range strings.Split(string(b), "\n") {
		if f := strings.Split(ln, ":"); len(f) > 2 && f[0] == "shadow" {
			if id, err := strconv.Atoi(f[2]); err == nil {
				return id
			}
		}
	}
	return 0
}
