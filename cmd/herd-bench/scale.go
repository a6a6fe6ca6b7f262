package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herd-project/herd/internal/bench"
	"github.com/herd-project/herd/internal/lab"
)

// scaleOptions are S4's flags.
type scaleOptions struct {
	hosts        int
	lab          string
	cached       int
	subsets      string
	mitogenHosts int
	forks        int
	first        bool
}

func (s *scaleOptions) flags(fs *flag.FlagSet) {
	fs.IntVar(&s.hosts, "hosts", 300, "s4: lab hosts")
	fs.StringVar(&s.lab, "lab", "", "s4: use this running lab (herd-lab up -name NAME -flat N) instead of making one")
	fs.IntVar(&s.cached, "cached", 2, "s4: cached runs on all hosts after first contact")
	fs.StringVar(&s.subsets, "subsets", "20,300", "s4: host counts of extra cached runs, for RSS per host")
	fs.IntVar(&s.mitogenHosts, "mitogen-hosts", 100, "s4: hosts Ansible+Mitogen runs on (its time per host is extrapolated to all); 0: none")
	fs.IntVar(&s.forks, "forks", 50, "s4: Ansible forks")
	fs.BoolVar(&s.first, "first", true, "s4: measure first contact (empties the agent cache first); false: the agents are cached")
}

// splitS4 takes "s4" and "rtt" out of the -scenarios list: they are not
// part of "all".
func splitS4(list string) (rest string, s4, rtt bool) {
	var keep []string
	for _, p := range strings.Split(list, ",") {
		switch strings.TrimSpace(p) {
		case bench.S4:
			s4 = true
			continue
		case "rtt":
			rtt = true
			continue
		}
		keep = append(keep, p)
	}
	return strings.Join(keep, ","), s4, rtt
}

// measureScale runs S4 on a lab of its own or on o.scale.lab, and prints
// its table (or JSON).
func measureScale(ctx context.Context, o options, r *bench.Runner, work string, stdout io.Writer, logf func(string, ...any)) error {
	so := o.scale
	var l *lab.Lab
	var err error
	start := time.Now()
	if so.lab != "" {
		if l, err = lab.Open(so.lab); err != nil {
			return err
		}
		if len(l.Hosts) < so.hosts {
			return fmt.Errorf("lab %s has %d hosts, -hosts asks for %d", so.lab, len(l.Hosts), so.hosts)
		}
	} else {
		if l, err = lab.Up(ctx, lab.Spec{Name: fmt.Sprintf("scale%d", os.Getpid()%10000), Flat: so.hosts, Log: logf}); err != nil {
			return err
		}
		defer l.Down()
	}
	logf("lab %s: %d host(s) ready in %v", l.Name, so.hosts, time.Since(start).Round(time.Millisecond))
	hosts := l.Hosts[:so.hosts]
	var targets []bench.Target
	for _, h := range hosts {
		targets = append(targets, bench.Target{Name: h.Name, Addr: h.Addr, Port: h.Port, HostKey: h.HostKey})
	}
	subsets, err := parseCounts(so.subsets)
	if err != nil {
		return fmt.Errorf("-subsets: %w", err)
	}
	spec := bench.ScaleSpec{
		Dir: filepath.Join(work, bench.S4), Targets: targets, KeyFile: l.KeyFile, Cached: so.cached, Subsets: subsets,
		MitogenHosts: so.mitogenHosts, MitogenForks: so.forks, SkipFirst: !so.first,
		Links: func(n int) (sent, recv int64, err error) {
			for _, h := range hosts[:n] {
				s, r, err := h.LinkBytes()
				if err != nil {
					return 0, 0, err
				}
				sent, recv = sent+int64(s), recv+int64(r)
			}
			return sent, recv, nil
		},
		// An empty .bashrc (see measureAll) and no cached agent: first
		// contact uploads it.
		ClearCache: func(ctx context.Context) error {
			return eachHost(ctx, hosts, func(h *lab.Host) error {
				script := "rm -rf /root/.cache/herd /tmp/herd-bench-f*"
				if !o.bashrc {
					script += "; : > /root/.bashrc"
				}
				_, err := h.Exec(ctx, "sh", "-c", script)
				return err
			})
		},
	}
	if !slices.Contains(o.tools, "mitogen") || r.MitogenStrategies == "" {
		spec.MitogenHosts = 0
	}
	load := bench.LoadAverage()
	res, err := r.MeasureScale(ctx, spec)
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil {
			return jerr
		}
		return err
	}
	fmt.Fprintf(stdout, "%s; load average %s before, %s after; %s\n", bench.Version("uname", "-sr"), load, bench.LoadAverage(), time.Now().UTC().Format(time.RFC3339))
	bench.WriteScale(stdout, res)
	return err
}

// eachHost runs f on hosts, a few at a time.
func eachHost(ctx context.Context, hosts []*lab.Host, f func(*lab.Host) error) error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, h := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(h); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a host count", p)
		}
		out = append(out, n)
	}
	return out, nil
}
