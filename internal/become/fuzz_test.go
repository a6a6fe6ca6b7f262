package become

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// fuzzPassword is the password the controller holds while a fuzzed broker
// answers; no error may quote it.
const fuzzPassword = "s3cret pw"

// countingReader counts what Negotiate consumed, since the stream continues
// with the privileged agent's protocol after the verdict.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// FuzzNegotiate plays a broker (or whatever answers in its place) that
// prints arbitrary bytes. Negotiate must never panic, never read past the
// verdict line, never quote the password in an error, and always return a
// one-line error.
func FuzzNegotiate(f *testing.F) {
	req := Request{Method: Sudo, User: "root", Password: fuzzPassword}
	echoed, _ := json.Marshal(req)
	for _, s := range []string{
		"",
		greeting,
		greeting + `{"ok":true}` + "\nAGENT PROTOCOL",
		greeting + `{"ok":false,"kind":"wrong-password","whose":"deploy","detail":"Sorry, try again."}` + "\n",
		greeting + `{"ok":false,"kind":"need-password","whose":"deploy"}` + "\n",
		greeting + `{"ok":false,"kind":"denied","detail":"deploy is not in the sudoers file"}` + "\n",
		greeting + `{"ok":false,"kind":"failed","detail":"sudo said: s3cret pw\n\tagain"}` + "\n",
		greeting + `{"ok":false,"kind":"wrong-password","whose":"s3cret pw\nx"}` + "\n",
		greeting + string(echoed) + "\n", // a target that echoes its stdin
		greeting + "[sudo] password: s3cret pw\n",
		"Last login: yesterday\n",
		greeting + strings.Repeat("x", 9000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &countingReader{r: bytes.NewReader(data)}
		var sent bytes.Buffer
		err := Negotiate(r, &sent, req)

		// Nothing after the verdict line (the second line) is consumed.
		limit := len(data)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			if j := bytes.IndexByte(data[i+1:], '\n'); j >= 0 {
				limit = i + 1 + j + 1
			}
		}
		if r.n > limit {
			t.Fatalf("Negotiate read %d bytes, past the verdict line ending at %d", r.n, limit)
		}
		if err == nil {
			if r.n != limit || !bytes.HasPrefix(data, []byte(greeting)) {
				t.Fatalf("Negotiate succeeded after reading %d bytes (verdict line ends at %d)", r.n, limit)
			}
			got, derr := decodeRequest(strings.TrimSuffix(sent.String(), "\n"))
			if derr != nil || got != req {
				t.Fatalf("the broker reads %+v (%v) from the request line %q", got, derr, sent.String())
			}
			return
		}
		msg := err.Error()
		if strings.Contains(msg, fuzzPassword) {
			t.Fatalf("error quotes the password: %s", msg)
		}
		if strings.ContainsAny(msg, "\r\n") {
			t.Fatalf("error is not one line: %q", msg)
		}
		var be *Error
		if errors.As(err, &be) && strings.Contains(be.Whose+be.Detail, fuzzPassword) {
			t.Fatalf("become.Error fields quote the password: %+v", be)
		}
	})
}

// errorWords are the fixed words of the errors Negotiate returns before
// sending a request.
const errorWords = "unknown become method (known: sudo, su, doas) become user is not a valid user name to: the become password is not valid UTF-8 text too long bytes"

// FuzzRequestLine checks the controller's request line round-trips through
// the broker's parser: the broker must become exactly the user, with exactly
// the password, the controller asked for — or Negotiate must refuse the
// request before sending anything.
func FuzzRequestLine(f *testing.F) {
	f.Add("sudo", "root", "", int64(0))
	f.Add("su", "postgres", "pa\"ss\nword\\", int64(10*time.Second))
	f.Add("doas", "deploy", "pässwörd", int64(-1))
	f.Add("sudo", "root", "\xff\xfe", int64(0))
	f.Add("sudo", "root", strings.Repeat("x", 70<<10), int64(0))
	f.Fuzz(func(t *testing.T, method, user, password string, timeout int64) {
		req := Request{Method: method, User: user, Password: password, Timeout: time.Duration(timeout)}
		var sent bytes.Buffer
		err := Negotiate(strings.NewReader(greeting+`{"ok":true}`+"\n"), &sent, req)
		if err != nil {
			if sent.Len() != 0 {
				t.Fatalf("refused request (%v) was sent anyway: %q", err, sent.String())
			}
			// A short password may well be part of the message's own words.
			if len(password) >= 8 && !strings.Contains(method+user+errorWords, password) && strings.Contains(err.Error(), password) {
				t.Fatalf("error quotes the password: %v", err)
			}
			return
		}
		// The broker's side: one line, read as Serve reads it.
		line, rerr := readLine(&sent, maxRequestLine)
		if rerr != nil || sent.Len() != 0 {
			t.Fatalf("request is not one line the broker reads: %v, %d bytes left", rerr, sent.Len())
		}
		got, derr := decodeRequest(line)
		if derr != nil {
			t.Fatalf("broker cannot parse the request line %q: %v", line, derr)
		}
		if got != req {
			t.Fatalf("broker reads %+v, controller sent %+v", got, req)
		}
	})
}
