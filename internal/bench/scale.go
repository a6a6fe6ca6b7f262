package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// S4 is the scale scenario: as many lab hosts as the machine holds (300 by
// default, -hosts), ScaleSteps steps each, half files and half commands,
// measured on first contact (agent upload) and with the agent cached.
const S4 = "s4"

// ScaleSteps is the steps per host in S4: 5 files and 5 commands.
const ScaleSteps = 10

// ScaleFiles is how many of the ScaleSteps are files; the rest are
// commands.
const ScaleFiles = ScaleSteps / 2

// ScalePolicy is S4's policy: ScaleFiles small files under
// /tmp/herd-bench, then the commands. The files change on the first run
// only; the commands change on every run.
//
// max_fail is the host count: on a 2-CPU lab some of hundreds of agents
// can miss their start timeout, and the other hosts must still do the work
// they are measured for (the unreachable ones are counted and reported).
func ScalePolicy(hosts int) string {
	var b strings.Builder
	b.WriteString("def bench(host):\n")
	for i := 1; i <= ScaleFiles; i++ {
		fmt.Fprintf(&b, "    file(\"/tmp/herd-bench-f%d.conf\", content = \"key%d = value for \" + host.name + \"\\n\", mode = 0o644)\n", i, i)
	}
	for i := ScaleFiles + 1; i <= ScaleSteps; i++ {
		fmt.Fprintf(&b, "    exec(\"hostname-%d\", command = \"hostname\")\n", i)
	}
	fmt.Fprintf(&b, "\nrole(\"bench\", main = bench, max_fail = %d)\n", hosts)
	return b.String()
}

// ScalePlaybook is ScalePolicy for Ansible: copy tasks with the same
// contents, then command tasks.
func ScalePlaybook() string {
	var b strings.Builder
	b.WriteString("- hosts: bench\n  gather_facts: false\n  tasks:\n")
	for i := 1; i <= ScaleFiles; i++ {
		fmt.Fprintf(&b, "    - name: f%d\n      ansible.builtin.copy:\n        dest: /tmp/herd-bench-f%d.conf\n        content: \"key%d = value for {{ inventory_hostname }}\\n\"\n        mode: \"0644\"\n", i, i, i)
	}
	for i := ScaleFiles + 1; i <= ScaleSteps; i++ {
		fmt.Fprintf(&b, "    - name: hostname-%d\n      ansible.builtin.command: hostname\n", i)
	}
	return b.String()
}

// ScaleRun is one herd apply at scale.
type ScaleRun struct {
	Hosts int           `json:"hosts"`
	Wall  time.Duration `json:"wall_ns"`
	// MaxRSS is the herd process's peak resident set, from wait4's rusage.
	MaxRSS int64 `json:"max_rss_bytes"`
	// CPU is the herd process's user and system time.
	CPU time.Duration `json:"cpu_ns"`
	// SentPerHost and RecvPerHost are the bytes on the hosts' links
	// (controller side of each veth, IP headers included), averaged.
	SentPerHost int64 `json:"sent_per_host_bytes"`
	RecvPerHost int64 `json:"recv_per_host_bytes"`
	// Changed is the number of changed events, which proves the work.
	Changed int `json:"changed"`
	// Unreachable and Failed count hosts that did not do it.
	Unreachable int `json:"unreachable"`
	Failed      int `json:"failed"`
}

// agentSentPerHost is the bytes per host above which a run must have sent
// the agent (3.1 MB for the lean one): a cached S4 run sends about 10 KiB
// per host.
const agentSentPerHost = 1 << 20

// SentAgent says the run sent the agent to its hosts, so that a "cached"
// run on hosts that had none (-first=false on a fresh lab) is not reported
// as one.
func (r ScaleRun) SentAgent() bool { return r.SentPerHost > agentSentPerHost }

// RSSPerHost is MaxRSS divided by the hosts.
func (r ScaleRun) RSSPerHost() float64 { return float64(r.MaxRSS) / float64(max(r.Hosts, 1)) }

// ScaleResult is S4 as one run reports it.
type ScaleResult struct {
	Hosts int `json:"hosts"`
	// First is first contact: no agent in the hosts' cache.
	First ScaleRun `json:"first_contact"`
	// WarmUps is the untimed runs needed to install the agent where first
	// contact failed.
	WarmUps int `json:"warm_ups,omitempty"`
	// Cached are the runs with the agent cached, on all hosts.
	Cached []ScaleRun `json:"cached"`
	// Subsets are cached runs on the first N hosts, for RSS per host.
	Subsets []ScaleRun `json:"subsets"`
	// Mitogen is Ansible+Mitogen on the first MitogenHosts hosts with
	// MitogenForks forks; Extrapolated scales its time per host to Hosts.
	Mitogen      Measurement `json:"mitogen"`
	MitogenHosts int         `json:"mitogen_hosts"`
	MitogenForks int         `json:"mitogen_forks"`
	// MitogenReached is the hosts it got through (recap clean).
	MitogenReached int `json:"mitogen_reached"`
	// MitogenProgress is how far it got, which is all there is when it
	// was killed at the time bound.
	MitogenProgress MitogenProgress `json:"mitogen_progress"`
	Extrapolated    time.Duration   `json:"mitogen_extrapolated_ns,omitempty"`
}

// WriteScale prints r as the README's S4 tables.
func WriteScale(w io.Writer, r ScaleResult) {
	fmt.Fprintf(w, "S4: %d hosts, %d steps each (%d files, %d commands)\n", r.Hosts, ScaleSteps, ScaleFiles, ScaleSteps-ScaleFiles)
	fmt.Fprintf(w, "  %-22s %6s %9s %10s %10s %12s %12s %12s %9s %7s\n", "run", "hosts", "wall", "CPU/host", "peak RSS", "RSS/host", "sent/host", "recv/host", "changed", "unreach")
	line := func(name string, x ScaleRun) {
		fmt.Fprintf(w, "  %-22s %6d %8.2fs %8.1fms %8.1fMiB %9.1fKiB %10.1fKiB %10.1fKiB %9d %7d\n", name, x.Hosts, x.Wall.Seconds(),
			x.CPU.Seconds()*1000/float64(max(x.Hosts, 1)), float64(x.MaxRSS)/(1<<20), x.RSSPerHost()/1024,
			float64(x.SentPerHost)/1024, float64(x.RecvPerHost)/1024, x.Changed, x.Unreachable+x.Failed)
	}
	if r.First.Hosts > 0 {
		line("herd first contact", r.First)
	}
	if r.WarmUps > 0 {
		fmt.Fprintf(w, "  (first contact left hosts without an agent: %d untimed run(s) installed it before the cached runs)\n", r.WarmUps)
	}
	uncached := 0
	cached := func(name string, c ScaleRun) {
		if c.SentAgent() {
			name += " (!)"
			uncached++
		}
		line(name, c)
	}
	for i, c := range r.Cached {
		cached(fmt.Sprintf("herd cached #%d", i+1), c)
	}
	for _, s := range r.Subsets {
		cached(fmt.Sprintf("herd cached, %d hosts", s.Hosts), s)
	}
	if uncached > 0 {
		fmt.Fprintf(w, "  (!) sent more than %d KiB per host: the hosts had no agent cached, so this was a first contact, not a cached run\n", agentSentPerHost>>10)
	}
	switch m := r.Mitogen; {
	case m.OK():
		fmt.Fprintf(w, "  ansible+mitogen on %d hosts (%d reached), %d forks: %.2fs (%.3fs per host reached); extrapolated to %d hosts: %.0fs (not measured)\n",
			r.MitogenHosts, r.MitogenReached, r.MitogenForks, m.Median.Seconds(), m.Median.Seconds()/float64(max(r.MitogenReached, 1)), r.Hosts, r.Extrapolated.Seconds())
	case r.MitogenProgress.TasksDone > 0:
		p := r.MitogenProgress
		fmt.Fprintf(w, "  ansible+mitogen on %d hosts, %d forks: killed after %.0fs (%s) with %d of %d host-tasks done, %.3fs per host-task; extrapolated to %d hosts: %.0fs (not measured)\n",
			r.MitogenHosts, r.MitogenForks, p.Wall.Seconds(), m.NA, p.TasksDone, p.Tasks, p.PerTask().Seconds(), r.Hosts, r.Extrapolated.Seconds())
	case m.NA != "":
		fmt.Fprintf(w, "  ansible+mitogen: n/a: %s\n", m.NA)
	}
	if r.Extrapolated > 0 {
		for _, c := range r.Cached {
			fmt.Fprintf(w, "  ansible+mitogen (extrapolated) / herd cached on %d hosts: %.0f×\n", c.Hosts, r.Extrapolated.Seconds()/c.Wall.Seconds())
			break
		}
		if r.First.Hosts > 0 {
			fmt.Fprintf(w, "  ansible+mitogen (extrapolated) / herd first contact on %d hosts: %.0f×\n", r.First.Hosts, r.Extrapolated.Seconds()/r.First.Wall.Seconds())
		}
	}
}
