package policy

import (
	"strings"
	"testing"
)

func TestCheckModeLiterals(t *testing.T) {
	tests := []struct {
		src     string
		wantErr string // "" means accepted
	}{
		{`file("/a", mode = 0o644)`, ""},
		{`file("/a", mode = "644")`, ""},
		{`file("/a", mode = 0)`, ""},
		{`file("/a", mode = 7)`, ""},
		{`file("/a", mode = 0x1a4)`, ""},
		{`file("/a", mode = m)`, ""}, // not a literal: the value is all there is
		{`file("/a", content = 644)`, ""},
		{`file("/a", mode = 644)`, `x.star:1:19: mode=644 is a decimal number (0o1204), not the octal mode it looks like; write 0o644 or "644"`},
		{`copy("/a", source = "t", dir_mode = 755)`, `x.star:1:37: dir_mode=755 is a decimal number (0o1363)`},
		{`helper(mode = 600)`, `mode=600 is a decimal number (0o1130)`},
		{`file("/a", mode = 8)`, `mode=8 is a decimal number (0o10); write modes in octal`},
		{`file("/a", mode = 493)`, `mode=493 is a decimal number (0o755); write modes in octal`},
		{"def f():\n    file(\"/a\", mode = 644)\n", `x.star:2:23: mode=644`},
	}
	for _, tt := range tests {
		f, err := fileOptions.Parse("x.star", tt.src, 0)
		if err != nil {
			t.Fatalf("parse %q: %v", tt.src, err)
		}
		err = checkModeLiterals(f)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: unexpected error %v", tt.src, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q: error %v, want one containing %q", tt.src, err, tt.wantErr)
		}
	}
}
