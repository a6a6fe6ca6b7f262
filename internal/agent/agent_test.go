package agent

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-project/herd/internal/event"
	"github.com/herd-project/herd/internal/plan"
	"github.com/herd-project/herd/internal/wire"
)

// Serve speaks the protocol: hello with facts, a plan in, events and done
// out, shutdown ends it; every event also lands in the target's log.
func TestServeRunsPlanAndLogsEvents(t *testing.T) {
	dir := t.TempDir()
	cIn, aOut := io.Pipe()
	aIn, cOut := io.Pipe()
	logPath := filepath.Join(dir, "herd.log")
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), Options{Hash: "abc", StateDir: filepath.Join(dir, "state"), LogPath: logPath, In: aIn, Out: aOut})
		aOut.Close()
	}()
	c := wire.NewConn(cIn, cOut, wire.Options{})
	hello, err := c.Handshake(wire.Hello{Version: wire.Version})
	if err != nil {
		t.Fatal(err)
	}
	if hello.AgentHash != "abc" || hello.Facts.Hostname == "" || hello.Pid == 0 {
		t.Fatalf("hello = %+v", hello)
	}
	target := filepath.Join(dir, "out.txt")
	p := &plan.Plan{Version: plan.Version, Role: "r", Host: "h", Resources: []plan.Resource{
		{ID: "file:" + target, Kind: "file", Name: target, Params: plan.Params{"content": "hi\n"}},
	}}
	if err := c.Send(&wire.RunPlan{Plan: p}); err != nil {
		t.Fatal(err)
	}
	var types []event.Type
	for {
		msg, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := msg.(*wire.Event); ok {
			types = append(types, e.Event.Type)
			continue
		}
		d, ok := msg.(*wire.Done)
		if !ok {
			t.Fatalf("unexpected %T", msg)
		}
		if d.Failed || d.Counts.Changed != 1 {
			t.Fatalf("done = %+v, events %v", d, types)
		}
		break
	}
	if b, _ := os.ReadFile(target); string(b) != "hi\n" {
		t.Fatalf("file = %q", b)
	}
	c.Send(&wire.Shutdown{})
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	log, _ := os.ReadFile(logPath)
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != len(types) {
		t.Fatalf("log has %d lines, stream had %d events", len(lines), len(types))
	}
	var last event.Event
	json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if last.Type != event.Changed || last.Resource != "file:"+target {
		t.Fatalf("last logged event %+v", last)
	}
}

// An invalid plan is answered with a Done carrying the error, and the agent
// stays up for the next plan.
func TestServeReportsInvalidPlan(t *testing.T) {
	cIn, aOut := io.Pipe()
	aIn, cOut := io.Pipe()
	go Serve(context.Background(), Options{StateDir: t.TempDir(), LogPath: "-", In: aIn, Out: aOut})
	c := wire.NewConn(cIn, cOut, wire.Options{})
	if _, err := c.Handshake(wire.Hello{Version: wire.Version}); err != nil {
		t.Fatal(err)
	}
	bad := &plan.Plan{Version: plan.Version, Resources: []plan.Resource{{ID: "nope:x", Kind: "nope", Name: "x"}}}
	for i := 0; i < 2; i++ {
		c.Send(&wire.RunPlan{Plan: bad})
		d, err := wire.Expect[wire.Done](c)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Failed || !strings.Contains(d.Error, `unknown resource kind "nope"`) {
			t.Fatalf("done = %+v", d)
		}
	}
	cOut.Close()
}

func TestEventLogRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "herd.log")
	l := openEventLog(path, 300, 2)
	for i := 0; i < 20; i++ {
		l.Write(event.Event{Type: event.OK, Resource: "file:/x"})
	}
	l.Close()
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if st.Size() > 300 {
			t.Fatalf("%s is %d bytes, over the 300 limit", p, st.Size())
		}
		if st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", p, st.Mode())
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Fatal("kept more than 2 rotated logs")
	}
}

func TestVerifySelfRejectsWrongHash(t *testing.T) {
	if err := VerifySelf(strings.Repeat("0", 64)); err == nil {
		t.Fatal("a wrong hash verified")
	}
}
