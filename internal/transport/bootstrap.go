package transport

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Exit codes shared with the agent: the bootstrap snippet uses 96 for its own
// failures; the agent exits 97 after it found its own file does not match
// --hash and removed it, asking for a fresh copy.
//
// ExitUnsafePath: the bootstrap refused an agent directory, one of its
// parents or the cached binary because another user could write it (see
// BootstrapScript). ExitAgentWatched: the agent found itself wrapped,
// traced or its stdio held by another process (see agent.VerifyStart)
// and exited before reading anything.
const (
	ExitBootstrapFailed = 96
	ExitAgentCorrupt    = 97
	ExitUnsafePath      = 98
	ExitAgentWatched    = 99
	ExitNoAgentForArch  = 95
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

// BootstrapScript is the /bin/sh snippet that starts the agent on a target.
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
func BootstrapScript(hash, agentDir string) string {
	return bootstrapScript(`h=`+shellQuote(hash), false, agentDir)
}

// bootstrapScript is BootstrapScript with sel, the shell that sets h to
// the agent's hash: a constant, or a choice by `uname -m` (archSelect).
// byArch adds the chosen hash to the HERD-NEED line, so the controller
// knows which build to send.
func bootstrapScript(sel string, byArch bool, agentDir string) string {
	var dir string
	switch {
	case agentDir == "":
		dir = `"${HOME:?}"/.cache/herd`
	case agentDir == "~":
		dir = `"${HOME:?}"`
	case strings.HasPrefix(agentDir, "~/"):
		dir = `"${HOME:?}"/` + shellQuote(agentDir[2:])
	default:
		dir = shellQuote(agentDir)
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

// BrokerCommand turns the command Bootstrap passes to its start function
// into one that starts the become broker (`herd agent --become`) instead of
// the agent, from the same cache and with the same install path.
func BrokerCommand(cmd string) (string, error) {
	const plain, broker = " agent --hash ", " agent --become --hash "
	if strings.Count(cmd, plain) != 2 {
		return "", errors.New("become: the bootstrap command has changed shape; cannot start the broker")
	}
	return strings.ReplaceAll(cmd, plain, broker), nil
}

// Bootstrap starts the agent through start (a Client's Start, a become
// wrapper around it, or StartLocal) and returns the session whose Stdin and
// Stdout now carry the agent protocol. installed says the binary was sent.
// hash names the agent binary; payload gives its bytes, gzipped (nil: they
// are compressed here) and raw, and is called only when the target has no
// cached copy, so that a run over warm caches neither reads nor compresses
// the binary for this.
//
// The agent must speak first (its hello): Bootstrap waits for that first
// byte to tell a running agent from one that failed to start. An agent that
// exits 97 (cached copy corrupt, removed) is started once more, which
// installs a fresh copy.
func Bootstrap(ctx context.Context, start func(cmd string) (*Session, error), hash string, payload func() (gz, raw []byte, err error), agentDir string) (*Session, bool, error) {
	if err := checkHash(hash); err != nil {
		return nil, false, err
	}
	cmd := "exec /bin/sh -c " + shellQuote(BootstrapScript(hash, agentDir))
	return bootstrap(ctx, start, cmd, func(string) (gz, raw []byte, err error) { return payload() })
}

// bootstrap runs cmd (a bootstrap script) and sends the payload for the
// hash the target names ("" from a single-build script) when it asks.
func bootstrap(ctx context.Context, start func(cmd string) (*Session, error), cmd string, payload func(hash string) (gz, raw []byte, err error)) (*Session, bool, error) {
	installed := false
	for attempt := 1; ; attempt++ {
		s, err := start(cmd)
		if err != nil {
			return nil, installed, err
		}
		stop := context.AfterFunc(ctx, func() { s.Close() })
		first, err := readByte(s.Stdout)
		if err == nil && first == needPrefix[0] {
			var kind, hash string
			if kind, hash, err = readNeed(s.Stdout); errors.Is(err, errRefused) {
				stop()
				s.Close()
				return nil, installed, fmt.Errorf("agent bootstrap: %s: %w", whyWatched, err)
			}
			if err == nil {
				gz, raw, perr := payload(hash)
				if perr != nil {
					// Ours, not the target's: do not wait for its word.
					stop()
					s.Close()
					return nil, installed, fmt.Errorf("agent bootstrap: %w", perr)
				}
				if err = sendBinary(s.Stdin, kind, gz, raw); err == nil {
					installed = true
					first, err = readByte(s.Stdout)
				}
			}
		}
		stop()
		if err == nil {
			s.Stdout = io.MultiReader(bytes.NewReader([]byte{first}), s.Stdout)
			return s, installed, nil
		}
		failure := agentFailure(ctx, s, err)
		s.Close()
		var exit *ExitError
		if errors.As(failure, &exit) && exit.Code == ExitAgentCorrupt && attempt == 1 {
			continue
		}
		return nil, installed, failure
	}
}

var errRefused = errors.New("the agent refused to start")

// readNeed reads the rest of the "HERD-NEED <kind>" line one byte at a time,
// so nothing after the newline is consumed. A "HERD-REFUSED <why>" line
// is returned as an error wrapping errRefused.
func readNeed(r io.Reader) (kind, hash string, err error) {
	line := []byte{needPrefix[0]}
	for len(line) < 1024 {
		b, err := readByte(r)
		if err != nil {
			return "", "", fmt.Errorf("reading the bootstrap request: %w", err)
		}
		if b == '\n' {
			break
		}
		line = append(line, b)
	}
	if why, ok := strings.CutPrefix(string(line), RefusedPrefix); ok {
		return "", "", fmt.Errorf("%w: %s", errRefused, why)
	}
	rest, ok := strings.CutPrefix(string(line), needPrefix)
	kind, hash, _ = strings.Cut(rest, " ")
	if !ok || (kind != "gzip" && kind != "raw") {
		return "", "", fmt.Errorf("unexpected output from the target before the agent started: %q", line)
	}
	return kind, hash, nil
}

func sendBinary(w io.Writer, kind string, gz, raw []byte) error {
	payload := raw
	if kind == "gzip" {
		payload = gz
		if payload == nil {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			zw.Write(raw)
			zw.Close()
			payload = buf.Bytes()
		}
	}
	if _, err := io.WriteString(w, strconv.Itoa(len(payload))+"\n"); err != nil {
		return fmt.Errorf("sending the agent: %w", err)
	}
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("sending the agent: %w", err)
	}
	return nil
}

// agentFailure explains why the agent did not speak: its exit status and
// what it wrote to stderr.
func agentFailure(ctx context.Context, s *Session, readErr error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("agent bootstrap: %w", ctx.Err())
	}
	stderr, _ := io.ReadAll(io.LimitReader(s.Stderr, 4096))
	go io.Copy(io.Discard, s.Stderr)
	msg := strings.TrimSpace(string(stderr))
	if msg != "" {
		msg = ": " + msg
	}
	waitErr := s.Wait()
	var exit *ExitError
	if !errors.As(waitErr, &exit) {
		if waitErr == nil {
			waitErr = readErr
		}
		return fmt.Errorf("agent bootstrap: the agent ended without a word (%v)%s", waitErr, msg)
	}
	var why string
	switch exit.Code {
	case ExitBootstrapFailed:
		why = "installing the agent failed"
	case ExitAgentCorrupt:
		why = "the agent failed its self-check twice (the binary sent does not match its hash)"
	case ExitUnsafePath:
		why = "the agent directory is not safe (nothing was run from it)"
	case ExitAgentWatched:
		why = whyWatched
	case ExitNoAgentForArch:
		why = "no agent for this host's architecture"
	case 126:
		why = "the agent could not be executed (agent_dir on a noexec mount? set agent_dir)"
	case 127:
		why = "a command was not found (is /bin/sh there?)"
	default:
		why = "the agent exited before its first message"
	}
	return fmt.Errorf("agent bootstrap: %s, %w%s", why, exit, msg)
}

const whyWatched = "the cached agent is wrapped or watched by another program, so the login account may be compromised; nothing was sent to it"

func readByte(r io.Reader) (byte, error) {
	var b [1]byte
	_, err := io.ReadFull(r, b[:])
	return b[0], err
}
