package resource

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/plan"
)

// changed_codes, ok_codes and changes=False decide from a real command's
// exit code whether it changed something, succeeded unchanged, or failed.
func TestExecExitCodes(t *testing.T) {
	tests := []struct {
		name        string
		params      plan.Params
		rc          int
		wantCheck   bool   // Check's Changed (check mode's "would change")
		wantChanged bool   // Apply's verdict
		wantErr     string // Apply fails with this, "" for success
	}{
		{"changed_codes [2]: 2 changed", plan.Params{"changed_codes": []int64{2}}, 2, true, true, ""},
		{"changed_codes [2]: 0 ok", plan.Params{"changed_codes": []int64{2}}, 0, true, false, ""},
		{"changed_codes [2]: 1 fails", plan.Params{"changed_codes": []int64{2}}, 1, true, false, "exit code 1 (ok_codes [0], changed_codes [2])"},
		{"ok_codes [0 1]: 0 unchanged", plan.Params{"ok_codes": []int64{0, 1}}, 0, false, false, ""},
		{"ok_codes [0 1]: 1 unchanged", plan.Params{"ok_codes": []int64{0, 1}}, 1, false, false, ""},
		{"ok_codes [1]: 0 still changed", plan.Params{"ok_codes": []int64{1}}, 0, true, true, ""},
		{"ok_codes [1]: 1 unchanged", plan.Params{"ok_codes": []int64{1}}, 1, true, false, ""},
		{"ok_codes [1]: 2 fails", plan.Params{"ok_codes": []int64{1}}, 2, true, false, "exit code 2"},
		{"both: 3 changed", plan.Params{"changed_codes": []int64{3}, "ok_codes": []int64{0, 4}}, 3, true, true, ""},
		{"both: 4 ok", plan.Params{"changed_codes": []int64{3}, "ok_codes": []int64{0, 4}}, 4, true, false, ""},
		{"both: 0 changed when listed", plan.Params{"changed_codes": []int64{0}, "ok_codes": []int64{1}}, 0, true, true, ""},
		{"changes=False: 0 unchanged", plan.Params{"changes": false}, 0, false, false, ""},
		{"changes=False: 1 fails", plan.Params{"changes": false}, 1, false, false, "exit code 1"},
		{"changes=False with ok_codes: 1 unchanged", plan.Params{"changes": false, "ok_codes": []int64{0, 1}}, 1, false, false, ""},
		{"changes=True alone is the default", plan.Params{"changes": true}, 0, true, true, ""},
		{"from JSON, as the agent gets it", jsonParams(t, `{"changed_codes": [2]}`), 2, true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.params.Clone()
			p["argv"] = []string{"/bin/sh", "-c", "exit " + strconv.Itoa(tt.rc)}
			r := build(t, "exec", "t", p, nil)
			c := mustCheck(t, r, testEnv(t))
			if c.Changed != tt.wantCheck {
				t.Errorf("Check Changed = %v (%q), want %v", c.Changed, c.Summary, tt.wantCheck)
			}
			if tt.params.Has("changes") && tt.params["changes"] == true {
				if c.Run {
					t.Errorf("changes=True alone asked for the exit code verdict")
				}
			} else if !c.Run {
				t.Errorf("Check did not ask for Apply's verdict (Run)")
			}
			got, err := r.Apply(context.Background(), testEnv(t))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Apply: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Apply error = %v, want %q", err, tt.wantErr)
			case err == nil && got.Changed != tt.wantChanged:
				t.Errorf("Apply Changed = %v (%q), want %v", got.Changed, got.Summary, tt.wantChanged)
			}
		})
	}
}

// Contradictions are refused when the resource is built (at the policy's
// call site), never on the target.
func TestExecExitCodesRefused(t *testing.T) {
	tests := []struct {
		params plan.Params
		want   string
	}{
		{plan.Params{"changed_codes": []int64{0, 2}, "ok_codes": []int64{2}}, "exit code 2 is in both changed_codes and ok_codes"},
		{plan.Params{"changes": false, "changed_codes": []int64{2}}, "changes=False and changed_codes contradict"},
		{plan.Params{"changed_codes": []int64{256}}, "exit code 256 is out of range"},
		{plan.Params{"ok_codes": []int64{-1}}, "exit code -1 is out of range"},
		{plan.Params{"changed_codes": []int64{}, "ok_codes": []int64{}}, "no exit code could succeed"},
		{plan.Params{"ok_codes": []any{"0"}}, "ok_codes[0]: want int"},
	}
	for _, tt := range tests {
		p := tt.params.Clone()
		p["command"] = "true"
		_, err := New(plan.Resource{Kind: "exec", Name: "t", Params: p}, nil)
		wantErrContaining(t, err, tt.want)
	}
}

func jsonParams(t *testing.T, s string) plan.Params {
	var p plan.Params
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		t.Fatal(err)
	}
	return p
}
