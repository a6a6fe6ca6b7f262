package resource

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/safefile"
)

func init() {
	Register(&Schema{
		Kind: "password",
		Doc: "A random secret generated once on the target and kept there, so it never crosses the " +
			"network or lands in a plan. Never regenerated while its file exists.",
		Outputs: []string{"value"},
		Params: []Param{
			{Name: "length", Type: Int, Doc: "number of characters from [A-Za-z0-9] (default 24)"},
			{Name: "path", Type: String, Doc: "absolute path of the file that keeps it (default <state dir>/passwords/<name>)"},
		},
		Factory: newPassword,
	})
}

const (
	defaultPasswordLength = 24
	maxPasswordLength     = 4096
	passwordAlphabet      = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	// PasswordPlaceholder is the value a password not yet generated sends in
	// check mode, where nothing may be written.
	PasswordPlaceholder = "<generated on apply>"
)

type password struct {
	name   string
	path   string // empty: under env.StateDir
	length int
	value  string
}

func newPassword(name string, p plan.Params, blobs map[string][]byte) (Resource, error) {
	n, err := p.Int("length", defaultPasswordLength)
	if err != nil {
		return nil, fmt.Errorf("password %s: %w", name, err)
	}
	if n < 1 || n > maxPasswordLength {
		return nil, fmt.Errorf("password %s: length %d is out of range 1..%d", name, n, maxPasswordLength)
	}
	path, err := p.Str("path", "")
	if err != nil {
		return nil, fmt.Errorf("password %s: %w", name, err)
	}
	if path != "" {
		if err := checkAbs("password "+name+": path", path); err != nil {
			return nil, err
		}
	} else if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("password %q: the name is used as a file name; give a plain name or set path=", name)
	}
	return &password{name: name, path: path, length: int(n)}, nil
}

func (pw *password) file(env *Env) (string, error) {
	if pw.path != "" {
		return pw.path, nil
	}
	if env == nil || env.StateDir == "" {
		return "", fmt.Errorf("password %s: no state directory to keep it in; set path=", pw.name)
	}
	return filepath.Join(env.StateDir, "passwords", pw.name), nil
}

// load reads the kept password; ok is false when there is none yet.
func (pw *password) load(path string) (ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("password %s: %w", pw.name, err)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return false, fmt.Errorf("password %s: %s is empty; remove it to generate a new password", pw.name, path)
	}
	pw.value = v
	return true, nil
}

func (pw *password) Check(ctx context.Context, env *Env) (Change, error) {
	path, err := pw.file(env)
	if err != nil {
		return Change{}, err
	}
	ok, err := pw.load(path)
	if err != nil || ok {
		return Change{}, err
	}
	pw.value = PasswordPlaceholder
	return Change{Changed: true, Summary: "would generate"}, nil
}

func (pw *password) Apply(ctx context.Context, env *Env) (Change, error) {
	path, err := pw.file(env)
	if err != nil {
		return Change{}, err
	}
	if ok, err := pw.load(path); err != nil || ok {
		return Change{}, err
	}
	v, err := randomString(pw.length)
	if err != nil {
		return Change{}, fmt.Errorf("password %s: %w", pw.name, err)
	}
	if err := mkdirPrivate(filepath.Dir(path)); err != nil {
		return Change{}, fmt.Errorf("password %s: %w", pw.name, err)
	}
	if err := safefile.WriteBytes(path, []byte(v+"\n"), 0o600, safefile.Keep, safefile.Keep); err != nil {
		return Change{}, fmt.Errorf("password %s: %w", pw.name, err)
	}
	pw.value = v
	return Change{Changed: true, Summary: "generated"}, nil
}

func (pw *password) Outputs() map[string]string { return map[string]string{"value": pw.value} }

func (pw *password) SecretOutputs() bool { return true }

// mkdirPrivate creates dir (and parents) readable only by its owner; an
// existing directory is left as it is.
func mkdirPrivate(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// randomString draws n characters uniformly from passwordAlphabet, rejecting
// bytes that would bias the modulo.
func randomString(n int) (string, error) {
	const limit = 256 - 256%len(passwordAlphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2+8)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, passwordAlphabet[int(b)%len(passwordAlphabet)])
			}
		}
	}
	return string(out), nil
}
