package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/herd-project/herd/internal/transport"
)

// Start starts the agent through start (a Client's Start, a become
// wrapper around it, or StartLocal) and returns the session whose Stdin and
// Stdout now carry the agent protocol. installed says the binary was sent.
// hash names the agent binary; payload gives its bytes, gzipped (nil: they
// are compressed here) and raw, and is called only when the target has no
// cached copy, so that a run over warm caches neither reads nor compresses
// the binary for this.
//
// The agent must speak first (its hello): Start waits for that first
// byte to tell a running agent from one that failed to start. An agent that
// exits 97 (cached copy corrupt, removed) is started once more, which
// installs a fresh copy.
func Start(ctx context.Context, start func(cmd string) (*transport.Session, error), hash string, payload func() (gz, raw []byte, err error), agentDir string) (*transport.Session, bool, error) {
	if err := checkHash(hash); err != nil {
		return nil, false, err
	}
	cmd := "exec /bin/sh -c " + transport.ShellQuote(Script(hash, agentDir))
	return run(ctx, start, cmd, func(string) (gz, raw []byte, err error) { return payload() })
}

func checkHash(hash string) error {
	if len(hash) < 16 || strings.Trim(hash, "0123456789abcdef") != "" {
		return fmt.Errorf("agent bootstrap: bad agent hash %q (want lowercase hex)", hash)
	}
	return nil
}

// run runs cmd (a bootstrap script) and sends the payload for the hash the
// target names ("" from a single-build script) when it asks.
func run(ctx context.Context, start func(cmd string) (*transport.Session, error), cmd string, payload func(hash string) (gz, raw []byte, err error)) (*transport.Session, bool, error) {
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
				if err == nil && first == needPrefix[0] {
					// Not a hello: the fresh copy refused to start (or
					// the target asks again). Never read it as a frame.
					_, _, err = readNeed(s.Stdout)
					if errors.Is(err, errRefused) {
						stop()
						s.Close()
						return nil, installed, fmt.Errorf("agent bootstrap: %s: %w", whyWatched, err)
					}
					if err == nil {
						err = errors.New("the target asked for the agent again after it was installed")
					}
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
		var exit *transport.ExitError
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
			payload = compress(raw)
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
func agentFailure(ctx context.Context, s *transport.Session, readErr error) error {
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
	var exit *transport.ExitError
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
	case transport.ExitConnTool:
		why = "the connection tool cannot reach the target"
	case 126:
		why = "the agent could not be executed (agent_dir on a noexec mount? set agent_dir)"
	case 127:
		why = "a command was not found (is /bin/sh there?)"
	default:
		why = "the agent exited before its first message"
	}
	if strings.Contains(msg, "Read-only file system") {
		why += " (the agent directory is on a read-only filesystem, as in a read-only container: set herd_home (a container or chroot: the agent's cache, state and log) or herd_agent_dir (the cache alone) to a writable directory on the target, such as a tmpfs at /tmp/herd; what is kept there is lost whenever the tmpfs is emptied)"
	}
	return fmt.Errorf("agent bootstrap: %s, %w%s", why, exit, msg)
}

const whyWatched = "the cached agent is wrapped or watched by another program, so the login account may be compromised; nothing was sent to it"

func readByte(r io.Reader) (byte, error) {
	var b [1]byte
	_, err := io.ReadFull(r, b[:])
	return b[0], err
}
