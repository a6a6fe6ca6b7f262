package become

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// greeting is the broker's first line. It does not start with 'H', so
// bootstrap.Start takes it for a started agent, not for an install
// request.
const greeting = "herd-become 1\n"

// DefaultTimeout bounds the whole become: prompt, password check, agent
// start. A wrong password fails well before it; it exists for tools that
// hang (a PAM module waiting on a token, a prompt we do not recognise).
const DefaultTimeout = 10 * time.Second

// Request is what the controller sends the broker, as one JSON line on the
// broker's stdin. Password is empty when none is configured; the broker then
// reports NeedPassword if the tool asks for one.
type Request struct {
	Method   string        `json:"method"`
	User     string        `json:"user"`
	Password string        `json:"password,omitempty"`
	Timeout  time.Duration `json:"timeout,omitempty"`
}

// Kind classifies a failed become, so the controller can ask for a
// password or name the fix.
type Kind string

const (
	NeedPassword  Kind = "need-password"
	WrongPassword Kind = "wrong-password"
	Denied        Kind = "denied" // the tool refused the user (sudoers, doas.conf)
	TimedOut      Kind = "timeout"
	Failed        Kind = "failed"
)

// reply is the broker's answer line; after {"ok":true} the stream carries
// the privileged agent's protocol.
type reply struct {
	OK     bool   `json:"ok"`
	Kind   Kind   `json:"kind,omitempty"`
	Whose  string `json:"whose,omitempty"` // whose password the tool wanted
	Detail string `json:"detail,omitempty"`
}

// Error is a failed become. It never contains the password: the broker
// scrubs the tool's output before quoting it.
type Error struct {
	Method, User string
	Kind         Kind
	Whose        string
	Detail       string
}

func (e *Error) Error() string {
	what := fmt.Sprintf("%s to %s", e.Method, e.User)
	var msg string
	switch e.Kind {
	case NeedPassword:
		msg = fmt.Sprintf("%s: %s asks for the password of %s and none is set; set herd_sudo_password (ansible_become_password) in the inventory, HERD_SUDO_PASSWORD, sudo_password in defaults.toml, or use --ask-become-pass", what, e.Method, e.Whose)
	case WrongPassword:
		msg = fmt.Sprintf("%s: wrong password for %s", what, e.Whose)
	case Denied:
		msg = fmt.Sprintf("%s: not allowed (check sudoers/doas.conf; see `go doc herd/become` for the rule herd needs)", what)
	case TimedOut:
		msg = fmt.Sprintf("%s: no agent started within the timeout", what)
	default:
		msg = what + ": failed"
	}
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// Negotiate is the controller's half: it reads the broker's greeting from r,
// sends req on w and reads the verdict. On success the stream continues
// with the privileged agent's own protocol, nothing of it consumed.
func Negotiate(r io.Reader, w io.Writer, req Request) error {
	if err := Validate(req.Method, req.User); err != nil {
		return err
	}
	g, err := readLine(r, 256)
	if err != nil {
		return fmt.Errorf("%s to %s: broker did not start: %w", req.Method, req.User, err)
	}
	if g+"\n" != greeting {
		return fmt.Errorf("%s to %s: unexpected output from the target instead of the become broker: %.80q", req.Method, req.User, scrub(g, req.Password))
	}
	b, err := encodeRequest(req)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("%s to %s: sending the request: %w", req.Method, req.User, err)
	}
	line, err := readLine(r, 8<<10)
	if err != nil {
		return fmt.Errorf("%s to %s: broker ended without an answer: %w", req.Method, req.User, err)
	}
	var rep reply
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		// A target that echoes its stdin would show the password here.
		return fmt.Errorf("%s to %s: bad answer from the become broker: %.80q", req.Method, req.User, scrub(line, req.Password))
	}
	if rep.OK {
		return nil
	}
	return &Error{Method: req.Method, User: req.User, Kind: rep.Kind, Whose: scrub(rep.Whose, req.Password), Detail: scrub(rep.Detail, req.Password)}
}

// maxRequestLine bounds the request line the broker reads.
const maxRequestLine = 64 << 10

// encodeRequest is the line the broker reads back with decodeRequest. JSON
// would silently replace bytes that are not UTF-8, turning the password into
// another one that the tool counts as a failed attempt, so such a password
// is refused here, as is one too long for the broker's line limit.
func encodeRequest(req Request) ([]byte, error) {
	if !utf8.ValidString(req.Password) {
		return nil, fmt.Errorf("%s to %s: the become password is not valid UTF-8 text", req.Method, req.User)
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if len(b) >= maxRequestLine {
		return nil, fmt.Errorf("%s to %s: the become password is too long (%d bytes)", req.Method, req.User, len(req.Password))
	}
	return append(b, '\n'), nil
}

// decodeRequest parses the request line (without its newline).
func decodeRequest(line string) (Request, error) {
	var req Request
	err := json.Unmarshal([]byte(line), &req)
	return req, err
}

// readLine reads one line a byte at a time, so nothing after the newline is
// taken from a stream that another reader continues.
func readLine(r io.Reader, max int) (string, error) {
	var b strings.Builder
	var c [1]byte
	for b.Len() < max {
		if _, err := io.ReadFull(r, c[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			return b.String(), err
		}
		if c[0] == '\n' {
			return b.String(), nil
		}
		b.WriteByte(c[0])
	}
	return b.String(), fmt.Errorf("line longer than %d bytes", max)
}

// scrub removes the password from text quoted in messages, whitespace
// collapsed and length bounded. Tools never echo it (the pty has echo off),
// this is the second lock.
func scrub(text, password string) string {
	hide := func(s string) string {
		if password == "" {
			return s
		}
		return strings.ReplaceAll(s, password, "********")
	}
	// Again after collapsing: "a\tb" becomes the password "a b".
	text = hide(strings.Join(strings.Fields(hide(text)), " "))
	if len(text) > 400 {
		text = text[len(text)-400:]
	}
	return text
}
