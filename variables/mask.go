package variables

import (
	"slices"
	"strings"
)

// Mask is what a sensitive value becomes in a log line.
const Mask = "********"

// Masker hides sensitive values in text: every occurrence of any of them,
// the longest first, so that a value that contains another is hidden
// whole. The zero value hides nothing; it is safe for concurrent use.
type Masker struct {
	r *strings.Replacer
}

// NewMasker returns a Masker of values. Empty values are passed over, as
// are values of one character, which would mask every occurrence of that
// character in every line: a secret that short protects nothing anyway.
func NewMasker(values []string) Masker {
	var vs []string
	for _, v := range values {
		if len(v) > 1 && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return Masker{}
	}
	slices.SortFunc(vs, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(vs))
	for _, v := range vs {
		pairs = append(pairs, v, Mask)
	}
	return Masker{r: strings.NewReplacer(pairs...)}
}

// Apply returns text with every sensitive value replaced by Mask.
func (m Masker) Apply(text string) string {
	if m.r == nil {
		return text
	}
	return m.r.Replace(text)
}
