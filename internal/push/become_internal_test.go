package push

import (
	"testing"

	"github.com/herd-project/herd/internal/inventory"
	"github.com/herd-project/herd/internal/policy"
)

// ansible_become on a host overrides the role's sudo= either way, and
// ansible_become_method/_user choose how and as whom, as host vars
// override a play's become in Ansible.
func TestBecomeIdentityHonoursAnsibleBecome(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		name         string
		roleSudo     bool
		conn         inventory.Conn
		method, user string
		ok           bool
	}{
		{"role sudo, host silent", true, inventory.Conn{}, "sudo", "root", true},
		{"role no sudo, ansible_become=true", false, inventory.Conn{Become: &yes}, "sudo", "root", true},
		{"role sudo, ansible_become=false", true, inventory.Conn{Become: &no}, "", "", false},
		{"method and user from the host", false, inventory.Conn{Become: &yes, BecomeMethod: "su", SudoUser: "app"}, "su", "app", true},
		{"login user is the become user", true, inventory.Conn{User: "root"}, "", "", false},
	}
	r := &runner{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			role := &policy.Role{Name: "r", RolePush: policy.RolePush{Sudo: c.roleSudo}}
			m, u, ok := r.becomeIdentity(role, &inventory.Host{Name: "h", Conn: c.conn})
			if m != c.method || u != c.user || ok != c.ok {
				t.Errorf("becomeIdentity = %q %q %v, want %q %q %v", m, u, ok, c.method, c.user, c.ok)
			}
		})
	}
}
