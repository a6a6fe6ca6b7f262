package resource

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"syscall"

	"github.com/herd-project/herd/internal/plan"
)

// exitVerdict is exec's changed_codes, ok_codes and changes=False: what an
// Ansible user says with changed_when and failed_when on the exit code. A
// read-only command (a status query, a grep) is then not "changed" on
// every run.
type exitVerdict struct {
	changed, ok []int64 // exit codes meaning changed / success without a change
	never       bool    // changes=False: nothing this command does is a change
}

// newExitVerdict reads the params; nil when none is given (exit 0 is a
// change, anything else fails, as always).
func newExitVerdict(p plan.Params) (*exitVerdict, error) {
	changed, err := p.IntList("changed_codes")
	if err != nil {
		return nil, err
	}
	ok, err := p.IntList("ok_codes")
	if err != nil {
		return nil, err
	}
	changes, err := p.Bool("changes", true)
	if err != nil {
		return nil, err
	}
	if !p.Has("changed_codes") && !p.Has("ok_codes") && changes {
		return nil, nil
	}
	for _, l := range [][]int64{changed, ok} {
		for _, c := range l {
			if c < 0 || c > 255 {
				return nil, fmt.Errorf("exit code %d is out of range (0 to 255)", c)
			}
		}
	}
	for _, c := range changed {
		if slices.Contains(ok, c) {
			return nil, fmt.Errorf("exit code %d is in both changed_codes and ok_codes", c)
		}
	}
	if !changes && len(changed) > 0 {
		return nil, errors.New("changes=False and changed_codes contradict each other; list the codes in ok_codes")
	}
	if p.Has("changed_codes") && p.Has("ok_codes") && len(changed)+len(ok) == 0 {
		return nil, errors.New("changed_codes and ok_codes are both empty: no exit code could succeed")
	}
	v := &exitVerdict{changed: changed, ok: ok, never: !changes}
	if !p.Has("changed_codes") && changes && !slices.Contains(ok, 0) {
		v.changed = []int64{0}
	}
	if !p.Has("ok_codes") && !slices.Contains(v.changed, 0) {
		v.ok = []int64{0}
	}
	if v.never {
		v.ok, v.changed = append(v.ok, v.changed...), nil
	}
	return v, nil
}

// check is what check mode says before the command runs: it would run,
// and changes only if some exit code could mean a change.
func (v *exitVerdict) check() Change {
	if len(v.changed) == 0 {
		return Change{Run: true, Summary: "would run (reports no change)"}
	}
	return Change{Changed: true, Run: true, Summary: "would run"}
}

// judge says what exit code rc means: changed, unchanged, or an error
// naming the codes that would have been accepted.
func (v *exitVerdict) judge(rc int) (bool, error) {
	switch {
	case slices.Contains(v.changed, int64(rc)):
		return true, nil
	case slices.Contains(v.ok, int64(rc)):
		return false, nil
	}
	return false, fmt.Errorf("exit code %d (ok_codes %v, changed_codes %v)", rc, v.ok, v.changed)
}

// signaled says whether the command was killed by a signal rather than
// exiting: never a code any list can accept.
func signaled(err *exec.ExitError) bool {
	ws, ok := err.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}
