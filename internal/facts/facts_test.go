package facts

import "testing"

func TestParseOSReleaseAndFamily(t *testing.T) {
	cases := []struct {
		name, text, id, version, family string
	}{
		{"debian", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n", "debian", "12", "debian"},
		{"ubuntu is debian-like", "ID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n", "ubuntu", "24.04", "debian"},
		{"rocky is redhat-like", "ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n", "rocky", "9.3", "redhat"},
		{"comments and blanks", "# c\n\nID=alpine\nVERSION_ID=3.19.1\n", "alpine", "3.19.1", "alpine"},
		{"unknown distro keeps its id", "ID=nixos\n", "nixos", "", "nixos"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := ParseOSRelease([]byte(c.text))
			if m["ID"] != c.id || m["VERSION_ID"] != c.version {
				t.Fatalf("got ID=%q VERSION_ID=%q", m["ID"], m["VERSION_ID"])
			}
			if f := family(m["ID"], m["ID_LIKE"]); f != c.family {
				t.Fatalf("family = %q, want %q", f, c.family)
			}
		})
	}
}

func TestGatherHasBasics(t *testing.T) {
	f := Gather()
	if f.Hostname == "" || f.Arch == "" || f.User == "" || f.CPUs < 1 {
		t.Fatalf("incomplete facts: %+v", f)
	}
	if _, ok := f.Env["HOME"]; !ok && f.Home == "" {
		t.Fatalf("no home: %+v", f)
	}
}
