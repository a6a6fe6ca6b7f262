// Command herd-lab makes and removes herd's test hosts by hand:
//
//	herd-lab up [-name lab] [-flat 5] [-bastion] [-rack 3] [-racktop]
//	herd-lab status [-name lab]
//	herd-lab down [-name lab] [-all]
//
// Labs made here persist until `herd-lab down`. It must run as root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/herd-project/herd/internal/lab"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "herd-lab:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  herd-lab up [-name lab] [-flat N] [-bastion [-rack N] [-racktop]]
  herd-lab status [-name lab]
  herd-lab down [-name lab | -all]`

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("herd-lab "+args[0], flag.ContinueOnError)
	name := fs.String("name", "lab", "lab name (lower-case letters and digits, at most 12)")
	switch args[0] {
	case "up":
		flat := fs.Int("flat", 5, "number of flat hosts host1..hostN")
		bastion := fs.Bool("bastion", false, "add a bastion with rack hosts reachable only through it")
		rack := fs.Int("rack", 3, "number of rack hosts behind the bastion")
		racktop := fs.Bool("racktop", false, "put the rack hosts behind a rack top behind the bastion")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if n := fs.NArg(); n == 1 {
			// `herd-lab up 5` is short for -flat 5.
			if _, err := fmt.Sscan(fs.Arg(0), flat); err != nil {
				return fmt.Errorf("up: %q is not a number of hosts", fs.Arg(0))
			}
		} else if n > 1 {
			return errors.New(usage)
		}
		spec := lab.Spec{Name: *name, Flat: *flat, Persistent: true}
		if *bastion || *racktop {
			spec.Bastion = &lab.BastionSpec{RackTop: *racktop, RackHosts: *rack}
		}
		// A second per host on top: a 1,000-host lab takes minutes on 2 CPUs.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+time.Duration(*flat+*rack)*time.Second)
		defer cancel()
		start := time.Now()
		spec.Log = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
		l, err := lab.Up(ctx, spec)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "lab %s up in %s\n", l.Name, time.Since(start).Round(time.Millisecond))
		printLab(out, l)
		return nil
	case "status":
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		// Without -name, every lab.
		names := []string{*name}
		if !flagSet(fs, "name") {
			var err error
			if names, err = lab.List(); err != nil {
				return err
			}
			if len(names) == 0 {
				fmt.Fprintln(out, "no labs")
			}
		}
		for _, n := range names {
			l, err := lab.Open(n)
			if err != nil {
				return err
			}
			health := "up"
			if !l.Alive() {
				health = "DEAD (run herd-lab down -name " + n + ")"
			}
			fmt.Fprintf(out, "lab %s: %s\n", l.Name, health)
			printLab(out, l)
		}
		return nil
	case "down":
		all := fs.Bool("all", false, "remove every lab")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		names := []string{*name}
		if *all {
			var err error
			if names, err = lab.List(); err != nil {
				return err
			}
		}
		var errs []error
		for _, n := range names {
			l, err := lab.Open(n)
			if err != nil {
				if !*all {
					fmt.Fprintf(out, "lab %s: not up\n", n)
				}
				continue
			}
			if err := l.Down(); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Fprintf(out, "lab %s: down\n", n)
		}
		return errors.Join(errs...)
	default:
		return errors.New(usage)
	}
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func printLab(out io.Writer, l *lab.Lab) {
	fmt.Fprintf(out, "  %-10s %-14s %-10s %-8s %s\n", "HOST", "ADDRESS", "VIA", "PID", "NETNS")
	for _, h := range l.Hosts {
		via := "-"
		if h.Via != nil {
			via = h.Via.Name
		}
		fmt.Fprintf(out, "  %-10s %-14s %-10s %-8d %s\n", h.Name, h.Addr, via, h.Pid(), h.Netns)
	}
	fmt.Fprintf(out, "key:         %s\nknown_hosts: %s\nssh_config:  %s\n", l.KeyFile, l.KnownHosts, l.SSHConfig)
	if len(l.Hosts) > 0 {
		h := l.Hosts[0]
		fmt.Fprintf(out, "ssh:         ssh -i %s -o UserKnownHostsFile=%s root@%s\n", l.KeyFile, l.KnownHosts, h.Addr)
		fmt.Fprintf(out, "         or  ssh -F %s %s   (any host name, rack hosts jump automatically)\n", l.SSHConfig, lastName(l))
	}
	fmt.Fprintf(out, "users:       root, %s (sudo/doas without password), %s (sudo/doas with password)\n", lab.UserDeploy, lab.UserDeployPW)
	fmt.Fprintf(out, "passwords:   %s=%s root=%s\n", lab.UserDeployPW, l.Passwords.DeployPW, l.Passwords.Root)
	fmt.Fprintf(out, "down:        herd-lab down -name %s\n", l.Name)
}

func lastName(l *lab.Lab) string { return l.Hosts[len(l.Hosts)-1].Name }
