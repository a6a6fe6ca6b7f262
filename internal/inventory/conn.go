package inventory

import (
	"fmt"
	"math"
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
}

// magicVars maps each Conn field to the variable names that set it. Within
// one layer the later name wins, so herd_* beats its Ansible alias when a
// file sets both; across layers normal precedence applies.
var magicVars = []struct {
	field string
	names []string
	set   func(c *Conn, v any) error
}{
	{"address", []string{"ansible_host", "herd_host"}, setString(func(c *Conn) *string { return &c.Address })},
	{"port", []string{"ansible_port", "herd_port"}, setPort},
	{"user", []string{"ansible_user", "herd_user"}, setString(func(c *Conn) *string { return &c.User })},
	{"password", []string{"ansible_ssh_pass", "ansible_password", "herd_password"}, setString(func(c *Conn) *string { return &c.Password })},
	{"sudo user", []string{"ansible_become_user", "herd_sudo_user"}, setString(func(c *Conn) *string { return &c.SudoUser })},
	{"sudo password", []string{"ansible_sudo_pass", "ansible_become_pass", "ansible_become_password", "herd_sudo_password"}, setString(func(c *Conn) *string { return &c.SudoPassword })},
	{"become method", []string{"ansible_become_method", "herd_become_method"}, setString(func(c *Conn) *string { return &c.BecomeMethod })},
	{"via", []string{"mitogen_via", "herd_via"}, setString(func(c *Conn) *string { return &c.Via })},
	{"agent dir", []string{"herd_agent_dir"}, setString(func(c *Conn) *string { return &c.AgentDir })},
	{"key file", []string{"ansible_ssh_private_key_file", "herd_ssh_key"}, setString(func(c *Conn) *string { return &c.KeyFile })},
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
