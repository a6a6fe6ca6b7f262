package graph

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func edges(pairs ...string) []Edge {
	var out []Edge
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, Edge{From: pairs[i], To: pairs[i+1]})
	}
	return out
}

func mustNew(t *testing.T, nodes []string, e []Edge) *Graph {
	t.Helper()
	g, err := New(nodes, e)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

func TestNewRejectsBadInput(t *testing.T) {
	tests := []struct {
		name    string
		nodes   []string
		edges   []Edge
		wantErr string
	}{
		{"duplicate node", []string{"a", "b", "a"}, nil, `duplicate node "a"`},
		{"edge from unknown node", []string{"a"}, edges("x", "a"), `unknown node "x"`},
		{"edge to unknown node", []string{"a"}, edges("a", "y"), `unknown node "y"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.nodes, tt.edges)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestOrderIsTopologicalAndStable(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string
		edges []Edge
		want  []string
	}{
		{"no edges keeps declaration order", []string{"c", "a", "b"}, nil, []string{"c", "a", "b"}},
		{"an edge moves a node after its dependency", []string{"a", "b", "c"}, edges("c", "a"), []string{"b", "c", "a"}},
		{"ties broken by declaration order", []string{"x", "y", "z", "w"}, edges("w", "y", "w", "x"), []string{"z", "w", "x", "y"}},
		{"diamond", []string{"top", "left", "right", "bottom"},
			edges("top", "left", "top", "right", "left", "bottom", "right", "bottom"),
			[]string{"top", "left", "right", "bottom"}},
		{"duplicate edges are harmless", []string{"a", "b"}, edges("b", "a", "b", "a"), []string{"b", "a"}},
		{"empty graph", nil, nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustNew(t, tt.nodes, tt.edges).Order()
			if err != nil {
				t.Fatalf("Order: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Order = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCycleNamesTheCycleInOrder(t *testing.T) {
	tests := []struct {
		name  string
		nodes []string
		edges []Edge
		want  string // "" when acyclic
	}{
		{"acyclic", []string{"a", "b"}, edges("a", "b"), ""},
		{"two nodes", []string{"file:/a", "exec:b"}, edges("file:/a", "exec:b", "exec:b", "file:/a"),
			"cycle: file:/a → exec:b → file:/a"},
		{"self loop", []string{"a"}, edges("a", "a"), "cycle: a → a"},
		{"starts at the earliest declared node of the cycle", []string{"p", "q", "r", "s"},
			edges("p", "s", "s", "r", "r", "q", "q", "s"), "cycle: q → s → r → q"},
		{"nodes outside the cycle are not named", []string{"a", "b", "c", "d"},
			edges("a", "b", "b", "c", "c", "b", "c", "d"), "cycle: b → c → b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mustNew(t, tt.nodes, tt.edges)
			err := g.Cycle()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Cycle = %v, want nil", err)
				}
				return
			}
			var ce *CycleError
			if !errors.As(err, &ce) || err.Error() != tt.want {
				t.Fatalf("Cycle = %v, want %q", err, tt.want)
			}
			if _, err := g.Order(); err == nil || err.Error() != tt.want {
				t.Fatalf("Order error = %v, want %q", err, tt.want)
			}
		})
	}
}

// step is one action of a scheduling scenario: take the ready set, or report
// a node done or failed.
type step struct {
	op      string // "ready", "done", "fail"
	node    string
	want    []string // ready: nodes expected; fail: "node<-cause" expected
	comment string
}

func TestSchedulerReadySet(t *testing.T) {
	nodes := []string{"a", "b", "c", "d", "e"}
	// a → b → d, c → d, e independent
	e := edges("a", "b", "b", "d", "c", "d")
	tests := []struct {
		name  string
		steps []step
	}{
		{"roots first, in declaration order, each once", []step{
			{op: "ready", want: []string{"a", "c", "e"}},
			{op: "ready", want: []string{}, comment: "nothing new until something finishes"},
		}},
		{"a node waits for all its dependencies", []step{
			{op: "ready", want: []string{"a", "c", "e"}},
			{op: "done", node: "a"},
			{op: "ready", want: []string{"b"}},
			{op: "done", node: "b"},
			{op: "ready", want: []string{}, comment: "d still waits for c"},
			{op: "done", node: "c"},
			{op: "ready", want: []string{"d"}},
		}},
		{"a failure blocks dependents transitively but not independent branches", []step{
			{op: "ready", want: []string{"a", "c", "e"}},
			{op: "fail", node: "a", want: []string{"b<-a", "d<-b"}},
			{op: "done", node: "c"},
			{op: "done", node: "e"},
			{op: "ready", want: []string{}},
		}},
		{"finishing twice is ignored", []step{
			{op: "ready", want: []string{"a", "c", "e"}},
			{op: "done", node: "a"},
			{op: "fail", node: "a", want: []string{}},
			{op: "ready", want: []string{"b"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustNew(t, nodes, e).NewScheduler()
			for i, st := range tt.steps {
				switch st.op {
				case "ready":
					if got := s.Ready(); !slices.Equal(got, st.want) {
						t.Fatalf("step %d: Ready = %v, want %v %s", i, got, st.want, st.comment)
					}
				case "done":
					s.Done(st.node)
				case "fail":
					got := []string{}
					for _, b := range s.Fail(st.node) {
						got = append(got, b.Node+"<-"+b.Cause)
					}
					if !slices.Equal(got, st.want) {
						t.Fatalf("step %d: Fail(%s) blocked %v, want %v", i, st.node, got, st.want)
					}
				}
			}
		})
	}
}

func TestSchedulerUnstartedAndFinished(t *testing.T) {
	s := mustNew(t, []string{"a", "b", "c"}, edges("a", "b")).NewScheduler()
	if got := s.Unstarted(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Unstarted before Ready = %v", got)
	}
	s.Ready() // hands out a and c
	if got := s.Unstarted(); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("Unstarted after Ready = %v, want [b]", got)
	}
	s.Done("c")
	s.Fail("a")
	if got := s.Unstarted(); len(got) != 0 {
		t.Fatalf("Unstarted after a failed = %v, want none (b is blocked)", got)
	}
	if !s.Finished() {
		t.Fatal("Finished = false with every node done, failed or blocked")
	}
}
