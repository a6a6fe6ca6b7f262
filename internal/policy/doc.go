// Package policy turns a Starlark policy file into per-host plans.
//
// The controller calls Load once: it runs the policy's top level, which
// declares roles with role(). Then, for every host and role, Plan calls the
// role's main(host) on a fresh Starlark thread; the resource builtins called
// by main record resources, and Plan returns them as a plan.Plan — plain
// data that the agent executes without ever running Starlark. Plan is safe
// to call concurrently for different hosts.
//
// # Errors
//
// Every error is an *Error whose text is one line starting with the
// position in the user's policy ("site.star:12:5: ..."): the call that
// declared the bad resource, the innermost policy line of a runtime error,
// or the load() statement that failed. Go stacks never reach the user.
//
// # Builtins
//
//	role(name, main, hosts=None, ssh_user=, sudo=, sudo_user=, become_method=,
//	     serial=80, check_host_keys=True, before_connect=, after_connect=,
//	     should_contact=, max_fail=0, parallel=False, fileserving_paths=[])
//	<kind>(name, **params, **meta)   one per registered resource kind: file, directory, exec, …
//	template(dest, src=PATH, vars={}, mode=, owner=, group=, **meta)
//	copy(dest_dir, source=DIR, delete_extra=False, mode=, dir_mode=, owner=, group=, **meta)
//	archive(dest_dir, source=FILE | url=URL, sha256=, strip_components=0, owner=, group=, force=False, **meta)
//	download(dest, url=URL, sha256=, mode=, owner=, group=, **meta)
//	fileserving(allow=[...], deny=[...])   top level, once: file name patterns
//	struct(**fields), load("path.star", "name"), print, fail, and the Starlark universe
//
// Resource builtins only work inside a role's main (or functions it calls);
// role() only at the top level. load() paths are relative to the directory
// of the file that loads them; each module runs once per Load, and load
// cycles are errors. Policies may use top-level if/for and sets, but not
// while loops or recursion, so evaluation always terminates.
//
// Params are converted by the kind's schema: strings, bools, ints, lists
// and dicts of strings, and modes (0o644 or "0644"; a decimal literal such as mode=644 is refused). None means "not given".
// file(..., source="files/x") takes a controller file relative to the
// policy directory: under 128 KiB it travels in the plan, larger ones are
// fetched by sha256 only when the target's copy differs. copy() does the
// same for a tree (one resource, compared file by file on the target).
// Only files under the role's fileserving_paths (default: the policy
// directory) are served, never *.star, .git, *.swp, *.bak or *~ (plus
// fileserving(deny=)); a path outside them, including through "..", or a
// symlink, is an error at the call site (fileserving.go).
// archive(url=) and download() are fetched by the controller while it
// plans, checked against sha256= and cached under ~/.herd/cache/sha256
// (LoadOptions.CacheDir); the cached file is served by hash like a source=
// file, outside the fileserving rules, which are about the policy's own
// files (download.go).
//
// Every resource also accepts:
//
//	after=[...]    run after these resources
//	before=[...]   run before these resources (they get an after edge on this one)
//	notify=[...]   refresh these resources when this one changes; implies before
//	label="name"   an alias for this resource in after/before/notify strings
//	retry=N, retry_delay=, timeout=   seconds (int or float) or "500ms", "5s", "2m"
//	when=bool      False keeps the resource in the plan, marked skipped
//	no_log=bool    keep output and diffs of this resource out of events and logs
//
// Targets in after/before/notify are resource values returned by builtins,
// "kind:name" ids, or labels, as one value or a list. They may name
// resources declared later in main: they are resolved when main returns.
//
// # Order
//
// Resources run in declaration order by default: each resource runs after
// the one declared just before it. That implicit edge is left out when the
// role has parallel=True, when the resource passes after= itself (after=[]
// means "no ordering at all"), or when it would contradict explicit edges —
// for example a service declared before the file that notifies it simply
// runs after that file. Explicit edges (after, before, notify, value
// references) that contradict each other are a cycle error naming every
// resource and the argument that made each edge.
//
// # Deferred values (send/recv)
//
// Outputs of resources, such as password("db").value or exec(...).stdout,
// only exist on the target once that resource ran. In the policy they are
// deferred values: they can be concatenated with strings using + and
// passed as any string argument of another resource, which becomes a
// plan.Binding filled in on the target (and a dependency on the source).
// Anything that needs the value now — if, str(), "%s" %, comparison, an int
// argument — is an error at that line.
//
// # Templates
//
// template() renders a Go text/template (https://pkg.go.dev/text/template)
// on the controller, per host, and declares a file resource whose content is
// the result. The data is:
//
//	.vars    host vars (inventory, overridden by -e vars), overridden by vars=
//	.facts   .hostname .os_family .distro .version .arch .user .uid .home
//	         .env (a map, e.g. .facts.env.LANG) .kernel .cpus
//	         .interfaces (name → .mac .up .ipv4 .ipv6, addresses as "10.0.0.2/24")
//	         .default_ipv4 (.interface .address .gateway; empty without a default route)
//	         .memtotal_mb .mounts (list of .mount .device .fstype, pseudo filesystems left out)
//	         .init_system ("systemd", "openrc", "sysvinit", "unknown")
//	         .pkg_mgr ("apt", "dnf", "yum", "apk", "zypper", "pacman", "unknown")
//	         .virtualization ("kvm", "vmware", "xen", "hyperv", "virtualbox", "docker", "podman", "none", "unknown")
//	.host    .name
//
// A reference to a var that does not exist is an error naming the template
// file:line and the var (missingkey=error); for optional vars write
// {{index .vars "port" | default 8080}}. Helpers besides the text/template
// builtins (if, range, with, index, len, printf, eq, and, or, not, …):
//
//	default D V   V, or D when V is missing (nil) or empty ("", [], {})
//	join SEP LIST elements formatted and joined: {{.vars.admins | join ", "}}
//	upper S, lower S
//	quote S       a double-quoted string with Go escapes: {{quote .vars.motd}}
//	indent N S    S with every non-empty line indented by N spaces
//
// Example:
//
//	# {{.host.name}} — managed by herd
//	listen {{index .vars "port" | default 80}};
//	{{range .vars.upstreams}}server {{.}};
//	{{end}}workers {{.facts.cpus}};
//
// vars= may hold deferred values (collect()'s values of hosts exporting in
// this run, a command's stdout), also inside dicts and lists: each renders
// as a marker, and the output is cut at the markers into the file's content
// binding, filled on the target like file(content=). A template can print
// such a value, range over the dict holding it, indent or join it; eq,
// len, upper, quote on it are errors naming it (template_deferred.go).
//
// # Jinja2 templates
//
// A src ending in .j2, or engine="jinja2", is rendered as Jinja2
// (github.com/ardanlabs/jinja) so existing Ansible templates work for the
// common subset: if/elif/else, for (with loop.*), set, macros, inline if,
// tests such as "is defined", and filters default, join, upper, lower,
// indent, trim, replace, length, dictsort, tojson and more, plus the Ansible
// filters regex_replace (Python's  groups), to_json, to_nice_json and
// quote. The data: every var at the top level ({{ port }}), vars, facts
// (also as ansible_facts), host.name and inventory_hostname. engine="go"
// forces Go templates on a .j2 name.
//
// Differences from Ansible: an undefined variable renders as an empty
// string (use "is defined" or default to be explicit); include, import and
// extends are errors. Parse errors and unknown filters name template:line.
package policy
