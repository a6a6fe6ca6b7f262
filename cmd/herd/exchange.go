package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/herd-project/herd/internal/exchange"
	"github.com/herd-project/herd/internal/push"
)

// exchangeFlags choose the store of export/collect (package exchange).
type exchangeFlags struct {
	etcd, cert, key, ca, dir, cluster string
}

func (x *exchangeFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&x.etcd, "etcd", "", "etcd endpoints of an external exchange, comma-separated (default: an embedded member, started when a run needs it)")
	fs.StringVar(&x.cert, "etcd-cert", "", "TLS client certificate for --etcd")
	fs.StringVar(&x.key, "etcd-key", "", "TLS client key for --etcd")
	fs.StringVar(&x.ca, "etcd-ca", "", "CA certificate to trust for --etcd")
	fs.StringVar(&x.dir, "etcd-dir", "", "data directory of the embedded etcd (default ~/.herd/etcd)")
	fs.StringVar(&x.cluster, "cluster", "", "exchange namespace (default: from the inventory file's path)")
}

// config merges flags over defaults.toml's [etcd]; inventoryPath names the
// namespace when neither gives one.
func (x exchangeFlags) config(d push.EtcdDefaults, inventoryPath string) exchange.Config {
	c := exchange.Config{
		Endpoints: splitList(first(x.etcd, strings.Join(d.Endpoints, ","))),
		CertFile:  first(x.cert, d.CertFile), KeyFile: first(x.key, d.KeyFile), CAFile: first(x.ca, d.CAFile),
		DataDir: first(x.dir, d.DataDir), Cluster: first(x.cluster, d.Cluster),
	}
	if c.Cluster == "" {
		c.Cluster = exchange.ClusterName(inventoryPath)
	}
	return c
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// exchangeQuery is what herd exchange list|get|forget ask for.
type exchangeQuery struct {
	x      exchangeFlags
	inv    string
	m      exchange.Match
	asJSON bool
}

// newExchangeCmd is `herd exchange list|get|forget`: inspects and prunes
// the exchange's store (package exchange).
func newExchangeCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exchange list|get|forget",
		Short: "inspect and prune what hosts exported (export, export_resource, facts)",
		Args:  noArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(a.stderr, "herd exchange: want a subcommand: list, get or forget")
			a.code = exitUsage
		},
	}
	for _, sub := range []struct{ name, short string }{
		{"list", "list entries (all kinds, or --kind)"},
		{"get", "print one value (--name) of every host: host<TAB>value"},
		{"forget", "delete entries by --name and/or --host"},
	} {
		var q exchangeQuery
		c := &cobra.Command{
			Use:   sub.name + " [--kind value|resource|facts] [--name N] [--host H] (--cluster C | -i INVENTORY)",
			Short: sub.short,
			Args:  noArgs,
			Run: func(cmd *cobra.Command, args []string) {
				a.code = runExchange(sub.name, q, a.stdout, a.stderr)
			},
		}
		fs := c.Flags()
		q.x.register(fs)
		fs.StringVarP(&q.inv, "inventory", "i", "", "inventory whose namespace to use (as apply derives it)")
		fs.StringVar(&q.m.Kind, "kind", "", "value, resource or facts")
		fs.StringVar(&q.m.Name, "name", "", "value name or resource id (kind:name)")
		fs.StringVar(&q.m.Host, "host", "", "exporting host")
		fs.BoolVar(&q.asJSON, "json", false, "one JSON entry per line")
		cmd.AddCommand(c)
	}
	return cmd
}

// runExchange runs one herd exchange subcommand.
func runExchange(cmd string, q exchangeQuery, stdout, stderr io.Writer) int {
	x, m, asJSON, inv := q.x, q.m, &q.asJSON, &q.inv
	if m.Kind != "" && m.Kind != exchange.KindValue && m.Kind != exchange.KindResource && m.Kind != exchange.KindFacts {
		fmt.Fprintf(stderr, "herd exchange %s: --kind %q: want value, resource or facts\n", cmd, m.Kind)
		return exitUsage
	}
	if cmd == "forget" && m.Name == "" && m.Host == "" {
		fmt.Fprintln(stderr, "herd exchange forget: give --name or --host (or both); it never forgets everything at once")
		return exitUsage
	}
	if cmd == "get" && m.Name == "" {
		fmt.Fprintln(stderr, "herd exchange get: give --name")
		return exitUsage
	}
	defaults, _, err := loadDefaults()
	if err != nil {
		fmt.Fprintf(stderr, "herd: defaults: %v\n", err)
		return exitUsage
	}
	if x.cluster == "" && defaults.Etcd.Cluster == "" && *inv == "" {
		fmt.Fprintf(stderr, "herd exchange %s: give --cluster or -i INVENTORY (the namespace apply printed)\n", cmd)
		return exitUsage
	}
	invPath := *inv
	if invPath != "" {
		invPath, _ = filepath.Abs(invPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := exchange.Open(ctx, x.config(defaults.Etcd, invPath))
	if err != nil {
		fmt.Fprintf(stderr, "herd: %v\n", err)
		return exitFailed
	}
	defer st.Close()
	if cmd == "forget" {
		n, err := st.Forget(ctx, m)
		if err != nil {
			fmt.Fprintf(stderr, "herd: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "forgot %d entries in cluster %s\n", n, st.Cluster())
		return exitOK
	}
	es, err := st.Find(ctx, m)
	if err != nil {
		fmt.Fprintf(stderr, "herd: %v\n", err)
		return exitFailed
	}
	for _, e := range es {
		switch {
		case *asJSON:
			b, _ := json.Marshal(e)
			fmt.Fprintln(stdout, string(b))
		case cmd == "get":
			var s string
			if json.Unmarshal(e.Data, &s) == nil {
				fmt.Fprintf(stdout, "%s\t%s\n", e.Host, s)
			} else {
				fmt.Fprintf(stdout, "%s\t%s\n", e.Host, e.Data)
			}
		default:
			fmt.Fprintf(stdout, "%-8s %-24s %-16s %s run=%s\n", e.Kind, first(e.Name, "-"), e.Host, e.Time.Format(time.RFC3339), e.Run)
		}
	}
	if cmd == "get" && len(es) == 0 {
		fmt.Fprintf(stderr, "herd exchange get: nothing named %q in cluster %s\n", m.Name, st.Cluster())
		return exitFailed
	}
	return exitOK
}
