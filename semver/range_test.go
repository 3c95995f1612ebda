package semver

import "testing"

func TestRange(t *testing.T) {
	for _, c := range []struct {
		rng string
		in  []string
		out []string
	}{
		{"", []string{"0.0.1", "9.9.9-beta"}, nil},
		{"1.0", []string{"1.0", "1.0.0", "2.0"}, []string{"0.9", "1.0.0-beta"}},
		{"[1.0]", []string{"1.0.0"}, []string{"1.0.1", "0.9"}},
		{"(1.0,)", []string{"1.0.1", "5"}, []string{"1.0", "0.1"}},
		{"[1.0,2.0)", []string{"1.0", "1.9.9", "2.0.0-rc.1"}, []string{"2.0", "0.9"}},
		{"(,2.0]", []string{"0.1", "2.0"}, []string{"2.0.1"}},
	} {
		r, err := ParseRange(c.rng)
		if err != nil {
			t.Fatalf("ParseRange(%q): %v", c.rng, err)
		}
		for _, v := range c.in {
			if !r.Contains(mustParse(t, v)) {
				t.Errorf("%q does not contain %s", c.rng, v)
			}
		}
		for _, v := range c.out {
			if r.Contains(mustParse(t, v)) {
				t.Errorf("%q contains %s", c.rng, v)
			}
		}
	}
	for _, bad := range []string{"[", "(1.0)", "[1.0", "[x,2]", "[3,2]", "(,)", "abc", "[1.0,2.0,3.0]"} {
		if _, err := ParseRange(bad); err == nil {
			t.Errorf("ParseRange(%q) succeeded", bad)
		}
	}
}

func mustParse(t *testing.T, s string) Version {
	t.Helper()
	v, err := Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
