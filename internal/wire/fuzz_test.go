package wire

import (
	"bytes"
	"io"
	"testing"
)

// FuzzRecv feeds arbitrary bytes to the decoder: it must return messages or
// errors, never panic, hang or allocate beyond the frame limit.
func FuzzRecv(f *testing.F) {
	for _, m := range everyMessage() {
		var buf bytes.Buffer
		if err := NewConn(nil, &buf, Options{CompressAbove: 64}).Send(m); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		f.Add(buf.Bytes()[:buf.Len()/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add(frame(byte(TypeDone)|compressedFlag, []byte{0x28, 0xb5, 0x2f, 0xfd}))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := NewConn(bytes.NewReader(data), io.Discard, Options{MaxFrame: 1 << 20})
		for range 100 {
			msg, err := c.Recv()
			if err != nil {
				return
			}
			if msg == nil {
				t.Fatal("Recv returned neither a message nor an error")
			}
			// Whatever was accepted must be sendable again.
			if err := NewConn(nil, io.Discard, Options{}).Send(msg); err != nil {
				t.Fatalf("re-sending accepted %s: %v", msg.Type(), err)
			}
		}
	})
}
