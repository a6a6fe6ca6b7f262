package inventory

import (
	"reflect"
	"strings"
	"testing"
)

// Every connection variable an Ansible or OpsMop inventory may use reaches
// Host.Conn; within one layer the ansible_ssh_* form wins over ansible_*
// (as Ansible's ssh plugin reads them) and herd_* wins over both.
func TestConnectionAliases(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		name, line string
		want       Conn
	}{
		{"ssh aliases", "h ansible_ssh_host=10.0.0.1 ansible_ssh_user=ops ansible_ssh_port=2200 ansible_ssh_private_key_file=/k",
			Conn{Address: "10.0.0.1", User: "ops", Port: 2200, KeyFile: "/k"}},
		{"ssh alias beats plain in one layer", "h ansible_host=a ansible_ssh_host=b ansible_port=1 ansible_ssh_port=2",
			Conn{Address: "b", Port: 2}},
		{"herd beats both", "h ansible_host=a ansible_ssh_host=b herd_host=c", Conn{Address: "c"}},
		{"become", "h ansible_become=true ansible_become_method=su ansible_become_user=app ansible_become_password=pw",
			Conn{Become: &yes, BecomeMethod: "su", SudoUser: "app", SudoPassword: "pw"}},
		{"become no", "h ansible_become=no", Conn{Become: &no}},
		{"local", "h ansible_connection=local", Conn{Connection: "local"}},
		{"ssh connection", "h ansible_connection=ssh", Conn{}},
		{"opsmop", "h opsmop_host=10.1.1.1 opsmop_ssh_username=u opsmop_ssh_password=p opsmop_sudo_username=r opsmop_sudo_password=q opsmop_via=b",
			Conn{Address: "10.1.1.1", User: "u", Password: "p", SudoUser: "r", SudoPassword: "q", Via: "b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{"hosts": c.line + "\n"}
			if c.want.Via != "" {
				files["hosts"] += "b\n"
			}
			h := mustHost(t, loadFiles(t, "hosts", files), "h")
			if !reflect.DeepEqual(h.Conn, c.want) {
				t.Errorf("Conn = %+v, want %+v", h.Conn, c.want)
			}
		})
	}
}

// Values herd cannot honour are refused, naming host and variable.
func TestConnectionRefusals(t *testing.T) {
	for _, line := range []string{"h ansible_become=maybe", "h ansible_connection=winrm", "h ansible_connection=local herd_via=b\nb"} {
		dir := project(t, map[string]string{"hosts": line + "\n"})
		_, err := Load(dir + "/hosts")
		if err == nil || !strings.Contains(err.Error(), "host h") || !strings.Contains(err.Error(), strings.Fields(line)[1][:strings.Index(strings.Fields(line)[1], "=")]) {
			t.Errorf("%s: err = %v", line, err)
		}
	}
}

// A herd_* name herd does not read (a typo) and OpsMop names with no
// meaning in herd are warnings naming the variable and host.
func TestUnknownHerdVariableWarns(t *testing.T) {
	inv := loadFiles(t, "hosts", map[string]string{
		"hosts": "[web]\nw1 herd_usr=deploy opsmop_python_path=/usr/bin/python3 herd_user=ok\nw2 herd_usr=x\n",
	})
	w := strings.Join(inv.Warnings(), "\n")
	if !strings.Contains(w, "host w1: herd_usr: unknown variable") || !strings.Contains(w, "herd_user") {
		t.Errorf("warnings %q: want herd_usr named for w1 with the known names", w)
	}
	if !strings.Contains(w, "opsmop_python_path: ignored") {
		t.Errorf("warnings %q: want opsmop_python_path", w)
	}
	if n := strings.Count(w, "herd_usr:"); n != 1 {
		t.Errorf("herd_usr warned %d times, want once", n)
	}
	if strings.Contains(w, "herd_user:") {
		t.Errorf("known herd_user warned: %q", w)
	}
}
