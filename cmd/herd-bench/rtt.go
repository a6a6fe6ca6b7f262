package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/herd-project/herd/internal/bench"
	"github.com/herd-project/herd/internal/lab"
	"github.com/herd-project/herd/internal/transport"
)

// measureRTT runs herd on one host through a bench.DelayProxy at the WAN
// RTT, with the agent cached, and prints every flight of bytes between
// controller and host: the round trip breakdown of one run.
func measureRTT(ctx context.Context, o options, r *bench.Runner, work string, stdout io.Writer, logf func(string, ...any)) error {
	var l *lab.Lab
	var err error
	if o.scale.lab != "" {
		l, err = lab.Open(o.scale.lab)
	} else {
		l, err = lab.Up(ctx, lab.Spec{Name: fmt.Sprintf("rtt%d", os.Getpid()%100000), Flat: 1})
		if err == nil {
			defer l.Down()
		}
	}
	if err != nil {
		return err
	}
	h := l.Hosts[0]
	if !o.bashrc {
		if out, err := h.Exec(ctx, "sh", "-c", ": > /root/.bashrc"); err != nil {
			return fmt.Errorf("%s: empty /root/.bashrc: %v: %s", h.Name, err, out)
		}
	}
	direct, err := bench.WriteProject(filepath.Join(work, "rtt-lan"), []bench.Target{{Name: h.Name, Addr: h.Addr, Port: h.Port, HostKey: h.HostKey}}, l.KeyFile, o.steps)
	if err != nil {
		return err
	}
	if m := r.MeasureHerd(ctx, direct); !m.OK() { // installs the agent
		return fmt.Errorf("warm-up on the LAN: %s", m.NA)
	}
	rtt := bench.WANRTT
	p := &bench.DelayProxy{Target: net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)), Delay: rtt / 2}
	addr, err := p.Listen()
	if err != nil {
		return err
	}
	defer p.Close()
	ph, pp, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(pp)
	proj, err := bench.WriteProject(filepath.Join(work, "rtt-wan"), []bench.Target{{Name: h.Name, Addr: ph, Port: port, HostKey: h.HostKey}}, l.KeyFile, o.steps)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "herd apply, 1 host, %d × exec hostname, agent cached, %v RTT (TCP handshake included); %s\n", o.steps, rtt, time.Now().UTC().Format(time.RFC3339))
	return proxiedRuns(ctx, r, p, proj, stdout)
}

// proxiedRuns runs herd three times through the proxy: without
// persistence, then twice with --persist: the first of those logs in
// through a new mux (a fresh connection's flights), the second reuses the
// mux's connection. It prints each run's flights (cut from the proxy's
// log by where the run began) and stops the mux.
func proxiedRuns(ctx context.Context, r *bench.Runner, p *bench.DelayProxy, proj *bench.Project, stdout io.Writer) error {
	rtt := bench.WANRTT
	muxDir := filepath.Join(proj.Home, ".herd", "mux")
	defer transport.StopMuxes(muxDir, "")
	runs := []struct {
		name  string
		flags []string
	}{
		{"fresh connection (no --persist)", nil},
		{"first run with --persist (starts the mux)", []string{"--persist", "60s"}},
		{"next run, persisted connection", []string{"--persist", "60s"}},
	}
	for i, run := range runs {
		name := run.name
		mark := len(p.Log())
		d, out, err := r.RunHerd(ctx, proj, run.flags...)
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", name, err, out)
		}
		if i == 2 {
			if ms, err := transport.ListMuxes(muxDir); err != nil || len(ms) != 1 || ms[0].Err != nil {
				return fmt.Errorf("%s: want one live mux in %s, got %+v %v", name, muxDir, ms, err)
			}
		}
		log := p.Log()[mark:]
		for len(log) > 0 && !log[0].ToHost {
			log = log[1:] // the host's answer to the previous run's close
		}
		if len(log) > 0 { // times from this run's first byte
			t0 := log[0].At
			for j := range log {
				log[j].At -= t0
			}
		}
		fl := bench.Flights(log, rtt)
		fmt.Fprintf(stdout, "%s:\n", name)
		bench.WriteFlights(stdout, fl, rtt)
		if n := len(fl); n > 0 {
			tcp := " (the TCP handshake, 1.5 RTT, comes before)"
			if i == 2 {
				tcp = " (no TCP handshake: the connection is the mux's)"
			}
			fmt.Fprintf(stdout, "  first to last byte: %.2f RTT%s; controller flights that waited for the host: %d; herd wall time %.2fs = %.1f RTT\n",
				float64(fl[n-1].End)/float64(rtt), tcp, bench.Turns(fl), d.Seconds(), d.Seconds()/rtt.Seconds())
		}
	}
	return nil
}
