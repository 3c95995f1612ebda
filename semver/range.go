package semver

import (
	"fmt"
	"strings"
)

// Range is a NuGet version range, as Octopus channel rules write them:
// "1.0" (1.0 or above), "[1.0]" (exactly 1.0), "(1.0,)" (above 1.0),
// "[1.0,2.0)" (1.0 or above, below 2.0), "(,2.0]" (2.0 or below). The zero
// Range holds every version.
type Range struct {
	Min, Max                   *Version
	MinInclusive, MaxInclusive bool
}

// ParseRange reads a range; an empty text is the Range of every version.
func ParseRange(s string) (Range, error) {
	s = strings.TrimSpace(s)
	bad := func(why string) (Range, error) {
		return Range{}, fmt.Errorf("%q is not a version range (%s): write it as NuGet does, such as 1.0, [1.0], (1.0,) or [1.0,2.0)", s, why)
	}
	if s == "" {
		return Range{}, nil
	}
	if s[0] != '[' && s[0] != '(' {
		v, err := Parse(s)
		if err != nil {
			return bad("not a version")
		}
		return Range{Min: &v, MinInclusive: true}, nil
	}
	if len(s) < 3 || (s[len(s)-1] != ']' && s[len(s)-1] != ')') {
		return bad("it opens a bracket it does not close")
	}
	r := Range{MinInclusive: s[0] == '[', MaxInclusive: s[len(s)-1] == ']'}
	inner := s[1 : len(s)-1]
	lo, hi, two := strings.Cut(inner, ",")
	if !two {
		if !r.MinInclusive || !r.MaxInclusive {
			return bad("a single version takes square brackets")
		}
		v, err := Parse(strings.TrimSpace(lo))
		if err != nil {
			return bad("not a version")
		}
		return Range{Min: &v, Max: &v, MinInclusive: true, MaxInclusive: true}, nil
	}
	for _, b := range []struct {
		text string
		to   **Version
	}{{lo, &r.Min}, {hi, &r.Max}} {
		if t := strings.TrimSpace(b.text); t != "" {
			v, err := Parse(t)
			if err != nil {
				return bad(fmt.Sprintf("%q is not a version", t))
			}
			*b.to = &v
		}
	}
	if r.Min == nil && r.Max == nil {
		return bad("it has no bound")
	}
	if r.Min != nil && r.Max != nil && Compare(*r.Min, *r.Max) > 0 {
		return bad("its lower bound is above its upper bound")
	}
	return r, nil
}

// Contains reports whether v is in the range.
func (r Range) Contains(v Version) bool {
	if r.Min != nil {
		if c := Compare(v, *r.Min); c < 0 || (c == 0 && !r.MinInclusive) {
			return false
		}
	}
	if r.Max != nil {
		if c := Compare(v, *r.Max); c > 0 || (c == 0 && !r.MaxInclusive) {
			return false
		}
	}
	return true
}
