package bootstrap

import (
	"errors"
	"strings"

	"github.com/herd-project/herd/internal/transport"
)

// Exit codes shared with the agent: the bootstrap snippet uses 96 for its own
// failures; the agent exits 97 after it found its own file does not match
// --hash and removed it, asking for a fresh copy.
//
// ExitUnsafePath: the bootstrap refused an agent directory, one of its
// parents or the cached binary because another user could write it (see
// Script). ExitAgentWatched: the agent found itself wrapped,
// traced or its stdio held by another process (see agent.VerifyUnwatched)
// and exited before reading anything.
const (
	ExitBootstrapFailed = transport.ExitBootstrapFailed
	ExitAgentCorrupt    = 97
	ExitUnsafePath      = 98
	ExitAgentWatched    = 99
	// ExitNoAgentForArch: the target's `uname -m` matches none of the
	// builds the controller offered (archSelect).
	ExitNoAgentForArch = 94
)

// AgentPathEnv carries the path the bootstrap executes to the agent, which
// checks that it is the very file running (a wrapper would not be).
const AgentPathEnv = "HERD_AGENT_PATH"

const needPrefix = "HERD-NEED "

// RefusedPrefix starts the line an agent prints on stdout instead of its
// hello when it refuses to start (ExitAgentWatched): a wrapper may keep the
// session open after the agent exits, so the controller must not wait for
// the exit status to learn why.
const RefusedPrefix = "HERD-REFUSED "

// Script is the /bin/sh snippet that starts the agent on a target.
// With the agent cached it execs it after one safety check, so a run costs
// one round trip. Otherwise it prints one line "HERD-NEED gzip" (or "raw"
// when the target has no gzip), reads a decimal size line and exactly that
// many bytes from stdin, installs them atomically as <dir>/<hash>/herd and
// execs that. `read` reads pipes byte by byte and `head -c` never reads
// past its count, and the controller sends nothing more until the agent has
// spoken, so no protocol byte can be swallowed. It is one line without '!'
// so that any login shell passes it intact to `/bin/sh -c`.
//
// The safety check: whatever the login user runs as the agent may later run
// as root (become), so no other user may be able to put a file there. One
// `find` over the physical path (symlinks resolved by `cd -P`) refuses,
// with exit 98 and the paths on stderr, when
//   - any directory from / down to the hash directory, or the cached
//     binary, is owned by someone other than the login user or root;
//   - the agent directory, the hash directory or the binary is writable by
//     group or others, or the binary is not a regular file;
//   - a directory above the agent directory is writable by group or others
//     without the sticky bit (a sticky /tmp is fine: nobody else can rename
//     the agent directory in it).
//
// `find -name .` marks the two directories that must be strict: they are
// given as "dir/.". find's "not" is spelled "$x", made by printf, because
// csh-family login shells would take a literal one for history.
//
// agentDir "" means $HOME/.cache/herd; a leading "~/" is the remote $HOME.
func Script(hash, agentDir string) string {
	return script(`h=`+transport.ShellQuote(hash), false, agentDir)
}

// script is Script with sel, the shell that sets h to the agent's hash: a
// constant, or a choice by `uname -m` (archSelect). byArch adds the chosen
// hash to the HERD-NEED line, so the controller knows which build to send.
func script(sel string, byArch bool, agentDir string) string {
	dir := `"${HOME:?}"/.cache/herd`
	if agentDir != "" {
		dir = transport.AgentDirWord(agentDir)
	}
	h := `"$h"`
	need := `echo "` + needPrefix + `$z"`
	if byArch {
		need = `echo "` + needPrefix + `$z $h"`
	}
	fail := func(what string) string {
		return `{ echo "herd bootstrap: ` + what + `" >&2; exit 96; }`
	}
	run := `export ` + AgentPathEnv + `="$f"; exec "$f" agent --hash ` + h
	return strings.Join([]string{
		sel,
		`umask 077`,
		`d=` + dir + `/` + h,
		`o=$PWD`,
		`{ cd -P "$d" 2>/dev/null || { mkdir -p "$d" && cd -P "$d"; }; } || ` + fail(`cannot create $d`),
		`p=$PWD`,
		`cd "$o" || cd`,
		`f="$p/herd"`,
		`x=$(printf '\041'; id -u) || ` + fail(`id -u failed (the bootstrap needs id and find)`),
		`u=${x#?}`,
		`x=${x%"$u"}`,
		`set -- "$p/." "${p%/*}/."`,
		`a=${p%/*}`,
		`while a=${a%/*}; [ -n "$a" ]; do set -- "$@" "$a"; done`,
		`if [ -e "$f" ] || [ -h "$f" ]; then set -- "$@" "$f"; fi`,
		`b=$(find "$@" / -prune \( "$x" -user "$u" "$x" -user 0 -o "$x" -type d "$x" -type f -o \( -perm -020 -o -perm -002 \) \( "$x" -perm -1000 -o "$x" -type d -o -name . \) \) -print) || ` + fail(`cannot check the agent directory $p`),
		`[ -z "$b" ] || { echo "herd bootstrap: refusing to run the agent from $d: another user could replace it; owned by someone else than $(id -un) or root, or writable by group/others:" $b >&2; exit 98; }`,
		`if [ -f "$f" ] && [ -x "$f" ]; then ` + run + `; fi`,
		`if command -v gzip >/dev/null 2>&1; then z=gzip; else z=raw; fi`,
		need,
		`IFS= read -r n || ` + fail(`no size on stdin`),
		`[ "$n" -ge 0 ] 2>/dev/null || ` + fail(`bad size $n`),
		`t="$p/.herd.$$"`,
		`if [ "$z" = gzip ]; then head -c "$n" | gzip -dc >"$t"; else head -c "$n" >"$t"; fi || { rm -f "$t"; ` + fail(`cannot write $t`)[2:],
		`chmod 700 "$t" && mv -f "$t" "$f" || { rm -f "$t"; ` + fail(`cannot install $f`)[2:],
		run,
	}, "; ")
}

// BrokerCommand turns the command Start passes to its start function
// into one that starts the become broker (`herd agent --become`) instead of
// the agent, from the same cache and with the same install path.
func BrokerCommand(cmd string) (string, error) {
	const plain, broker = " agent --hash ", " agent --become --hash "
	if strings.Count(cmd, plain) != 2 {
		return "", errors.New("become: the bootstrap command has changed shape; cannot start the broker")
	}
	return strings.ReplaceAll(cmd, plain, broker), nil
}
