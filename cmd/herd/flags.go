package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// validateFlags refuses values the flag package accepts but herd cannot
// honour, which used to be replaced by defaults or misread silently
// (--parallel 0 ran nothing in parallel, --connect-timeout -1s meant 10s).
// It returns one line naming the flag.
func validateFlags(fs *pflag.FlagSet, f policyFlags, pf pushFlags) error {
	if f.parallel < 1 {
		return fmt.Errorf("--parallel %d: want at least 1 resource at once", f.parallel)
	}
	if fs.Changed("max-conns") && pf.maxConns < 1 {
		return fmt.Errorf("--max-conns %d: want at least 1 connection set-up at once", pf.maxConns)
	}
	if pf.timeout <= 0 {
		return fmt.Errorf("--connect-timeout %s: want a positive duration such as 10s", pf.timeout)
	}
	if pf.sshConfig != "" && pf.sshConfig != "none" {
		fi, err := os.Stat(pf.sshConfig)
		switch {
		case err != nil:
			return fmt.Errorf("--ssh-config %s: %v (use --ssh-config none to read no file)", pf.sshConfig, pathErr(err))
		case fi.IsDir():
			return fmt.Errorf("--ssh-config %s: is a directory, not an ssh config file", pf.sshConfig)
		}
	}
	return nil
}

// pathErr drops the "stat FILE:" prefix the caller already printed.
func pathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// varsFlag collects -e key=value pairs.
type varsFlag map[string]any

func (v varsFlag) String() string { return "" }
func (v varsFlag) Type() string   { return "key=value" }
func (v varsFlag) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return errors.New("want key=value")
	}
	v[k] = val
	return nil
}
