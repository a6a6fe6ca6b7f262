package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/herd-project/herd/internal/policy"
)

// newDocCmd is `herd doc [KIND|facts|meta]`: the policy reference,
// generated from the tables the policy is evaluated with (package policy,
// reference.go), so it says what this herd accepts.
func newDocCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "doc [KIND | facts | meta]",
		Short: "document resource kinds and their parameters, the facts and the meta arguments",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("want at most one topic, got %d", len(args))
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return append(policy.ResourceBuiltins(), "facts", "meta"), cobra.ShellCompDirectiveNoFileComp
		},
		Run: func(cmd *cobra.Command, args []string) {
			a.code = runDoc(args, a.stdout, a.stderr)
		},
	}
}

func runDoc(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		docIndex(stdout)
		return exitOK
	}
	switch args[0] {
	case "facts":
		fmt.Fprintln(stdout, "Facts a policy reads as host.facts.NAME (in templates: facts.NAME), gathered on each host:")
		fmt.Fprintln(stdout)
		docArgs(stdout, policy.FactDocs())
		return exitOK
	case "meta":
		fmt.Fprintln(stdout, "Meta arguments every resource builtin takes besides its kind's own:")
		fmt.Fprintln(stdout)
		docArgs(stdout, policy.MetaArgDocs())
		return exitOK
	}
	d, ok := policy.DescribeBuiltin(args[0])
	if !ok {
		fmt.Fprintf(stderr, "herd doc: unknown topic %q (want one of: %s, facts, meta)\n", args[0], strings.Join(policy.ResourceBuiltins(), ", "))
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s(NAME, ...)", d.Name)
	if d.Kind != d.Name {
		fmt.Fprintf(stdout, " declares a %s resource", d.Kind)
	}
	fmt.Fprintf(stdout, "\n\n%s\n\nParameters:\n", wrap(d.Doc, 80, ""))
	docArgs(stdout, d.Args)
	if len(d.Outputs) > 0 {
		fmt.Fprintf(stdout, "\nOutputs (for send/recv): %s\n", strings.Join(d.Outputs, ", "))
	}
	fmt.Fprintln(stdout, "\nEvery resource also takes the meta arguments: see herd doc meta.")
	return exitOK
}

// docIndex lists the topics with the first sentence of each kind's doc.
func docIndex(stdout io.Writer) {
	fmt.Fprintln(stdout, "Resource builtins (herd doc KIND for parameters):")
	for _, name := range policy.ResourceBuiltins() {
		d, _ := policy.DescribeBuiltin(name)
		fmt.Fprintf(stdout, "  %-15s %s\n", name, firstSentence(d.Doc))
	}
	fmt.Fprintln(stdout, "\nAlso:\n  facts           what a policy knows about each host (host.facts)\n  meta            arguments every resource takes (after, notify, when, no_log, ...)")
}

// docArgs prints one argument a paragraph: name, type, required or
// default, then the doc indented.
func docArgs(w io.Writer, args []policy.ArgDoc) {
	for _, a := range args {
		var attrs []string
		if a.Type != "" {
			attrs = append(attrs, a.Type)
		}
		switch {
		case a.Required:
			attrs = append(attrs, "required")
		case a.Default != "":
			attrs = append(attrs, "default "+a.Default)
		}
		fmt.Fprintf(w, "  %s (%s)\n%s\n", a.Name, strings.Join(attrs, "; "), wrap(a.Doc, 80, "      "))
	}
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

// wrap fills s into lines of at most width columns, each starting with
// indent.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(s) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line)
	return b.String()
}
