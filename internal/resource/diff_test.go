package resource

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnifiedDiffFormat(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     string
	}{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"one line changed in the middle", "1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n",
			"--- f\n+++ f\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"},
		{"append to empty", "", "x\ny\n", "--- f\n+++ f\n@@ -0,0 +1,2 @@\n+x\n+y\n"},
		{"remove everything", "x\n", "", "--- f\n+++ f\n@@ -1 +0,0 @@\n-x\n"},
		{"missing final newline is shown", "a\nb", "a\nb\n",
			"--- f\n+++ f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"},
		{"distant changes make two hunks",
			"a\n1\n2\n3\n4\n5\n6\n7\nb\n", "A\n1\n2\n3\n4\n5\n6\n7\nB\n",
			"--- f\n+++ f\n@@ -1,4 +1,4 @@\n-a\n+A\n 1\n 2\n 3\n@@ -6,4 +6,4 @@\n 5\n 6\n 7\n-b\n+B\n"},
		{"changes six lines apart share a hunk",
			"a\n1\n2\n3\n4\n5\n6\nb\n", "A\n1\n2\n3\n4\n5\n6\nB\n",
			"--- f\n+++ f\n@@ -1,8 +1,8 @@\n-a\n+A\n 1\n 2\n 3\n 4\n 5\n 6\n-b\n+B\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unifiedDiff("f", "f", []byte(tt.old), []byte(tt.new))
			if got != tt.want {
				t.Errorf("diff:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestContentDiffSpecialCases(t *testing.T) {
	tests := []struct {
		name                 string
		old, new             []byte
		oldExists, newExists bool
		want                 string
	}{
		{"binary", []byte("a\x00b"), []byte("text\n"), true, true, "binary content differs (3 → 5 bytes)\n"},
		{"invalid utf-8 is binary", []byte("\xff\xfe"), []byte("x"), true, true, "binary content differs (2 → 1 bytes)\n"},
		{"created file diffs from /dev/null", nil, []byte("hi\n"), false, true, "--- /dev/null\n+++ /p\n@@ -0,0 +1 @@\n+hi\n"},
		{"created empty file has no diff", nil, nil, false, true, ""},
		{"too large", make([]byte, 2<<20), []byte("x"), true, true, "binary content differs (2097152 → 1 bytes)\n"},
		{"too large text", []byte(strings.Repeat("a\n", 1<<20)), []byte("x"), true, true, "content differs (2097152 → 1 bytes, too large to show)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := contentDiff("/p", tt.old, tt.new, tt.oldExists, tt.newExists); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDiffAppliesWithPatch checks correctness against an independent tool:
// for random edits, patch(1) applied to old with our diff must give new.
func TestDiffAppliesWithPatch(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("patch(1) not installed")
	}
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"alpha\n", "beta\n", "gamma\n", "delta\n", "x\n", "y\n"}
	randText := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = words[r.IntN(len(words))]
		}
		return out
	}
	dir := t.TempDir()
	for i := range 60 {
		a := randText(r.IntN(40))
		b := append([]string(nil), a...)
		for range r.IntN(8) + 1 {
			switch pos := r.IntN(len(b) + 1); r.IntN(3) {
			case 0:
				b = append(b[:pos], append(randText(r.IntN(3)+1), b[pos:]...)...)
			case 1:
				if pos < len(b) {
					b = append(b[:pos], b[pos+1:]...)
				}
			case 2:
				if pos < len(b) {
					b[pos] = "changed\n"
				}
			}
		}
		old, new := strings.Join(a, ""), strings.Join(b, "")
		if i%5 == 0 && len(new) > 0 {
			new = strings.TrimSuffix(new, "\n") // exercise "No newline"
		}
		d := unifiedDiff("f", "f", []byte(old), []byte(new))
		if (d == "") != (old == new) {
			t.Fatalf("case %d: empty diff = %v for old==new %v", i, d == "", old == new)
		}
		if d == "" {
			continue
		}
		f := filepath.Join(dir, "f")
		os.WriteFile(f, []byte(old), 0o644)
		cmd := exec.Command("patch", "-s", "--posix", f)
		cmd.Stdin = strings.NewReader(d)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("case %d: patch failed: %v\n%s\ndiff:\n%s", i, err, out, d)
		}
		got, _ := os.ReadFile(f)
		if string(got) != new {
			t.Fatalf("case %d: patched = %q, want %q\ndiff:\n%s", i, got, new, d)
		}
		// Myers is minimal: as many changed lines as the LCS allows.
		if got, want := changes(diffLines(a, b)), len(a)+len(b)-2*lcs(a, b); got != want {
			t.Fatalf("case %d: %d changed lines, minimum is %d", i, got, want)
		}
	}
}

func TestDiffFallsBackBeyondEditDistance(t *testing.T) {
	var a, b []string
	for i := range 3000 {
		a = append(a, fmt.Sprintf("line %d\n", i))
		if i%2 == 0 {
			b = append(b, "changed\n")
		} else {
			b = append(b, a[i])
		}
	}
	edits := diffLines(a, b)
	if got := replay(a, b, edits); strings.Join(got, "") != strings.Join(b, "") {
		t.Fatal("fallback script does not turn old into new")
	}
	// The common last line is trimmed first; the rest is replaced whole.
	if changes(edits) != 2*2999 {
		t.Errorf("expected the whole-replacement fallback, got %d changes", changes(edits))
	}
}

func changes(edits []edit) int {
	n := 0
	for _, e := range edits {
		if e.op != opEqual {
			n++
		}
	}
	return n
}

// replay applies an edit script, checking its positions as it goes.
func replay(a, b []string, edits []edit) []string {
	var out []string
	i := 0
	for _, e := range edits {
		switch e.op {
		case opEqual:
			if e.a != i || a[e.a] != b[e.b] {
				return nil
			}
			out = append(out, a[i])
			i++
		case opDelete:
			if e.a != i {
				return nil
			}
			i++
		case opInsert:
			out = append(out, b[e.b])
		}
	}
	return out
}

func lcs(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}
