package wire

import (
	"encoding/json"
	"fmt"
)

// TooLargeError is a message that cannot be sent because its encoding
// exceeds the frame limit (compressed or not: the peer refuses to inflate
// past the limit too). Callers can tell it from a broken connection: the
// fix is in what is sent, not in the network.
type TooLargeError struct {
	Type  Type
	Size  int // encoded bytes, before compression
	Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("wire: send %s: message of %d bytes exceeds the frame limit of %d bytes", e.Type, e.Size, e.Limit)
}

// CheckSize encodes msg as Send would and returns its size, or a
// *TooLargeError when Send with a limit of maxFrame (0: DefaultMaxFrame)
// would refuse it. It lets a controller find an oversized plan before it
// connects or changes anything.
func CheckSize(msg Message, maxFrame int) (int, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	var n int
	if re, ok := msg.(rawEncoder); ok {
		n = len(re.appendRaw(nil))
	} else {
		b, err := json.Marshal(msg)
		if err != nil {
			return 0, fmt.Errorf("wire: encode %s: %w", msg.Type(), err)
		}
		n = len(b)
	}
	if n > maxFrame {
		return n, &TooLargeError{Type: msg.Type(), Size: n, Limit: maxFrame}
	}
	return n, nil
}
