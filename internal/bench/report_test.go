package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// The table puts herd's median next to each contender's, with the ratios
// and, behind latency, herd's wall time in round trips.
func TestWriteTable(t *testing.T) {
	rows := []Row{
		{Scenario: Scenarios[0], Tools: map[string]Measurement{
			"herd":    measured([]time.Duration{ms(300), ms(250), ms(400)}),
			"ansible": measured([]time.Duration{ms(6000)}),
			"mitogen": measured([]time.Duration{ms(3000)}),
		}},
		{Scenario: Scenarios[2], Tools: map[string]Measurement{
			"herd":    measured([]time.Duration{ms(1800)}),
			"ansible": {NA: "timed out after 10m0s"},
		}},
	}
	var b bytes.Buffer
	if err := WriteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	want := [][]string{
		{"scenario", "hosts", "RTT", "herd", "ansible", "mitogen", "ansible/herd", "mitogen/herd", "herd", "RTTs", "over", "LAN"},
		{"lan1", "1", "LAN", "0.30s", "6.00s", "3.00s", "20.0×", "10.0×", "-", "-"},
		{"wan1", "1", "180ms", "1.80s", "n/a", "-", "-", "-", "10.0", "8.3"},
		{"n/a", "wan1", "ansible:", "timed", "out", "after", "10m0s"},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), b.String())
	}
	for i, w := range want {
		if got := strings.Fields(lines[i]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d = %q, want fields %q", i, lines[i], w)
		}
	}
}

func TestMedianIsTheMiddleRun(t *testing.T) {
	for _, tc := range []struct {
		runs []time.Duration
		want time.Duration
	}{
		{[]time.Duration{ms(5)}, ms(5)},
		{[]time.Duration{ms(9), ms(1), ms(5)}, ms(5)},
		{[]time.Duration{ms(4), ms(1), ms(3), ms(2)}, ms(3)}, // upper middle: never flatters
	} {
		m := measured(tc.runs)
		if m.Median != tc.want {
			t.Errorf("median of %v = %v, want %v", tc.runs, m.Median, tc.want)
		}
		if m.Runs[0] != tc.runs[0] {
			t.Errorf("measured reordered the runs: %v", m.Runs)
		}
	}
}

func TestRatiosNeedBothNumbers(t *testing.T) {
	r := Row{Scenario: Scenarios[1], Tools: map[string]Measurement{
		"herd":    {NA: "warm-up: exit status 4"},
		"ansible": measured([]time.Duration{ms(1000)}),
	}}
	if x, ok := r.Ratio("ansible"); ok {
		t.Errorf("ratio without a herd number = %v, want none", x)
	}
	if n, ok := r.HerdRoundTrips(); ok {
		t.Errorf("round trips on the LAN = %v, want none", n)
	}
	wan := Row{Scenario: Scenarios[3], Tools: map[string]Measurement{"herd": measured([]time.Duration{ms(3000)})}}
	if n, ok := LatencyRoundTrips([]Row{r, wan}, wan); ok {
		t.Errorf("round trips over a LAN run without a number = %v, want none", n)
	}
}

func TestWriteJSON(t *testing.T) {
	rows := []Row{{Scenario: Scenarios[3], Tools: map[string]Measurement{"herd": measured([]time.Duration{ms(2000)})}}}
	var b bytes.Buffer
	if err := WriteJSON(&b, Machine{CPUs: 2, Reps: 1, Steps: Steps}, rows); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Machine Machine
		Rows    []Row
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b.String())
	}
	if got.Machine.CPUs != 2 || len(got.Rows) != 1 || got.Rows[0].Scenario.Name != "wan20" ||
		got.Rows[0].Tools["herd"].Median != ms(2000) || got.Rows[0].Scenario.RTT != WANRTT {
		t.Errorf("round trip through JSON lost data: %+v", got)
	}
}

func TestParseLists(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"", "lan1 lan20 wan1 wan20", ""},
		{"all", "lan1 lan20 wan1 wan20", ""},
		{"wan20, lan1", "lan1 wan20", ""}, // printed in the canonical order
		{"lan2", "", `unknown scenario "lan2"`},
		{",", "", "no scenario named"},
	} {
		got, err := ParseScenarios(tc.in)
		var names []string
		for _, s := range got {
			names = append(names, s.Name)
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseScenarios(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(names, " ") != tc.want {
			t.Errorf("ParseScenarios(%q) = %v, %v; want %s", tc.in, names, err, tc.want)
		}
	}
	if got, err := ParseTools("mitogen,herd"); err != nil || strings.Join(got, " ") != "herd mitogen" {
		t.Errorf("ParseTools = %v, %v; want herd first", got, err)
	}
	if _, err := ParseTools("salt"); err == nil || !strings.Contains(err.Error(), "herd, ansible, mitogen") {
		t.Errorf("ParseTools(salt) error = %v, want the known tools listed", err)
	}
}

// A failed run is summed up by its most telling line.
func TestTellingLine(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{"PLAY [bench]\nfatal: [host1]: UNREACHABLE! => {}\nPLAY RECAP\n", "fatal: [host1]: UNREACHABLE! => {}"},
		{"ERROR! Your Ansible version (2.99) is too recent for Mitogen\n", "ERROR! Your Ansible version (2.99) is too recent for Mitogen"},
		{"line one\nlast words\n\n", "last words"},
		{"", "no output"},
	} {
		if got := tellingLine([]byte(tc.out)); got != tc.want {
			t.Errorf("tellingLine(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
}

// Mitogen at scale is timed per host it got through: a recap line counts
// only when nothing on it was unreachable or failed.
func TestRecapReachedCountsCleanHosts(t *testing.T) {
	out := []byte(`PLAY RECAP *********
host1 : ok=10 changed=10 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0
host2 : ok=0 changed=0 unreachable=1 failed=0 skipped=0 rescued=0 ignored=0
host3 : ok=4 changed=4 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0
host4 : ok=10 changed=5 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0
`)
	if got := recapReached(out); got != 2 {
		t.Errorf("recapReached = %d, want 2 (host1, host4)", got)
	}
}

// A Mitogen run killed at the bound is measured by the host-tasks it
// reported done: ok and changed count, fatal and skipped do not.
func TestTasksDoneCountsSucceededHostTasks(t *testing.T) {
	out := []byte("TASK [f1] ***\nchanged: [host1]\nok: [host2]\nfatal: [host3]: UNREACHABLE! => {}\nskipping: [host4]\n\nTASK [f2] ***\nchanged: [host1]\n")
	if got := tasksDone(out); got != 3 {
		t.Fatalf("tasksDone = %d, want 3", got)
	}
	p := MitogenProgress{Wall: 30 * time.Second, TasksDone: 3, Tasks: 40}
	if got := p.PerTask(); got != 10*time.Second {
		t.Fatalf("PerTask = %v, want 10s", got)
	}
}

// A "cached" run that sent the agent (hosts that had none, as with
// -first=false on a fresh lab) is flagged as the first contact it was;
// runs that sent only plans are not.
func TestWriteScaleFlagsCachedRunsThatSentTheAgent(t *testing.T) {
	tests := []struct {
		name    string
		sent    int64
		flagged bool
	}{
		{"cached S4 run", 10 << 10, false},
		{"just under the bound", agentSentPerHost, false},
		{"lean agent sent", 3400 << 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := ScaleRun{Hosts: 300, Wall: time.Minute, SentPerHost: tt.sent}
			var b bytes.Buffer
			WriteScale(&b, ScaleResult{Hosts: 300, Cached: []ScaleRun{run}, Subsets: []ScaleRun{{Hosts: 20, SentPerHost: 8 << 10}}})
			out := b.String()
			cachedLine := strings.Contains(out, "herd cached #1 (!)")
			note := strings.Contains(out, "first contact, not a cached run")
			if cachedLine != tt.flagged || note != tt.flagged {
				t.Errorf("flagged line %v, note %v, want %v:\n%s", cachedLine, note, tt.flagged, out)
			}
			if strings.Contains(out, "20 hosts (!)") {
				t.Errorf("the subset run sent 8 KiB per host and is flagged:\n%s", out)
			}
		})
	}
}
