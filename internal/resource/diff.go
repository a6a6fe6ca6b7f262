package resource

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits beyond which showing a diff costs more than it helps: the summary
// still says the content changed.
const (
	maxDiffBytes = 1 << 20
	// maxEditDistance bounds Myers' search (memory grows with its square);
	// past it the differing middle is shown as removed then added, which is
	// still a correct diff, only not a minimal one.
	maxEditDistance = 1000
	diffContext     = 3
)

// contentDiff describes how old becomes new for a human: a unified diff for
// text, one line for binary or oversized content. Missing sides are shown
// as /dev/null, as git does.
func contentDiff(path string, old, new []byte, oldExists, newExists bool) string {
	if bytes.Equal(old, new) && oldExists == newExists {
		return ""
	}
	if isBinary(old) || isBinary(new) {
		return fmt.Sprintf("binary content differs (%d → %d bytes)\n", len(old), len(new))
	}
	if len(old) > maxDiffBytes || len(new) > maxDiffBytes {
		return fmt.Sprintf("content differs (%d → %d bytes, too large to show)\n", len(old), len(new))
	}
	from, to := path, path
	if !oldExists {
		from = "/dev/null"
	}
	if !newExists {
		to = "/dev/null"
	}
	return unifiedDiff(from, to, old, new)
}

func isBinary(b []byte) bool {
	return bytes.IndexByte(b, 0) >= 0 || !utf8.Valid(b)
}

// splitLines splits after each newline; a last line without one is kept.
func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

type editOp byte

const (
	opEqual  editOp = ' '
	opDelete editOp = '-'
	opInsert editOp = '+'
)

// edit is one step of the script; a and b are the positions in the old and
// new lines before the step.
type edit struct {
	op   editOp
	a, b int
}

// unifiedDiff returns a unified diff (3 lines of context) or "" if equal.
func unifiedDiff(fromName, toName string, old, new []byte) string {
	a, b := splitLines(old), splitLines(new)
	edits := diffLines(a, b)
	var sb strings.Builder
	for i := 0; i < len(edits); {
		// Find the next change and extend the hunk while changes are close
		// enough for their contexts to touch.
		for i < len(edits) && edits[i].op == opEqual {
			i++
		}
		if i == len(edits) {
			break
		}
		start := max(0, i-diffContext)
		end := i
		for j := i; j < len(edits); j++ {
			if edits[j].op != opEqual {
				end = j + 1
			} else if j-end >= 2*diffContext {
				break
			}
		}
		end = min(len(edits), end+diffContext)
		if sb.Len() == 0 {
			fmt.Fprintf(&sb, "--- %s\n+++ %s\n", fromName, toName)
		}
		var na, nb int
		for _, e := range edits[start:end] {
			if e.op != opInsert {
				na++
			}
			if e.op != opDelete {
				nb++
			}
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(edits[start].a, na), hunkRange(edits[start].b, nb))
		for _, e := range edits[start:end] {
			line := ""
			switch e.op {
			case opEqual, opDelete:
				line = a[e.a]
			case opInsert:
				line = b[e.b]
			}
			sb.WriteByte(byte(e.op))
			sb.WriteString(line)
			if !strings.HasSuffix(line, "\n") {
				sb.WriteString("\n\\ No newline at end of file\n")
			}
		}
		i = end
	}
	return sb.String()
}

func hunkRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start) // the line before the empty range
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

// diffLines returns an edit script turning a into b: Myers' O(ND) algorithm
// on what remains after trimming the common prefix and suffix.
func diffLines(a, b []string) []edit {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var out []edit
	for i := range pre {
		out = append(out, edit{opEqual, i, i})
	}
	for _, e := range myers(a[pre:len(a)-suf], b[pre:len(b)-suf]) {
		out = append(out, edit{e.op, e.a + pre, e.b + pre})
	}
	for i := range suf {
		out = append(out, edit{opEqual, len(a) - suf + i, len(b) - suf + i})
	}
	return out
}

func myers(a, b []string) []edit {
	n, m := len(a), len(b)
	if n == 0 && m == 0 {
		return nil
	}
	limit := n + m
	off := limit + 1
	v := make([]int32, 2*limit+3)
	// trace[d] holds v[-d..d] as it was before round d, for backtracking.
	var trace [][]int32
	for d := 0; d <= limit; d++ {
		if d > maxEditDistance {
			return replaceAll(n, m)
		}
		trace = append(trace, append([]int32(nil), v[off-d:off+d+1]...))
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = int(v[off+k+1]) // down: insertion
			} else {
				x = int(v[off+k-1]) + 1 // right: deletion
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = int32(x)
			if x >= n && y >= m {
				return backtrack(trace, n, m)
			}
		}
	}
	return replaceAll(n, m) // unreachable: d = n+m always reaches the end
}

func backtrack(trace [][]int32, n, m int) []edit {
	var rev []edit
	x, y := n, m
	for d := len(trace) - 1; d > 0; d-- {
		v := trace[d] // index k+d
		k := x - y
		var prevK int
		if k == -d || (k != d && v[k-1+d] < v[k+1+d]) {
			prevK = k + 1
		} else {
			prevK = k - 1
		}
		prevX := int(v[prevK+d])
		prevY := prevX - prevK
		for x > prevX && y > prevY {
			x--
			y--
			rev = append(rev, edit{opEqual, x, y})
		}
		if x == prevX {
			y--
			rev = append(rev, edit{opInsert, x, y})
		} else {
			x--
			rev = append(rev, edit{opDelete, x, y})
		}
	}
	for x > 0 && y > 0 {
		x--
		y--
		rev = append(rev, edit{opEqual, x, y})
	}
	out := make([]edit, len(rev))
	for i, e := range rev {
		out[len(rev)-1-i] = e
	}
	return out
}

func replaceAll(n, m int) []edit {
	out := make([]edit, 0, n+m)
	for i := range n {
		out = append(out, edit{opDelete, i, 0})
	}
	for j := range m {
		out = append(out, edit{opInsert, n, j})
	}
	return out
}
