package push

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Outcomes of a host in a run, as recorded for --limit @failed and kin.
const (
	OutcomeOK          = "ok"
	OutcomeChanged     = "changed"
	OutcomeFailed      = "failed"
	OutcomeUnreachable = "unreachable"
	OutcomeSkipped     = "skipped"
	OutcomeInterrupted = "interrupted"
)

// runRecord is the per-policy file a run leaves behind: which host ended
// how, so the next run can select them (Ansible's .retry files, for every
// state).
type runRecord struct {
	Policy string            `json:"policy"`
	Time   time.Time         `json:"time"`
	Check  bool              `json:"check"`
	Hosts  map[string]string `json:"hosts"`
}

// DefaultRunsDir is where runs are recorded unless the caller says
// otherwise: ~/.herd/runs.
func DefaultRunsDir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".herd", "runs"), nil
}

func recordPath(dir, policyFile string) string {
	abs, err := filepath.Abs(policyFile)
	if err != nil {
		abs = policyFile
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(dir, hex.EncodeToString(sum[:8])+".json")
}

// Outcome names how h ended.
func (h *HostResult) Outcome() string {
	switch {
	case h.Unreachable:
		return OutcomeUnreachable
	case h.Failed:
		return OutcomeFailed
	case h.Interrupted:
		return OutcomeInterrupted
	case h.Skipped:
		return OutcomeSkipped
	case h.Counts.Changed > 0:
		return OutcomeChanged
	}
	return OutcomeOK
}

// RecordOutcome writes every host's outcome of res for policyFile under
// dir, atomically (a crash leaves the previous record whole).
func RecordOutcome(dir, policyFile string, check bool, res *Result) error {
	rec := runRecord{Policy: policyFile, Time: time.Now().UTC(), Check: check, Hosts: map[string]string{}}
	for name, h := range res.Hosts {
		rec.Hosts[name] = h.Outcome()
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".run-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), recordPath(dir, policyFile))
}

// RecordedHosts returns the hosts the last recorded run of policyFile left
// in state: "failed" (failed, unreachable or interrupted, as Ansible's
// retry file), "unreachable" or "changed". No record is an error: running
// nothing, or everything, would both surprise.
func RecordedHosts(dir, policyFile, state string) ([]string, error) {
	want := map[string][]string{
		"failed":      {OutcomeFailed, OutcomeUnreachable, OutcomeInterrupted},
		"unreachable": {OutcomeUnreachable},
		"changed":     {OutcomeChanged},
	}[state]
	if want == nil {
		return nil, fmt.Errorf("@%s: want @failed, @unreachable or @changed", state)
	}
	data, err := os.ReadFile(recordPath(dir, policyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("@%s: no recorded run of %s yet (in %s)", state, policyFile, dir)
	}
	if err != nil {
		return nil, err
	}
	var rec runRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("@%s: run record %s: %v", state, recordPath(dir, policyFile), err)
	}
	var out []string
	for name, o := range rec.Hosts {
		if slices.Contains(want, o) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}
