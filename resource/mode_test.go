package resource

import (
	"strings"
	"testing"
)

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      any
		want    int64
		wantErr string
	}{
		{int64(0o644), 0o644, ""},
		{420, 0o644, ""},
		{float64(420), 0o644, ""}, // a JSON round trip
		{"0644", 0o644, ""},
		{"644", 0o644, ""},
		{"0o644", 0o644, ""},
		{"0O4755", 0o4755, ""},
		{"0", 0, ""},
		{"", 0, "is not an octal mode"},
		{"0o", 0, "is not an octal mode"},
		{"0o64x", 0, "is not an octal mode"},
		{"-644", 0, "is not an octal mode"},
		{"+644", 0, "is not an octal mode"},
		{"6_44", 0, "is not an octal mode"},
		{"999", 0, "is not an octal mode"},
		{"17777", 0, "0o17777 is out of range"},
		{int64(0o10000), 0, "0o10000 is out of range"},
		{int64(-1), 0, "-1 is out of range"},
		{float64(4.5), 0, "want an int"},
		{true, 0, "want an int"},
	}
	for _, tt := range tests {
		got, err := ParseMode(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseMode(%#v) = %o, %v; want error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseMode(%#v) = %o, %v; want %o", tt.in, got, err, tt.want)
		}
	}
}
