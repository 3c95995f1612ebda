// Package semver reads and orders versions as Octopus and NuGet write
// them: one to four numeric parts (1, 1.2, 1.2.3, 1.2.3.4), a pre-release
// tag after "-" and build metadata after "+" (1.2.3-beta.2+sha.5114f85).
// It is looser than SemVer 2.0 in the number of parts, which releases and
// packages of Octopus users have, and follows its precedence otherwise.
package semver

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a parsed version.
type Version struct {
	// Parts are the numeric parts, always four (missing ones are 0).
	Parts [4]int64
	// Count is how many numeric parts the text had.
	Count int
	// Pre is the pre-release tag without its "-"; Meta the build metadata
	// without its "+" (ignored in comparisons).
	Pre, Meta string
	text      string
}

// Parse reads s. It fails on an empty text, a part that is not a whole
// number of at least 0, more than four parts, and an empty tag.
func Parse(s string) (Version, error) {
	v := Version{text: s}
	rest := strings.TrimSpace(s)
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.Meta, rest = rest[i+1:], rest[:i]
		if v.Meta == "" {
			return Version{}, fmt.Errorf("%q is not a version: nothing follows its +", s)
		}
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		v.Pre, rest = rest[i+1:], rest[:i]
		if v.Pre == "" {
			return Version{}, fmt.Errorf("%q is not a version: nothing follows its -", s)
		}
	}
	parts := strings.Split(rest, ".")
	if rest == "" || len(parts) > 4 {
		return Version{}, fmt.Errorf("%q is not a version: it needs one to four numbers, as 1.2.3", s)
	}
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil || n < 0 || p == "" || (len(p) > 1 && p[0] == '+') {
			return Version{}, fmt.Errorf("%q is not a version: %q is not a whole number", s, p)
		}
		v.Parts[i] = n
	}
	v.Count = len(parts)
	return v, nil
}

// String is the text the version was parsed from.
func (v Version) String() string { return v.text }

// Compare orders a and b: -1, 0 or 1. Numeric parts first (missing parts
// count as 0, so 1.2 equals 1.2.0), then a version without a pre-release
// tag above one with, then the tags by SemVer's rules (dot-separated
// identifiers, numeric ones numerically and below alphanumeric ones,
// ignoring case). Build metadata does not count.
func Compare(a, b Version) int {
	for i := range a.Parts {
		if c := cmp(a.Parts[i], b.Parts[i]); c != 0 {
			return c
		}
	}
	switch {
	case a.Pre == "" && b.Pre == "":
		return 0
	case a.Pre == "":
		return 1
	case b.Pre == "":
		return -1
	}
	x, y := strings.Split(strings.ToLower(a.Pre), "."), strings.Split(strings.ToLower(b.Pre), ".")
	for i := 0; i < len(x) && i < len(y); i++ {
		nx, errx := strconv.ParseInt(x[i], 10, 64)
		ny, erry := strconv.ParseInt(y[i], 10, 64)
		var c int
		switch {
		case errx == nil && erry == nil:
			c = cmp(nx, ny)
		case errx == nil:
			c = -1
		case erry == nil:
			c = 1
		default:
			c = strings.Compare(x[i], y[i])
		}
		if c != 0 {
			return c
		}
	}
	return cmp(int64(len(x)), int64(len(y)))
}

func cmp(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
