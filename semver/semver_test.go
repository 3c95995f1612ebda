package semver

import (
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	for _, s := range []string{"1", "1.2", "1.2.3", "1.2.3.4", "0.0.1-beta.2", "2.0.0+sha.5114f85", "1.0.0-rc.1+build.7"} {
		if _, err := Parse(s); err != nil {
			t.Errorf("Parse(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "v1.2.3", "1.2.3.4.5", "1..2", "1.-2", "1.2-", "1.2+", "a.b", "1.2.3 4", "+1"} {
		if v, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %+v; want an error", s, v)
		}
	}
	v, _ := Parse("1.2-beta+x")
	if v.Parts != [4]int64{1, 2, 0, 0} || v.Count != 2 || v.Pre != "beta" || v.Meta != "x" || v.String() != "1.2-beta+x" {
		t.Errorf("Parse(1.2-beta+x) = %+v", v)
	}
}

func TestCompare(t *testing.T) {
	// In order, as SemVer's precedence example, with 4-part and short versions mixed in.
	ordered := []string{"0.0.1", "0.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.0.1", "1.0.1", "1.10", "2.0.0.0-Beta", "2"}
	var vs []Version
	for _, s := range ordered {
		v, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	for i := range vs {
		for j := range vs {
			want := cmp(int64(i), int64(j))
			if got := Compare(vs[i], vs[j]); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", vs[i], vs[j], got, want)
			}
		}
	}
	shuffled := slices.Clone(vs)
	slices.Reverse(shuffled)
	slices.SortFunc(shuffled, Compare)
	for i := range vs {
		if shuffled[i].String() != vs[i].String() {
			t.Fatalf("sorted: %v", shuffled)
		}
	}
	a, _ := Parse("1.2")
	b, _ := Parse("1.2.0+meta")
	if Compare(a, b) != 0 {
		t.Error("1.2 and 1.2.0+meta differ")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.2.3", "1.0.0-rc.1+b", "9999999999999999999", "1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			return
		}
		if Compare(v, v) != 0 {
			t.Fatalf("%q is not equal to itself", s)
		}
	})
}
