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
// # Restrictive sudoers
//
// The only command the tool runs is the cached agent, so sudo can be limited
// to it. For user deploy with the default agent_dir:
//
//	deploy ALL=(root) NOPASSWD: /home/deploy/.cache/herd/*/herd agent --hash * --become-socket *
//
// (drop NOPASSWD to require deploy's password). The binary's directory is
// named by its sha256 and the agent checks its own hash before it serves,
// so a modified copy refuses to run. The equivalent doas.conf line is
// `permit nopass deploy as root cmd /home/deploy/.cache/herd/<hash>/herd`
// (doas matches the exact path, so it must be updated when herd changes).
// su cannot be restricted this way.
package become
