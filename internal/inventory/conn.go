package inventory

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Conn is how to reach and become root on a host, from its magic variables.
// Port 0 means the SSH default (or ssh_config's).
type Conn struct {
	Address      string
	Port         int
	User         string
	Password     string
	SudoUser     string
	SudoPassword string
	BecomeMethod string
	Via          string
	AgentDir     string
	KeyFile      string
	// Become, when set, overrides the role's sudo= for this host
	// (ansible_become); nil leaves the role's choice.
	Become *bool
	// Connection is the kind of way in (transport.ConnKindNames); "" and
	// Ansible's ssh, smart and paramiko mean SSH; local is the controller.
	Connection string
}

// magicVars maps each Conn field to the variable names that set it. Within
// one layer the later name wins, so herd_* beats its Ansible alias when a
// file sets both; across layers normal precedence applies.
var magicVars = []struct {
	field string
	names []string
	set   func(c *Conn, v any) error
}{
	{"address", []string{"ansible_host", "ansible_ssh_host", "opsmop_host", "herd_host"}, setString(func(c *Conn) *string { return &c.Address })},
	{"port", []string{"ansible_port", "ansible_ssh_port", "herd_port"}, setPort},
	{"user", []string{"ansible_user", "ansible_ssh_user", "opsmop_ssh_username", "herd_user"}, setString(func(c *Conn) *string { return &c.User })},
	{"password", []string{"ansible_password", "ansible_ssh_pass", "ansible_ssh_password", "opsmop_ssh_password", "herd_password"}, setString(func(c *Conn) *string { return &c.Password })},
	{"sudo user", []string{"ansible_sudo_user", "ansible_become_user", "opsmop_sudo_username", "herd_sudo_user"}, setString(func(c *Conn) *string { return &c.SudoUser })},
	{"sudo password", []string{"ansible_sudo_pass", "ansible_become_pass", "ansible_become_password", "opsmop_sudo_password", "herd_sudo_password"}, setString(func(c *Conn) *string { return &c.SudoPassword })},
	{"become method", []string{"ansible_become_method", "herd_become_method"}, setString(func(c *Conn) *string { return &c.BecomeMethod })},
	{"become", []string{"ansible_sudo", "ansible_become", "herd_sudo"}, setBecome},
	{"connection", []string{"ansible_connection", "herd_connection"}, setConnection},
	{"via", []string{"mitogen_via", "opsmop_via", "herd_via"}, setString(func(c *Conn) *string { return &c.Via })},
	{"agent dir", []string{"herd_agent_dir"}, setString(func(c *Conn) *string { return &c.AgentDir })},
	{"key file", []string{"ansible_private_key_file", "ansible_ssh_private_key_file", "herd_ssh_key"}, setString(func(c *Conn) *string { return &c.KeyFile })},
}

// secretMagicVars are the magic variables whose values Masked hides even
// though their names would not give them away.
var secretMagicVars = map[string]bool{}

func init() {
	for _, m := range magicVars {
		if strings.Contains(m.field, "password") {
			for _, n := range m.names {
				secretMagicVars[n] = true
			}
		}
	}
}

// connFromLayers reads Conn from the precedence layers, lowest first, so the
// highest layer that sets any alias of a field decides it.
func connFromLayers(layers []map[string]any) (Conn, error) {
	var c Conn
	for _, m := range magicVars {
		var winner string
		var value any
		for _, l := range layers {
			for _, n := range m.names {
				if v, ok := l[n]; ok {
					winner, value = n, v
				}
			}
		}
		if winner == "" || value == nil {
			continue
		}
		if err := m.set(&c, value); err != nil {
			return Conn{}, fmt.Errorf("%s: %w", winner, err)
		}
	}
	if c.Connection == "local" && c.Via != "" {
		return Conn{}, fmt.Errorf("ansible_connection=local runs on the controller; it cannot also go via %s", c.Via)
	}
	return c, nil
}

func setString(field func(*Conn) *string) func(*Conn, any) error {
	return func(c *Conn, v any) error {
		switch s := v.(type) {
		case string:
			*field(c) = s
		case int, int64, float64:
			*field(c) = fmt.Sprint(s)
		default:
			return fmt.Errorf("want a string, got %T", v)
		}
		return nil
	}
}

// setBecome reads a boolean the way Ansible's boolean() does, so
// ansible_become=true in INI (a string there) and yes/no work.
func setBecome(c *Conn, v any) error {
	b, ok := toBool(v)
	if !ok {
		return fmt.Errorf("%v is not a boolean (want true/false, yes/no, 1/0)", v)
	}
	c.Become = &b
	return nil
}

// setConnection accepts the connection plugins herd has an equivalent for
// and refuses the rest, rather than silently trying SSH to a Docker
// container or a Windows host.
// connectionNames are the ways in herd knows (transport's connection kinds
// plus Ansible's names for SSH); transport checks each kind's settings.
var connectionNames = []string{"ssh", "smart", "paramiko", "paramiko_ssh", "local", "chroot", "setns", "nsenter",
	"docker", "podman", "lxc", "lxd", "machinectl", "kubectl"}

func setConnection(c *Conn, v any) error {
	s, ok := v.(string)
	if !ok || !slices.Contains(connectionNames, s) {
		return fmt.Errorf("%v is not supported: want one of %s", v, strings.Join(connectionNames, ", "))
	}
	c.Connection = s
	if s == "ssh" || s == "smart" || s == "paramiko" || s == "paramiko_ssh" {
		c.Connection = "" // SSH, the default
	}
	return nil
}

func toBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case int:
		return x != 0, x == 0 || x == 1
	case int64:
		return x != 0, x == 0 || x == 1
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "yes", "on", "1", "true", "t", "y":
			return true, true
		case "no", "off", "0", "false", "f", "n":
			return false, true
		}
	}
	return false, false
}

func setPort(c *Conn, v any) error {
	n, ok := toInt(v)
	if !ok || n < 0 || n > 65535 {
		return fmt.Errorf("%#v is not a port number", v)
	}
	c.Port = n
	return nil
}

// toInt accepts the integer shapes the parsers produce, and digit strings
// (INI and TOML users often quote ports).
func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<31 {
			return int(n), true
		}
	case string:
		i, err := strconv.Atoi(strings.TrimSpace(n))
		return i, err == nil
	}
	return 0, false
}
