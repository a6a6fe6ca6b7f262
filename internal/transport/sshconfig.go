package transport

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// endpoint is a Target after ssh_config and defaults were applied: every
// field is what will actually be used to connect.
type endpoint struct {
	name       string // inventory name or ProxyJump spec, for messages
	host       string
	port       int
	user       string
	password   string
	keyFiles   []string // explicit first, then ssh_config IdentityFile
	knownHosts []string
	check      bool
	// acceptNew records an unknown host key in knownHosts[0] instead of
	// refusing it (StrictHostKeyChecking accept-new); hashKnownHosts
	// writes it hashed (HashKnownHosts yes).
	acceptNew      bool
	hashKnownHosts bool
	jump           *endpoint
}

func (e *endpoint) addr() string { return joinHostPort(e.host, e.port) }

// key identifies a connection: the same inventory host reached as two users
// (roles with different ssh_user) needs two connections.
func (e *endpoint) key() string {
	k := e.name + "\x00" + e.user + "@" + e.addr()
	if e.jump != nil {
		k += "\x00via\x00" + e.jump.key()
	}
	return k
}

// where names the endpoint in messages: "web1 (10.0.0.1:22 via bastion)".
func (e *endpoint) where() string {
	s := e.addr()
	for j := e.jump; j != nil; j = j.jump {
		s += " via " + j.name
	}
	return fmt.Sprintf("host %s (%s)", e.name, s)
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// sshConfig wraps the decoded user file; nil means "no file".
type sshConfig struct {
	file string
	cfg  *ssh_config.Config
}

func loadSSHConfig(path string) (*sshConfig, error) {
	if path == "none" {
		return &sshConfig{}, nil
	}
	explicit := path != ""
	if !explicit {
		path = filepath.Join(homeDir(), ".ssh", "config")
	}
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) && !explicit {
			return &sshConfig{}, nil
		}
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", path, err)
	}
	return &sshConfig{file: path, cfg: cfg}, nil
}

func (c *sshConfig) get(alias, key string) string {
	if c.cfg == nil {
		return ""
	}
	v, _ := c.cfg.Get(alias, key)
	return v
}

func (c *sshConfig) getAll(alias, key string) []string {
	if c.cfg == nil {
		return nil
	}
	v, _ := c.cfg.GetAll(alias, key)
	return v
}

// maxHops bounds ProxyJump chains, catching loops in ssh_config.
const maxHops = 8

// resolve applies ssh_config to t the way ssh(1) would for `ssh t.Name`,
// with explicit Target fields winning over the file.
func (c *sshConfig) resolve(t Target) (*endpoint, error) {
	return c.resolveDepth(t, 0, true)
}

func (c *sshConfig) resolveDepth(t Target, depth int, configJump bool) (*endpoint, error) {
	if t.Name == "" {
		return nil, fmt.Errorf("transport: target without a name")
	}
	if depth > maxHops {
		return nil, fmt.Errorf("host %s: ProxyJump chain longer than %d hops (a loop in %s?)", t.Name, maxHops, c.file)
	}
	e := &endpoint{name: t.Name, password: t.Password, check: t.CheckHostKeys}

	e.host = t.Address
	if e.host == "" {
		e.host = c.get(t.Name, "HostName")
	}
	if e.host == "" {
		e.host = t.Name
	}
	e.port = t.Port
	if e.port == 0 {
		if p := c.get(t.Name, "Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return nil, fmt.Errorf("host %s: bad Port %q in %s", t.Name, p, c.file)
			}
			e.port = n
		}
	}
	if e.port == 0 {
		e.port = 22
	}
	e.user = t.User
	if e.user == "" {
		e.user = c.get(t.Name, "User")
	}
	if e.user == "" {
		e.user = localUser()
	}
	// HostName may itself contain %h (e.g. "%h.example.com").
	e.host = expandTokens(e.host, t.Name, e.port, e.user)

	e.keyFiles = append(e.keyFiles, t.KeyFiles...)
	for _, f := range c.getAll(t.Name, "IdentityFile") {
		e.keyFiles = append(e.keyFiles, expandTokens(f, e.host, e.port, e.user))
	}
	for i, f := range e.keyFiles {
		e.keyFiles[i] = expandTilde(f)
	}

	e.knownHosts = t.KnownHosts
	if len(e.knownHosts) == 0 {
		for _, v := range c.getAll(t.Name, "UserKnownHostsFile") {
			for _, f := range strings.Fields(v) {
				if strings.EqualFold(f, "none") {
					f = os.DevNull
				}
				e.knownHosts = append(e.knownHosts, expandTilde(expandTokens(f, e.host, e.port, e.user)))
			}
		}
	}
	if len(e.knownHosts) == 0 {
		e.knownHosts = []string{filepath.Join(homeDir(), ".ssh", "known_hosts")}
	}
	if err := c.strictHostKeys(e, t); err != nil {
		return nil, err
	}

	if t.ProxyJump != nil {
		jt := *t.ProxyJump
		inheritHopSettings(&jt, t)
		j, err := c.resolveDepth(jt, depth+1, true)
		if err != nil {
			return nil, err
		}
		e.jump = j
		return e, nil
	}
	spec := ""
	if configJump {
		spec = c.get(t.Name, "ProxyJump")
	}
	if spec == "" || strings.EqualFold(spec, "none") {
		return e, nil
	}
	// "a,b,c": connect to a, from a to b, from b to c, from c to the target.
	// Only the first hop's own ProxyJump is honoured, as in ssh(1).
	var prev *endpoint
	for i, hop := range strings.Split(spec, ",") {
		ht, err := parseJumpSpec(strings.TrimSpace(hop))
		if err != nil {
			return nil, fmt.Errorf("host %s: ProxyJump in %s: %w", t.Name, c.file, err)
		}
		inheritHopSettings(&ht, t)
		he, err := c.resolveDepth(ht, depth+1+i, i == 0)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			he.jump = prev
		}
		prev = he
	}
	e.jump = prev
	return e, nil
}

// strictHostKeys decides what e does with an unknown host key: the
// explicit setting (flag, defaults.toml), else ssh_config's
// StrictHostKeyChecking for the host, else refuse.
func (c *sshConfig) strictHostKeys(e *endpoint, t Target) error {
	e.hashKnownHosts = strings.EqualFold(c.get(t.Name, "HashKnownHosts"), "yes")
	if !e.check {
		return nil
	}
	mode, src := t.StrictHostKeys, "strict host key checking"
	if mode == "" {
		mode, src = c.get(t.Name, "StrictHostKeyChecking"), "StrictHostKeyChecking in "+c.file
	}
	if mode == "" {
		return nil
	}
	m, err := ParseStrictHostKeys(mode)
	if err != nil {
		return fmt.Errorf("host %s: %s: %w", t.Name, src, err)
	}
	e.acceptNew = m == AcceptNew
	return nil
}

// inheritHopSettings gives a jump host the security settings of the target
// that needs it. The password is not inherited: a bastion must not learn
// the target's secret.
func inheritHopSettings(hop *Target, of Target) {
	hop.CheckHostKeys = of.CheckHostKeys
	if hop.StrictHostKeys == "" {
		hop.StrictHostKeys = of.StrictHostKeys
	}
	if len(hop.KnownHosts) == 0 {
		hop.KnownHosts = of.KnownHosts
	}
	if len(hop.KeyFiles) == 0 {
		hop.KeyFiles = of.KeyFiles
	}
}

// parseJumpSpec reads one ProxyJump hop: [user@]host[:port]. The host part
// is an alias looked up in ssh_config like any target name.
func parseJumpSpec(s string) (Target, error) {
	if s == "" {
		return Target{}, fmt.Errorf("empty hop")
	}
	s = strings.TrimPrefix(s, "ssh://")
	var t Target
	if at := strings.LastIndex(s, "@"); at >= 0 {
		t.User, s = s[:at], s[at+1:]
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return Target{}, fmt.Errorf("bad hop %q", s)
		}
		host = s[1:end]
		port = strings.TrimPrefix(s[end+1:], ":")
	} else if i := strings.LastIndex(s, ":"); i >= 0 && strings.Count(s, ":") == 1 {
		host, port = s[:i], s[i+1:]
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return Target{}, fmt.Errorf("bad port in hop %q", s)
		}
		t.Port = n
	}
	if host == "" {
		return Target{}, fmt.Errorf("bad hop %q", s)
	}
	t.Name = host
	return t, nil
}

// expandTokens implements the ssh_config tokens herd users actually write.
func expandTokens(s, host string, port int, remoteUser string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'h':
			b.WriteString(host)
		case 'p':
			b.WriteString(strconv.Itoa(port))
		case 'r':
			b.WriteString(remoteUser)
		case 'u':
			b.WriteString(localUser())
		case 'd':
			b.WriteString(homeDir())
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func expandTilde(p string) string {
	if p == "~" {
		return homeDir()
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(homeDir(), p[2:])
	}
	return p
}

func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return "/"
}

func localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}
