package graph

import (
	"slices"
	"testing"
)

// TestAddThenReachesAndWaits grows a graph edge by edge, as the policy does
// with declaration order, and checks each later query sees the earlier adds.
func TestAddThenReachesAndWaits(t *testing.T) {
	g := mustNew(t, []string{"a", "b", "c", "d"}, edges("d", "a"))
	steps := []struct {
		add        Edge
		from, to   string
		wantReach  bool
		waitsOf    string
		wantWaits  []string
		wantAddErr bool
	}{
		{add: Edge{"a", "b"}, from: "d", to: "b", wantReach: true, waitsOf: "b", wantWaits: []string{"a"}},
		{add: Edge{"c", "b"}, from: "d", to: "c", wantReach: false, waitsOf: "b", wantWaits: []string{"a", "c"}},
		{add: Edge{"a", "b"}, from: "b", to: "d", wantReach: false, waitsOf: "b", wantWaits: []string{"a", "c"}}, // duplicate merged
		{add: Edge{"b", "x"}, wantAddErr: true, from: "x", to: "a", waitsOf: "x"},
	}
	for _, s := range steps {
		err := g.Add(s.add)
		if (err != nil) != s.wantAddErr {
			t.Fatalf("Add(%v) = %v, want error %v", s.add, err, s.wantAddErr)
		}
		if got := g.Reaches(s.from, s.to); got != s.wantReach {
			t.Errorf("after Add(%v): Reaches(%s, %s) = %v, want %v", s.add, s.from, s.to, got, s.wantReach)
		}
		if got := g.Waits(s.waitsOf); !slices.Equal(got, s.wantWaits) {
			t.Errorf("after Add(%v): Waits(%s) = %v, want %v", s.add, s.waitsOf, got, s.wantWaits)
		}
	}
	if err := g.Add(Edge{"b", "d"}); err != nil {
		t.Fatal(err)
	}
	if g.Cycle() == nil {
		t.Error("d → a → b → d added edge by edge: Cycle found none")
	}
}
