package transport

import (
	"strings"
	"testing"
)

func TestTailKeepsTheLastBytesOnOneLine(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		stream string
		want   string
	}{
		{"nothing written", 16, "", ""},
		{"short output is kept whole, lines folded", 64, "sudo: a password\n  is required\n", "sudo: a password is required"},
		{"long output keeps its end", 8, strings.Repeat("x", 5000) + "\nlast words", "st words"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tail := NewTail(tt.max)
			tail.Drain(strings.NewReader(tt.stream))
			if got := tail.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
