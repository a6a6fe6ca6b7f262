package resource

import (
	"path/filepath"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

// Mounting is tried on lab hosts (push's TestKindsMount); here the fstab
// edit and the reading of the mount table, in Check only, so this machine's
// mounts are never touched.
func TestMountCheck(t *testing.T) {
	dir := t.TempDir()
	info := filepath.Join(dir, "mountinfo")
	writeFile(t, info, "22 1 0:21 / / rw - ext4 /dev/sda1 rw\n"+
		`40 22 0:35 / /srv/my\040data rw,relatime - tmpfs tmpfs rw`+"\n", 0o644)
	old := mountInfo
	mountInfo = info
	t.Cleanup(func() { mountInfo = old })

	const base = "/dev/sda1 / ext4 defaults 0 1\n"
	for _, tt := range []struct {
		name, path, fstab string
		params            plan.Params
		want, after       string
	}{
		{"new tmpfs", "/mnt/t", base, plan.Params{"device": "tmpfs", "fstype": "tmpfs", "opts": "size=1m"},
			"fstab line added, mount", base + "tmpfs /mnt/t tmpfs size=1m 0 0\n"},
		{"mounted and listed", "/srv/my data", base + `tmpfs /srv/my\040data tmpfs defaults 0 0` + "\n", plan.Params{"device": "tmpfs", "fstype": "tmpfs"},
			"", base + `tmpfs /srv/my\040data tmpfs defaults 0 0` + "\n"},
		{"changed options remount", "/srv/my data", base + `tmpfs   /srv/my\040data  tmpfs defaults 0 0` + "\n", plan.Params{"device": "tmpfs", "fstype": "tmpfs", "opts": "size=2m"},
			"fstab line changed, remount", base + `tmpfs /srv/my\040data tmpfs size=2m 0 0` + "\n"},
		{"present only edits fstab", "/mnt/t", base, plan.Params{"device": "/srv", "fstype": "none", "opts": "bind", "state": "present"},
			"fstab line added", base + "/srv /mnt/t none bind 0 0\n"},
		{"duplicates collapse to the last", "/mnt/t", base + "a /mnt/t x y 0 0\nb /mnt/t x y 0 0\n", plan.Params{"device": "b", "fstype": "x", "opts": "y", "state": "present"},
			"fstab line changed", base + "b /mnt/t x y 0 0\n"},
		{"absent unmounts and removes", "/srv/my data", base + `tmpfs /srv/my\040data tmpfs defaults 0 0` + "\n", plan.Params{"state": "absent"},
			"fstab line removed, unmount", base},
		{"unmounted leaves fstab", "/srv/my data", base, plan.Params{"state": "unmounted"}, "unmount", base},
		{"absent and gone", "/mnt/t", base, plan.Params{"state": "absent"}, "", base},
	} {
		fstab := filepath.Join(t.TempDir(), "fstab")
		writeFile(t, fstab, tt.fstab, 0o644)
		tt.params["fstab"] = fstab
		r := build(t, "mount", tt.path, tt.params, nil)
		c := mustCheck(t, r, testEnv(t))
		if c.Changed != (tt.want != "") || c.Summary != tt.want {
			t.Errorf("%s: Check = %v %q, want %q", tt.name, c.Changed, c.Summary, tt.want)
		}
		// Only the fstab part is applied here.
		m := r.(*mount)
		if d, err := m.fstab.inspect(); err != nil {
			t.Fatal(err)
		} else if d.change.Changed {
			if err := m.fstab.write(d); err != nil {
				t.Fatal(err)
			}
		}
		if got := readFile(t, fstab); got != tt.after {
			t.Errorf("%s: fstab = %q, want %q", tt.name, got, tt.after)
		}
	}
}

func TestMountRejects(t *testing.T) {
	for _, tt := range []struct {
		path   string
		params plan.Params
		want   string
	}{
		{"/mnt/x", plan.Params{"device": "tmpfs"}, "device and fstype are required"},
		{"/mnt/x", plan.Params{"device": "tmpfs", "fstype": "tmpfs", "state": "up"}, "is not one of"},
		{"/mnt/x", plan.Params{"device": "tmpfs", "state": "absent"}, "none of device"},
		{"/", plan.Params{"device": "/dev/sda1", "fstype": "ext4"}, "root filesystem"},
		{"mnt", plan.Params{"device": "tmpfs", "fstype": "tmpfs"}, "must be absolute"},
		{"/mnt/x", plan.Params{"device": "a\tb", "fstype": "tmpfs"}, "tabs or newlines"},
	} {
		_, err := New(plan.Resource{Kind: "mount", Name: tt.path, Params: tt.params}, nil)
		wantErrContaining(t, err, tt.want)
	}
}
