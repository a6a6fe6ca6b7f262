// Package become runs the herd agent as another user (usually root) through
// sudo, su or doas, typing a password when the tool asks for one, without the
// password ever appearing in argv, an environment, a log, an event or a file.
//
// # Why a broker on the target
//
// The password prompts of the three tools disagree: sudo can read stdin
// (-S), but su (PAM) and doas read the controlling terminal. A terminal and
// the agent protocol do not mix: a tty's line discipline mangles binary
// frames, and the tools write prompts and warnings into the same stream.
// So the controller does not talk to the tool at all. It opens a second exec
// channel on the host's SSH connection and starts the cached agent binary in
// broker mode (`herd agent --become`). The broker:
//
//  1. greets ("herd-become 1"), then reads one JSON line: method, user,
//     password (Request). The password crosses only the encrypted SSH
//     channel and the broker's memory.
//  2. listens on a fresh abstract unix socket (random name);
//  3. starts the tool on a new pty as its controlling terminal, with echo
//     off, asking it to run the same binary as
//     `herd agent --hash H --become-socket NAME`;
//  4. watches the pty: a password prompt is answered once; a second prompt
//     means the password was wrong and fails at once (no 3-try hang); exit
//     of the tool or the timeout fails with the tool's own words;
//  5. accepts the privileged agent's connection only from a process that
//     runs as the target user and descends from the tool (SO_PEERCRED plus
//     the /proc parent chain), answers "ok", and from then on copies bytes
//     between its stdin/stdout and the socket. The pty stays attached for
//     the tool's later output, which goes to the broker's stderr.
//
// So the agent re-executes itself under the become tool once per (host,
// method, user) and that process serves every role needing that identity.
//
// # Sudoers and doas rules
//
// The privileged agent executes whatever plan reaches it, so any rule that
// lets the login user run it as root makes that user root: herd offers no
// "restrictive" rule. A rule must never name a path the login user can
// write (such as ~/.cache/herd/*/herd): the user would put any program
// there and run it as root. Sites that want sudo to name the command pin
// the agent in a root-owned directory, installed once per herd version by
// root, and set herd_agent_dir to it:
//
//	install -D -m 0755 herd /usr/local/lib/herd/$(sha256sum herd | cut -d' ' -f1)/herd
//	deploy ALL=(root) NOPASSWD: /usr/local/lib/herd/*/herd agent --hash * --become-socket *
//
// The broker then runs the root-owned copy (its own executable), which
// checks its sha256 against the hash the controller sent before it serves;
// run through become, a copy that fails the check never deletes itself.
// The doas.conf equivalent names the exact path,
// `permit nopass deploy as root cmd /usr/local/lib/herd/<hash>/herd`.
// su cannot be restricted this way.
package become
