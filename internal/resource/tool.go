package resource

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// tool is a system command a kind drives (groupadd, apt-get...). Its stdin
// is how secrets reach it: argv is readable by every user of the machine.
type tool struct {
	argv  []string
	stdin string
	env   []string // added to PATH and LANG
	// hint is appended when the program is missing, e.g. which package
	// provides it.
	hint string
	// secret, when set, is removed from the captured output and errors.
	secret string
	// anyExit makes a non-zero exit a success: queries such as dpkg-query
	// exit 1 when one of several packages is unknown, and still answer.
	anyExit bool
}

// run executes t in its own process group (killed on cancel) with a minimal
// environment, and returns its output. A non-zero exit is an error that
// quotes the end of stderr.
func (t tool) run(ctx context.Context) (stdout, stderr string, err error) {
	prog, err := lookPath(t.argv[0], defaultPath)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed (not found in PATH %s)", t.argv[0], defaultPath)
		if t.hint != "" {
			msg += ": " + t.hint
		}
		return "", "", errors.New(msg)
	}
	var out, errOut capture
	cmd := groupCommand(ctx, prog, t.argv, "/", append([]string{"PATH=" + defaultPath, "LANG=C", "LC_ALL=C"}, t.env...), &out, &errOut)
	if t.stdin != "" {
		cmd.Stdin = strings.NewReader(t.stdin)
	}
	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	stdout, stderr = t.scrub(out.String()), t.scrub(errOut.String())
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return stdout, stderr, fmt.Errorf("%s stopped: %w", t.argv[0], context.Cause(ctx))
	case errors.As(err, &exitErr) && t.anyExit:
		return stdout, stderr, nil
	case errors.As(err, &exitErr):
		msg := fmt.Sprintf("%s exited with code %d", t.argv[0], exitErr.ExitCode())
		if tail := t.scrub(errOut.tailLines(errTailLines)); tail != "" {
			msg += ": " + tail
		}
		return stdout, stderr, errors.New(msg)
	case err != nil:
		return stdout, stderr, fmt.Errorf("%s: %w", t.argv[0], err)
	}
	return stdout, stderr, nil
}

func (t tool) scrub(s string) string {
	if t.secret == "" {
		return s
	}
	return strings.ReplaceAll(s, t.secret, "<hidden>")
}

const shadowHint = "install the shadow tools (package passwd on Debian/Ubuntu, shadow on Alpine and Fedora)"

// runAll runs tools in order, stopping at the first failure, and gathers
// their output for the Change.
func runAll(ctx context.Context, c *Change, tools ...tool) error {
	for _, t := range tools {
		out, errOut, err := t.run(ctx)
		c.Stdout += out
		c.Stderr += errOut
		if err != nil {
			return err
		}
	}
	return nil
}
