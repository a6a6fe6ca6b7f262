package policy

import (
	"fmt"
	"sort"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/herd-project/herd/internal/facts"
)

// factDocs says what each fact a policy reads (host.facts.X, and facts.X
// in templates) means. The names and types herd doc prints come from the
// value a role's main really gets (FactDocs walks it); this table only adds
// the words, and TestFactsAreDocumented fails when a fact has none or a
// documented one no longer exists.
var factDocs = map[string]string{
	"hostname":               "the machine's host name (not the inventory name: that is host.name)",
	"os_family":              `"debian", "redhat", "alpine", "suse", "arch", ... from /etc/os-release ID and ID_LIKE`,
	"distro":                 `/etc/os-release ID, e.g. "debian", "ubuntu", "rocky"`,
	"version":                `/etc/os-release VERSION_ID, e.g. "12"`,
	"arch":                   `CPU architecture in Go's naming: "amd64", "arm64"`,
	"user":                   "the user herd runs as on the host (after become)",
	"uid":                    "that user's numeric id (0 for root)",
	"home":                   "that user's home directory",
	"env":                    "a few harmless environment variables (HOME, USER, LOGNAME, SHELL, PATH, LANG, LC_ALL, TERM, TZ, PWD)",
	"kernel":                 "the running kernel's release (/proc/sys/kernel/osrelease)",
	"cpus":                   "number of CPUs herd may use",
	"interfaces":             "network interfaces by name",
	"interfaces[NAME].mac":   "hardware address",
	"interfaces[NAME].up":    "whether the interface is up",
	"interfaces[NAME].ipv4":  "IPv4 addresses with prefix length, e.g. 10.0.0.5/24",
	"interfaces[NAME].ipv6":  "IPv6 addresses with prefix length",
	"default_ipv4":           "the interface and address of the default IPv4 route",
	"default_ipv4.interface": "its interface name",
	"default_ipv4.address":   "that interface's first IPv4 address (no prefix length)",
	"default_ipv4.gateway":   "the gateway's address",
	"memtotal_mb":            "total memory in MiB",
	"mounts":                 "mounted filesystems, in /proc/mounts order",
	"mounts[i].mount":        "the mount point",
	"mounts[i].device":       "the device or source",
	"mounts[i].fstype":       "the filesystem type",
	"init_system":            `"systemd", "openrc", "sysvinit" or "unknown"`,
	"pkg_mgr":                `"apt", "dnf", "yum", "apk", "zypper", "pacman" or "unknown"`,
	"virtualization":         `"kvm", "vmware", "docker", "lxc", ..., "none" or "unknown"`,
}

// FactDocs documents every fact, by walking the facts value a role's main
// gets (with one interface and one mount, so their fields show).
func FactDocs() []ArgDoc {
	sample := facts.Facts{
		Interfaces: map[string]facts.Interface{"NAME": {}},
		Mounts:     []facts.Mount{{}},
		Env:        map[string]string{},
	}
	hv, err := newHostValue(Host{Name: "doc", Facts: sample}, nil)
	if err != nil {
		panic(fmt.Sprintf("policy: facts value: %v", err)) // a herd bug: the sample is fixed
	}
	var out []ArgDoc
	walkFacts("", hv.facts, &out)
	return out
}

func walkFacts(prefix string, v starlark.Value, out *[]ArgDoc) {
	add := func(name string, v starlark.Value) {
		*out = append(*out, ArgDoc{Name: name, Type: v.Type(), Doc: factDocs[name]})
	}
	switch v := v.(type) {
	case *starlarkstruct.Struct:
		names := v.AttrNames()
		sort.Strings(names)
		for _, n := range names {
			f, _ := v.Attr(n)
			name := n
			if prefix != "" {
				name = prefix + "." + n
			}
			add(name, f)
			walkFacts(name, f, out)
		}
	case *starlark.Dict:
		for _, kv := range v.Items() {
			if _, isStruct := kv[1].(*starlarkstruct.Struct); isStruct {
				walkFacts(prefix+"[NAME]", kv[1], out)
			}
		}
	case *starlark.List:
		if v.Len() > 0 {
			walkFacts(prefix+"[i]", v.Index(0), out)
		}
	}
}
