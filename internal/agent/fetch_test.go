package agent

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/herd-project/herd/internal/wire"
)

// controllerSide answers file requests on the other end of a pipe pair
// with serve, which may send any chunks it likes.
func pipePair(t *testing.T, serve func(c *wire.Conn, req *wire.FileRequest)) (*inbox, func()) {
	agentIn, ctrlOut := io.Pipe()
	ctrlIn, agentOut := io.Pipe()
	ctrl := wire.NewConn(ctrlIn, ctrlOut, wire.Options{})
	go func() {
		for {
			msg, err := ctrl.Recv()
			if err != nil {
				return
			}
			if req, ok := msg.(*wire.FileRequest); ok {
				go serve(ctrl, req)
			}
		}
	}()
	in := newInbox(wire.NewConn(agentIn, agentOut, wire.Options{}), nil)
	return in, func() { ctrlOut.Close(); agentOut.Close() }
}

// Concurrent fetches share the connection; chunks reach the right one by
// request ID even when their answers interleave.
func TestConcurrentFetchesGetTheirOwnChunks(t *testing.T) {
	contents := map[string]string{"a": strings.Repeat("a", 5000), "b": strings.Repeat("b", 7000)}
	in, closeAll := pipePair(t, func(c *wire.Conn, req *wire.FileRequest) {
		body := contents[req.Hash][req.Offset:]
		for off := 0; off < len(body); off += 1000 {
			end := min(off+1000, len(body))
			c.Send(&wire.FileChunk{ID: req.ID, Hash: req.Hash, Offset: req.Offset + int64(off), Data: []byte(body[off:end]), EOF: end == len(body)})
		}
	})
	defer closeAll()
	var wg sync.WaitGroup
	for range 4 {
		for h, want := range contents {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var buf bytes.Buffer
				if err := in.f.Fetch(context.Background(), h, 100, &buf); err != nil {
					t.Error(err)
				} else if buf.String() != want[100:] {
					t.Errorf("fetch %s from 100: got %d bytes", h, buf.Len())
				}
			}()
		}
	}
	wg.Wait()
}

// A refusal, an out-of-order chunk and a lost connection end the fetch
// with an error instead of a hang or a wrong file.
func TestFetchFailsCleanly(t *testing.T) {
	lose := make(chan func(), 1) // the "lost" case cuts the pipes mid-answer
	for _, tt := range []struct {
		name  string
		serve func(c *wire.Conn, req *wire.FileRequest)
		want  string
	}{
		{"refused", func(c *wire.Conn, req *wire.FileRequest) {
			c.Send(&wire.FileChunk{ID: req.ID, Error: "refused: not in the plan"})
		}, "controller: refused: not in the plan"},
		{"gap", func(c *wire.Conn, req *wire.FileRequest) {
			c.Send(&wire.FileChunk{ID: req.ID, Offset: 10, Data: []byte("x")})
		}, "expected 0"},
		{"lost", func(c *wire.Conn, req *wire.FileRequest) {
			c.Send(&wire.FileChunk{ID: req.ID, Data: []byte("partial")})
			(<-lose)()
		}, "connection to the controller lost while fetching h at byte 7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in, closeAll := pipePair(t, tt.serve)
			if tt.name == "lost" {
				lose <- closeAll
			} else {
				defer closeAll()
			}
			err := in.f.Fetch(context.Background(), "h", 0, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if tt.name == "lost" {
				if err := in.f.Fetch(context.Background(), "h", 0, io.Discard); err == nil {
					t.Fatal("fetch after the connection was lost succeeded")
				}
			}
		})
	}
}
