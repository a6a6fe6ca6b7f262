package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one scenario's measurements, keyed by tool name.
type Row struct {
	Scenario Scenario               `json:"scenario"`
	Tools    map[string]Measurement `json:"tools"`
}

// Ratio is other's median over herd's (how many times faster herd is), or
// false when either has no number.
func (r Row) Ratio(other string) (float64, bool) {
	h, o := r.Tools["herd"], r.Tools[other]
	if !h.OK() || !o.OK() || h.Median <= 0 {
		return 0, false
	}
	return float64(o.Median) / float64(h.Median), true
}

// HerdRoundTrips estimates how many round trips herd's wall time is worth
// at the scenario's RTT: the issue's "a handful of round trips whatever
// the step count".
func (r Row) HerdRoundTrips() (float64, bool) {
	h := r.Tools["herd"]
	if r.Scenario.RTT <= 0 || !h.OK() {
		return 0, false
	}
	return float64(h.Median) / float64(r.Scenario.RTT), true
}

// LatencyRoundTrips estimates what the latency itself costs herd: the
// wall time over the LAN scenario with the same hosts, in RTTs. Unlike
// HerdRoundTrips it leaves out the steps' own run time, which on a lab
// (every host sharing the machine's CPUs) grows with the number of hosts.
func LatencyRoundTrips(rows []Row, r Row) (float64, bool) {
	h := r.Tools["herd"]
	if r.Scenario.RTT <= 0 || !h.OK() {
		return 0, false
	}
	for _, lan := range rows {
		if l := lan.Tools["herd"]; lan.Scenario.RTT == 0 && lan.Scenario.Hosts == r.Scenario.Hosts && l.OK() {
			return float64(h.Median-l.Median) / float64(r.Scenario.RTT), true
		}
	}
	return 0, false
}

// Machine describes where the numbers were taken.
type Machine struct {
	CPUs     int               `json:"cpus"`
	Kernel   string            `json:"kernel,omitempty"`
	Versions map[string]string `json:"versions,omitempty"`
	Reps     int               `json:"reps"`
	Steps    int               `json:"steps"`
	// Load averages (1 min) around the run: the machine is shared, and a
	// busy one inflates every tool's numbers.
	LoadBefore string `json:"load_before,omitempty"`
	LoadAfter  string `json:"load_after,omitempty"`
}

// LoadAverage is the 1-minute load average, or "?".
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// WriteTable prints rows as an aligned table; tools not measured print
// "-", tools without a number "n/a" (the reasons follow the table). "herd
// RTTs" is HerdRoundTrips, "over LAN" is LatencyRoundTrips.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\thosts\tRTT\therd\tansible\tmitogen\tansible/herd\tmitogen/herd\therd RTTs\tover LAN\t")
	var notes []string
	for _, r := range rows {
		rtt := "LAN"
		if r.Scenario.RTT > 0 {
			rtt = fmt.Sprintf("%dms", r.Scenario.RTT.Milliseconds())
		}
		cells := []string{r.Scenario.Name, fmt.Sprint(r.Scenario.Hosts), rtt}
		for _, t := range Tools {
			m, ok := r.Tools[t]
			switch {
			case !ok:
				cells = append(cells, "-")
			case m.OK():
				cells = append(cells, seconds(m.Median))
			default:
				cells = append(cells, "n/a")
				notes = append(notes, fmt.Sprintf("%s %s: %s", r.Scenario.Name, t, m.NA))
			}
		}
		for _, t := range []string{"ansible", "mitogen"} {
			if x, ok := r.Ratio(t); ok {
				cells = append(cells, fmt.Sprintf("%.1f×", x))
			} else {
				cells = append(cells, "-")
			}
		}
		for _, f := range []func() (float64, bool){r.HerdRoundTrips, func() (float64, bool) { return LatencyRoundTrips(rows, r) }} {
			if n, ok := f(); ok {
				cells = append(cells, fmt.Sprintf("%.1f", n))
			} else {
				cells = append(cells, "-")
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		if _, err := fmt.Fprintln(w, "n/a "+n); err != nil {
			return err
		}
	}
	return nil
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// WriteJSON prints the machine and rows as one JSON document.
func WriteJSON(w io.Writer, m Machine, rows []Row) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Machine Machine `json:"machine"`
		Rows    []Row   `json:"rows"`
	}{m, rows})
}
