package resource

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParsePasswd(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []passwdEntry
		wantErr string
	}{
		{
			name: "regular lines, comments, blanks and NIS compat entries",
			in: "root:x:0:0:root:/root:/bin/bash\n# comment\n\n+nisuser::::::\n" +
				"alice:x:1000:1000:Alice A,,,:/home/alice:/bin/sh\n",
			want: []passwdEntry{
				{name: "root", uid: 0, gid: 0, gecos: "root", home: "/root", shell: "/bin/bash"},
				{name: "alice", uid: 1000, gid: 1000, gecos: "Alice A,,,", home: "/home/alice", shell: "/bin/sh"},
			},
		},
		{
			name: "empty shell and home are kept empty",
			in:   "svc:x:999:999:::\n",
			want: []passwdEntry{{name: "svc", uid: 999, gid: 999}},
		},
		{name: "no trailing newline", in: "a:x:1:2::/:/bin/false", want: []passwdEntry{{name: "a", uid: 1, gid: 2, home: "/", shell: "/bin/false"}}},
		{name: "too few fields", in: "root:x:0:0\n", wantErr: "line 1: 4 fields, want at least 7"},
		{name: "uid not a number", in: "root:x:0:0::/:/bin/sh\nbad:x:one:0::/:/bin/sh\n", wantErr: `line 2: uid "one" is not a number`},
		{name: "negative gid", in: "bad:x:1:-1::/:/bin/sh\n", wantErr: `gid "-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePasswd(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				wantErrContaining(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseGroup(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []groupEntry
		wantErr string
	}{
		{
			name: "members split on commas, empty list is nil",
			in:   "root:x:0:\nsudo:x:27:alice,bob\nadm:x:4:syslog, alice ,\n",
			want: []groupEntry{
				{name: "root", gid: 0},
				{name: "sudo", gid: 27, members: []string{"alice", "bob"}},
				{name: "adm", gid: 4, members: []string{"syslog", "alice"}},
			},
		},
		{name: "too few fields", in: "root:x:0\n", wantErr: "line 1: 3 fields, want at least 4"},
		{name: "gid not a number", in: "g:x:zero:\n", wantErr: `gid "zero" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseGroup(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				wantErrContaining(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseShadow(t *testing.T) {
	const hash = "$6$salt$abcdefghijklmnopqrstuvwxyz"
	got, err := parseShadow(strings.NewReader("root:*:19000:0:99999:7:::\nalice:" + hash + ":19000:0:99999:7:::\nlocked:!:19000::::::\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"root": "*", "alice": hash, "locked": "!"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// A malformed line is reported by number, never quoted: it may hold a hash.
	_, err = parseShadow(strings.NewReader("ok:x\n" + hash + "\n"))
	wantErrContaining(t, err, "line 2")
	if err != nil && strings.Contains(err.Error(), hash) {
		t.Errorf("error quotes the hash: %v", err)
	}
}

// etcFiles writes account files into a temp dir standing for /etc; shadow
// is left out when it is "".
func etcFiles(t *testing.T, passwd, group, shadow string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "passwd"), passwd, 0o644)
	writeFile(t, filepath.Join(dir, "group"), group, 0o644)
	if shadow != "" {
		writeFile(t, filepath.Join(dir, "shadow"), shadow, 0o640)
	}
	return dir
}

func TestReadAccounts(t *testing.T) {
	dir := etcFiles(t,
		"root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n",
		"root:x:0:\nalice:x:1000:\nsudo:x:27:alice\nadm:x:4:bob,alice\nstaff:x:50:bob\n",
		"root:*:1::::::\nalice:$y$abc:1::::::\n")
	a, err := readAccounts(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.memberOf("alice"); !reflect.DeepEqual(got, []string{"adm", "sudo"}) {
		t.Errorf("memberOf(alice) = %v, want [adm sudo] (sorted, primary group not implied)", got)
	}
	if gid, ok := a.groupGID("staff"); !ok || gid != 50 {
		t.Errorf("groupGID(staff) = %d %v", gid, ok)
	}
	if gid, ok := a.groupGID("4242"); !ok || gid != 4242 {
		t.Errorf("groupGID(4242) = %d %v: numbers need no group entry", gid, ok)
	}
	if _, ok := a.groupGID("nogroup"); ok {
		t.Error("groupGID(nogroup) found a group that does not exist")
	}
	if a.groupLabel(27) != "sudo" || a.groupLabel(777) != "777" {
		t.Errorf("groupLabel: %q %q", a.groupLabel(27), a.groupLabel(777))
	}
	if a.hashes["alice"] != "$y$abc" {
		t.Errorf("hash of alice = %q", a.hashes["alice"])
	}

	os.Remove(filepath.Join(dir, "shadow"))
	if a, err = readAccounts(dir); err != nil || a.hashes != nil {
		t.Errorf("without shadow: hashes=%v err=%v, want nil (unknown) and no error", a.hashes, err)
	}
	os.Remove(filepath.Join(dir, "group"))
	_, err = readAccounts(dir)
	wantErrContaining(t, err, filepath.Join(dir, "group"))
}

func TestAccountNames(t *testing.T) {
	for _, name := range []string{"", "a:b", "a,b", "a b", "-rf", "a/b", "a\nb"} {
		if validAccountName("user", name) == nil {
			t.Errorf("%q accepted", name)
		}
	}
	for _, name := range []string{"alice", "www-data", "svc_1", "Debian-exim", "user$"} {
		if err := validAccountName("user", name); err != nil {
			t.Errorf("%q rejected: %v", name, err)
		}
	}
}
