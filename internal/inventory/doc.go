// Package inventory reads the hosts herd configures and resolves their
// variables once, so the policy layer and the transport see the same
// answer Ansible would give for the same files.
//
// # Formats
//
// LoadSources reads several sources into one inventory as repeated
// `ansible -i` options do; a directory source is every file in it, sorted
// by name, skipping what Ansible skips (hidden files, group_vars/,
// host_vars/, *.ini, *.md, *.txt, *.cfg, *.retry, …), with its group_vars/
// and host_vars/ inside it. Options.PlaybookDir adds the policy directory's
// group_vars/ and host_vars/ above the inventory's (Ansible's playbook
// vars).
//
// LoadWith picks the format from the path: *.toml is herd's TOML layout
// (OpsMop's, plus children = [...] for nesting and [hosts."name"] tables); an
// executable file is a dynamic inventory run with --list (Ansible's JSON,
// long or short form, _meta.hostvars or --host per host); *.yml, *.yaml and
// *.json are Ansible YAML inventories; anything else is an Ansible INI
// inventory. For every format, group_vars/ and host_vars/ beside the file are
// read: <name>, <name>.yml, <name>.yaml, <name>.json, or a <name>/ directory
// of such files merged in lexical order.
//
// Host names may use ranges (web[01:03], db-[a:c], [1:9:2]) and a :port
// suffix, which sets ansible_port.
//
// INI values are typed as Ansible types them, with Python literal rules:
// 80 is an int, True a bool, '[1, 2]' a list; true, 010 and "a b" are
// strings. In [group:vars] everything after the first "=" is the value,
// comments included, as in Ansible. TOML host strings ("k=v k2=v2") type
// values as ints, true/false, or strings.
//
// # Precedence
//
// Variables are merged key by key (a later dict replaces an earlier one, as
// with Ansible's default hash_behaviour=replace), lowest first:
//
//  1. "all" vars from the inventory file
//  2. other groups' vars from the inventory file
//  3. group_vars/all
//  4. other groups' group_vars/ files
//  5. the host's vars from the inventory file (inline, TOML [hosts.x],
//     dynamic _meta)
//  6. host_vars/<host> files
//
// Within steps 2 and 4 groups apply in order of depth (parents before
// children, so the deeper group wins), then ansible_group_priority, then
// name (alphabetically later wins). Depth is the longest path from "all".
//
// This is exactly Ansible's order (VARIABLE_PRECEDENCE defaults). It differs
// from the simpler "all < parents < children < files < inline" rule one might
// expect in two ways users of Ansible already rely on: any group_vars/ file
// beats any group var written in the inventory file, and host_vars/ files
// beat inline host vars.
//
// # Connection variables
//
// Host.Conn is read from the merged layers. Each field accepts herd_* names
// and their Ansible (and mitogen_via) aliases; the alias set in the highest
// layer wins, and within one layer herd_* beats ansible_*.
//
//	Address       herd_host, opsmop_host, ansible_ssh_host, ansible_host
//	Port          herd_port, ansible_ssh_port, ansible_port
//	User          herd_user, opsmop_ssh_username, ansible_ssh_user, ansible_user
//	Password      herd_password, opsmop_ssh_password, ansible_ssh_password,
//	              ansible_ssh_pass, ansible_password
//	SudoUser      herd_sudo_user, opsmop_sudo_username, ansible_become_user,
//	              ansible_sudo_user
//	SudoPassword  herd_sudo_password, opsmop_sudo_password,
//	              ansible_become_password, ansible_become_pass, ansible_sudo_pass
//	BecomeMethod  herd_become_method, ansible_become_method
//	Become        herd_sudo, ansible_become, ansible_sudo (overrides the
//	              role's sudo= for the host)
//	Connection    herd_connection, ansible_connection: ssh (also smart,
//	              paramiko), local (the controller itself), chroot,
//	              setns/nsenter, docker, podman, lxc, lxd, machinectl,
//	              kubectl; anything else is refused
//	Via           herd_via, opsmop_via, mitogen_via (end-to-end SSH through
//	              the parent's sshd; herd_via_mode=trusted: the parent's
//	              agent logs in)
//	AgentDir      herd_agent_dir
//	KeyFile       herd_ssh_key, ansible_ssh_private_key_file,
//	              ansible_private_key_file
//
// Within one layer the earlier name in each row wins (ansible_ssh_host
// beats ansible_host, as in Ansible's ssh plugin). Any other herd_* or
// opsmop_* variable is reported by Warnings, naming it.
//
// # Vault
//
// With Options.Vault, !vault values and vault-encrypted files (inventory,
// group_vars, host_vars; format 1.1 and 1.2, AES256) are decrypted; without
// it they are an error naming file and line. Decrypted values are masked by
// MaskedVars whatever their names.
//
// # Host patterns
//
// ParsePattern reads Ansible host patterns (web:db, web:&prod, !db1, web*,
// ~regex, and @file for --limit); Select applies one.
//
// The magic variables stay in Host.Vars; print vars through Masked.
//
// # Groups
//
// As in Ansible, every group without a parent is a child of "all", and a
// host in no group (or only in "all") is in "ungrouped"; a host listed at
// the top of an INI file and later in a group leaves "ungrouped". A
// "host:port" entry sets ansible_port only where the host is first
// declared, as Ansible builds a host once. Host.Groups lists
// every group a host belongs to, parents and "all" included.
package inventory
