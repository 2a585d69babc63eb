// Package suggest words the error for an unknown configuration option: it
// names the option and where it was found, and suggests the closest valid
// one (a likely typo) or lists the valid ones.
package suggest

import (
	"fmt"
	"sort"
	"strings"
)

// Closest returns the valid option nearest to word, or "" when none is near
// enough to be a likely typo: at most 2 edits, or a third of the word's
// length for long words, or a truncation.
func Closest(word string, valid []string) string {
	best, bestD := "", -1
	limit := len(word) / 3
	if limit < 2 {
		limit = 2
	}
	for _, v := range valid {
		d := distance(strings.ToLower(word), strings.ToLower(v))
		if len(word) >= 4 && strings.HasPrefix(v, word) {
			d = 1 // a truncated option, e.g. workflow for workflow_id
		}
		if d <= limit && (bestD < 0 || d < bestD || d == bestD && v < best) {
			best, bestD = v, d
		}
	}
	return best
}

// Unknown is the message for an unknown option word in block, e.g.
// `idv: unknown option "sesion_ttl": did you mean "session_ttl"?`.
func Unknown(block, word string, valid []string) string {
	if c := Closest(word, valid); c != "" {
		return fmt.Sprintf("%s: unknown option %q: did you mean %q?", block, word, c)
	}
	v := append([]string(nil), valid...)
	sort.Strings(v)
	return fmt.Sprintf("%s: unknown option %q; valid options: %s", block, word, strings.Join(v, ", "))
}

// distance is the Damerau-Levenshtein distance (optimal string alignment):
// a swap of two neighbouring letters counts as one edit.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
