package wire

import (
	"bytes"
	"crypto/rand"
	"io"
	"reflect"
	"testing"
)

func TestFileChunkRoundTripsInBinary(t *testing.T) {
	data := make([]byte, 300<<10)
	rand.Read(data)
	for _, m := range []*FileChunk{
		{ID: 7, Hash: "ab12", Offset: 1 << 40, Size: 1<<40 + 5, Data: data, EOF: true},
		{ID: 1, Hash: "x", Error: "refused: not in the plan"},
		{},
	} {
		var buf bytes.Buffer
		if err := NewConn(nil, &buf, Options{}).Send(m); err != nil {
			t.Fatal(err)
		}
		if buf.Len() > len(m.Data)+200 {
			t.Errorf("frame of %d bytes for %d data bytes: not binary", buf.Len(), len(m.Data))
		}
		got, err := NewConn(&buf, io.Discard, Options{}).Recv()
		if err != nil {
			t.Fatal(err)
		}
		g := got.(*FileChunk)
		if len(g.Data) == 0 {
			g.Data = nil
		}
		if !reflect.DeepEqual(g, m) {
			t.Errorf("got %+v, want %+v", g.Hash, m.Hash)
		}
	}
}

func TestFileChunkRejectsBadPayloads(t *testing.T) {
	good := FileChunk{ID: 1, Hash: "abc", Error: "e", Data: []byte("data")}.appendRaw(nil)
	for n := range 34 { // every truncation inside the header, hash and error
		var m FileChunk
		if err := m.decodeRaw(good[:n]); err == nil {
			t.Errorf("truncated to %d bytes: accepted", n)
		}
	}
	bad := append([]byte{}, good...)
	bad[24] = 0x80
	if err := new(FileChunk).decodeRaw(bad); err == nil {
		t.Error("unknown flags accepted")
	}
	neg := FileChunk{Offset: -1}.appendRaw(nil)
	if err := new(FileChunk).decodeRaw(neg); err == nil {
		t.Error("negative offset accepted")
	}
}

func BenchmarkFileChunkRecv(b *testing.B) {
	data := make([]byte, 256<<10)
	rand.Read(data)
	var buf bytes.Buffer
	NewConn(nil, &buf, Options{}).Send(&FileChunk{Hash: "x", Data: data})
	frame := buf.Bytes()
	r := bytes.NewReader(frame)
	c := NewConn(r, io.Discard, Options{})
	b.SetBytes(int64(len(data)))
	for range b.N {
		r.Reset(frame)
		if _, err := c.Recv(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFileChunkSend(b *testing.B) {
	data := make([]byte, 256<<10)
	rand.Read(data)
	c := NewConn(nil, io.Discard, Options{})
	b.SetBytes(int64(len(data)))
	for range b.N {
		c.Send(&FileChunk{Hash: "x", Data: data})
	}
}

// Chunks are compressed only when the sender says their content compresses.
func TestFileChunkCompressesOnlyWhenAsked(t *testing.T) {
	text := bytes.Repeat([]byte("listen 80;\n"), 30000)
	for _, compress := range []bool{false, true} {
		var buf bytes.Buffer
		if err := NewConn(nil, &buf, Options{}).Send(&FileChunk{Data: text, Compress: compress}); err != nil {
			t.Fatal(err)
		}
		if small := buf.Len() < len(text)/10; small != compress {
			t.Errorf("Compress=%v: frame of %d bytes for %d", compress, buf.Len(), len(text))
		}
		got, err := NewConn(&buf, io.Discard, Options{}).Recv()
		if err != nil || !bytes.Equal(got.(*FileChunk).Data, text) {
			t.Fatalf("Compress=%v: %v", compress, err)
		}
	}
}
