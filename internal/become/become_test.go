package become

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestCommandRunsTheAgentThroughEachTool(t *testing.T) {
	agent := []string{"/home/deploy/.cache/herd/abc/herd", "agent", "--hash", "abc", "--become-socket", "@herd-become-1"}
	tests := []struct {
		method, user string
		want         []string // after the tool's path
	}{
		{Sudo, "root", append([]string{"-H", "-p", sudoPrompt, "-u", "root", "--"}, agent...)},
		{Doas, "postgres", append([]string{"-u", "postgres", "--"}, agent...)},
		{Su, "root", []string{"-c", "exec '/home/deploy/.cache/herd/abc/herd' 'agent' '--hash' 'abc' '--become-socket' '@herd-become-1'", "root"}},
	}
	for _, tt := range tests {
		got, err := Command(tt.method, tt.user, agent)
		if err != nil {
			t.Fatalf("%s: %v", tt.method, err)
		}
		if !strings.HasSuffix(got[0], tt.method) || !slices.Equal(got[1:], tt.want) {
			t.Errorf("%s: argv %q, want <%s> %q", tt.method, got, tt.method, tt.want)
		}
	}
}

func TestCommandRefusesWhatIsNotAUserOrMethod(t *testing.T) {
	for _, tt := range []struct{ method, user, want string }{
		{"pbrun", "root", "unknown become method"},
		{Sudo, "root; rm -rf /", "not a valid user name"},
		{Sudo, "-u", "not a valid user name"},
		{Sudo, "", "not a valid user name"},
	} {
		if _, err := Command(tt.method, tt.user, []string{"/bin/true"}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Command(%q, %q) error %v, want %q", tt.method, tt.user, err, tt.want)
		}
	}
	if _, err := Command(Sudo, "root", []string{"herd"}); err == nil {
		t.Error("a relative agent path was accepted")
	}
}

func TestPromptsAreRecognised(t *testing.T) {
	tests := []struct {
		method, text string
		want         bool
	}{
		{Sudo, sudoPrompt, true},
		{Sudo, "Sorry, try again.\r\n" + sudoPrompt, true},
		{Su, "Password: ", true},
		{Doas, "doas (deploy-pw@host4) password: ", true},
		{Sudo, "We trust you have received the usual lecture", false},
		{Su, "su: Authentication failure\r\n", false},
		{Doas, "password: ok\r\n", false},
	}
	for _, tt := range tests {
		if got := isPrompt(tt.method, tt.text); got != tt.want {
			t.Errorf("isPrompt(%s, %q) = %v, want %v", tt.method, tt.text, got, tt.want)
		}
	}
}

func TestFailuresAreClassifiedFromTheToolsWords(t *testing.T) {
	tests := []struct {
		out   string
		typed bool
		want  Kind
	}{
		{"Sorry, try again.\r\nsudo: 3 incorrect password attempts", true, WrongPassword},
		{"Password: su: Authentication failure", true, WrongPassword},
		{"doas: Authentication failed", true, WrongPassword},
		{"sudo: a password is required", false, NeedPassword},
		{"deploy is not in the sudoers file.", false, Denied},
		{"Sorry, user deploy is not allowed to execute '/x' as root on h.", false, Denied},
		{"doas: Operation not permitted", false, Denied},
		{"sudo: unable to resolve host", false, Failed},
	}
	for _, tt := range tests {
		if got := classify(tt.out, tt.typed); got != tt.want {
			t.Errorf("classify(%q) = %s, want %s", tt.out, got, tt.want)
		}
	}
}

// Negotiate, fed a broker's answers, returns what the controller acts on,
// and never repeats the password even if a broker quoted it.
func TestNegotiateReadsTheBrokersVerdict(t *testing.T) {
	const pw = "s3cretPassw0rd"
	tests := []struct {
		name, broker string
		wantErr      string
		wantKind     Kind
		rest         string
	}{
		{"ok leaves the agent stream untouched", greeting + `{"ok":true}` + "\n\x00\x00\x00\x05hello", "", "", "\x00\x00\x00\x05hello"},
		{"wrong password", greeting + `{"kind":"wrong-password","whose":"deploy-pw","detail":"sudo said: ` + pw + `"}` + "\n", "sudo to root: wrong password for deploy-pw (sudo said: ********)", WrongPassword, ""},
		{"not a broker", "HERD-NEED gzip\n", "unexpected output", "", ""},
		{"broker died", greeting, "broker ended without an answer", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := strings.NewReader(tt.broker)
			var sent strings.Builder
			err := Negotiate(r, &sent, Request{Method: Sudo, User: "root", Password: pw})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			var be *Error
			if tt.wantKind != "" && (!errors.As(err, &be) || be.Kind != tt.wantKind) {
				t.Errorf("error %#v, want kind %s", err, tt.wantKind)
			}
			if err != nil && strings.Contains(err.Error(), pw) {
				t.Errorf("error repeats the password: %v", err)
			}
			if rest, _ := io.ReadAll(r); string(rest) != tt.rest {
				t.Errorf("left %q on the stream, want %q", rest, tt.rest)
			}
			if tt.wantErr == "" && !strings.Contains(sent.String(), `"password":"`+pw+`"`) {
				t.Errorf("request %q does not carry the password", sent.String())
			}
		})
	}
}
