package wire

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/herd-project/herd/plan"
)

func TestCheckSizeAgreesWithSend(t *testing.T) {
	content := func(n int) *RunPlan {
		return &RunPlan{Plan: &plan.Plan{Version: plan.Version, Resources: []plan.Resource{
			{Kind: "file", Name: "/a", ID: "file:/a", Params: plan.Params{"content": strings.Repeat("x", n)}}}}}
	}
	const limit = 10000
	tests := []struct {
		name   string
		msg    Message
		tooBig bool
	}{
		{"small plan", content(100), false},
		{"just under", content(limit - 200), false},
		{"over, though it compresses well", content(limit + 1), true},
		{"binary chunk over", &FileChunk{Data: make([]byte, limit+1)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := CheckSize(tt.msg, limit)
			var tl *TooLargeError
			if got := errors.As(err, &tl); got != tt.tooBig {
				t.Fatalf("CheckSize: n=%d err=%v, want too large=%v", n, err, tt.tooBig)
			}
			if tt.tooBig && (tl.Size != n || tl.Limit != limit || tl.Size <= limit) {
				t.Errorf("TooLargeError %+v, size %d", tl, n)
			}
			// Send must agree: what CheckSize passes is sent, what it
			// refuses is refused with the same error type.
			var buf bytes.Buffer
			err = NewConn(nil, &buf, Options{MaxFrame: limit}).Send(tt.msg)
			if got := errors.As(err, &tl); got != tt.tooBig {
				t.Errorf("Send: err=%v, want too large=%v", err, tt.tooBig)
			}
		})
	}
}
