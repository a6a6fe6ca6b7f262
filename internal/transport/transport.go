// Package transport carries herd's bytes to targets: one SSH connection per
// target for the whole run (x/crypto/ssh, honouring ~/.ssh/config, ssh-agent,
// known_hosts and ProxyJump chains), or a local subprocess. Both give the same
// Session shape so the agent protocol above does not care which it runs over.
package transport

import (
	"errors"
	"fmt"
	"time"
)

// Target is one host as the inventory describes it. Zero fields are filled
// from ssh_config and then from OpenSSH's defaults, so an empty Target with a
// Name behaves like `ssh Name`.
type Target struct {
	Name     string // inventory name: ssh_config Host matching and error messages
	Address  string // herd_host; empty = ssh_config HostName, else Name
	Port     int    // 0 = ssh_config Port, else 22
	User     string // "" = ssh_config User, else the local user
	Password string // secret: offered for password/keyboard-interactive auth only; never logged
	KeyFiles []string
	// CheckHostKeys must be set true by callers unless the user explicitly
	// opted out; the zero value is the insecure choice only because Go has
	// no other default for a bool.
	CheckHostKeys bool
	// StrictHostKeys is what to do with a host key that known_hosts does not
	// hold, when CheckHostKeys is set: StrictYes refuses it, AcceptNew
	// records it in the first KnownHosts file. A changed key is refused
	// either way. "" = ssh_config StrictHostKeyChecking, else StrictYes.
	StrictHostKeys string
	KnownHosts     []string // default: ssh_config UserKnownHostsFile, else ~/.ssh/known_hosts
	ProxyJump      *Target  // hop to reach this target through (ssh -J); overrides ssh_config ProxyJump
}

// Config is shared by every connection of a Pool.
type Config struct {
	ConnectTimeout time.Duration // TCP connect + SSH handshake + auth; default 10s
	// KeepAlive is the interval of keepalive@openssh.com requests; after
	// three unanswered intervals the connection is closed so a hung host
	// fails its sessions instead of blocking the run forever. Default 15s.
	KeepAlive time.Duration
	MaxConns  int // connection set-ups in flight at once; default 16
	// DialRetries is how many more times a set-up that failed for a
	// passing reason (timeout, refused, closed mid-handshake) is tried,
	// after 0.5s, 1s, 2s... (retry.go). 0 = DefaultDialRetries; <0 = none.
	DialRetries int
	// OnDialRetry, when set, hears of every retry (for events): the
	// target's inventory name, the attempt about to be made, how many
	// there may be, the pause before it and the error.
	OnDialRetry   func(target string, attempt, attempts int, wait time.Duration, err error)
	SSHConfigFile string // default ~/.ssh/config; "none" = read no file
	// NoAgent disables ssh-agent keys (SSH_AUTH_SOCK). Negative so that the
	// zero Config uses the agent like ssh does.
	NoAgent bool
	// PasswordPrompt, when set, is asked for a password after key auth
	// failed for a target without Target.Password.
	PasswordPrompt func(target string) (string, error)
	// Persist > 0 keeps each connection open after the run, in a detached
	// `herd mux serve` process, until it has been idle that long; the next
	// run reuses it (mux.go). Endpoints with a password are not persisted.
	Persist time.Duration
	// MuxDir is where persisted connections listen; default ~/.herd/mux.
	MuxDir string
	// MuxCommand starts a mux (ServeMux on its stdin and stdout); default
	// this executable with the arguments "mux serve".
	MuxCommand []string
	// Debugf receives notes useful with --debug (skipped keys, host key
	// fingerprints). Never receives secrets. Nil = discard.
	Debugf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 15 * time.Second
	}
	if c.DialRetries == 0 {
		c.DialRetries = DefaultDialRetries
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 16
	}
	if c.Debugf == nil {
		c.Debugf = func(string, ...any) {}
	}
	return c
}

// Errors callers may want to tell apart (errors.Is); messages carry the
// details and the fix.
var (
	ErrUnknownHostKey = errors.New("unknown host key")
	ErrHostKeyChanged = errors.New("HOST KEY CHANGED")
	ErrAuthFailed     = errors.New("authentication failed")
	ErrUnreachable    = errors.New("host unreachable")
)

// ExitError reports a remote or local command that ended unsuccessfully.
type ExitError struct {
	Code   int    // exit status; -1 when killed by a signal
	Signal string // signal name without SIG, when killed by one
}

func (e *ExitError) Error() string {
	if e.Signal != "" {
		return "killed by signal " + e.Signal
	}
	return fmt.Sprintf("exit status %d", e.Code)
}
