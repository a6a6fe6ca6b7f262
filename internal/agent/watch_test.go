package agent

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/wire"
)

// watchAgent serves one agent over pipes and returns the controller's end.
func watchAgent(t *testing.T, dir string) (*wire.Conn, chan error) {
	t.Helper()
	cIn, aOut := io.Pipe()
	aIn, cOut := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), Options{Hash: "abc", StateDir: filepath.Join(dir, "state"), LogPath: "-", In: aIn, Out: aOut})
		aOut.Close()
	}()
	t.Cleanup(func() { cOut.Close() })
	c := wire.NewConn(cIn, cOut, wire.Options{})
	if _, err := c.Handshake(wire.Hello{Version: wire.Version}); err != nil {
		t.Fatal(err)
	}
	return c, done
}

// untilDone collects the events up to the next Done.
func untilDone(t *testing.T, c *wire.Conn) ([]event.Event, *wire.Done) {
	t.Helper()
	var evs []event.Event
	for {
		msg, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *wire.Event:
			evs = append(evs, m.Event)
		case *wire.Done:
			return evs, m
		default:
			t.Fatalf("unexpected %T", msg)
		}
	}
}

func filePlan(a, b, bContent string) *plan.Plan {
	return &plan.Plan{Version: plan.Version, Role: "r", Host: "h", Resources: []plan.Resource{
		{ID: "file:" + a, Kind: "file", Name: a, Params: plan.Params{"content": "a\n"}},
		{ID: "file:" + b, Kind: "file", Name: b, Params: plan.Params{"content": bContent}, After: []string{"file:" + a}},
	}}
}

// The agent runs a Watch's plan, repairs a managed file edited or removed
// behind its back at once (one drift event each), ignores other files in
// the same directory, and runs only the resources a later Watch names.
func TestWatchRepairsDriftAndRunsOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	c, _ := watchAgent(t, dir)
	c.Send(&wire.Watch{Plan: filePlan(a, b, "b1\n"), All: true})
	if _, d := untilDone(t, c); d.Failed || d.Counts.Changed != 2 || d.Role != "r" || d.Drift {
		t.Fatalf("first run: %+v", d)
	}
	for _, tamper := range []struct {
		name string
		do   func() error
	}{
		{"edited", func() error { return os.WriteFile(b, []byte("tampered\n"), 0o644) }},
		{"removed", func() error { return os.Remove(b) }},
	} {
		if err := tamper.do(); err != nil {
			t.Fatal(err)
		}
		evs, d := untilDone(t, c)
		if !d.Drift || d.Counts.Changed != 1 {
			t.Fatalf("%s: done %+v, events %v", tamper.name, d, evs)
		}
		var drift []string
		for _, e := range evs {
			if e.Type == event.Drift {
				drift = append(drift, e.Msg)
			}
		}
		if len(drift) != 1 || drift[0] != "drift repaired: "+b+" edited outside herd" {
			t.Fatalf("%s: drift events %q", tamper.name, drift)
		}
		if got, _ := os.ReadFile(b); string(got) != "b1\n" {
			t.Fatalf("%s: b = %q after repair", tamper.name, got)
		}
	}

	// An unmanaged file next to them: nothing to say. The next message is
	// the answer to the next Watch, which runs only b.
	os.WriteFile(filepath.Join(dir, "unmanaged"), []byte("x"), 0o644)
	time.Sleep(3 * DriftDebounce)
	c.Send(&wire.Watch{Plan: filePlan(a, b, "b2\n"), Run: []string{"file:" + b}})
	evs, d := untilDone(t, c)
	if d.Drift || d.Counts.Changed != 1 || d.Counts.OK != 0 {
		t.Fatalf("partial run: %+v %v", d, evs)
	}
	for _, e := range evs {
		if e.Resource == "file:"+a {
			t.Fatalf("unchanged resource a was re-checked: %+v", e)
		}
	}
}

// A watching agent that hears nothing from its controller for the
// Watch's Silence takes it for gone and ends, though its stream is open.
func TestWatchSilentControllerEndsAgent(t *testing.T) {
	dir := t.TempDir()
	c, done := watchAgent(t, dir)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	c.Send(&wire.Watch{Plan: filePlan(a, b, "b\n"), All: true, Silence: 300 * time.Millisecond})
	untilDone(t, c)
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, errControllerSilent) {
			t.Fatalf("Serve ended with %v", err)
		}
		t.Logf("agent ended %v after the last message", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("agent still serving 5 s after its controller went silent")
	}
}
