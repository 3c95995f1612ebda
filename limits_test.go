package cuttle

import (
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"0", 0}, {"1024", 1024}, {"16KiB", 16 << 10}, {"16kb", 16 << 10}, {"256 MiB", 256 << 20},
		{"4GiB", 4 << 30}, {"1T", 1 << 40}, {"7B", 7},
	} {
		if got, err := ParseSize(c.in); err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "-1", "1.5GiB", "12PB", "KiB", "9999999999TiB"} {
		if got, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) = %d; want an error", bad, got)
		}
	}
	for _, n := range []int64{0, 1, 1000, 16 << 10, 3 << 20, 4 << 30, 5 << 40, 1<<20 + 1} {
		if got, err := ParseSize(FormatSize(n)); err != nil || got != n {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v", n, FormatSize(n), got, err)
		}
	}
}

func TestLimitsCheck(t *testing.T) {
	if err := (Limits{}).Check(); err != nil {
		t.Errorf("the defaults: %v", err)
	}
	if d := (Limits{}).WithDefaults(); d.BodyTimeout != DefaultBodyTimeout || d.LogLineBytes != DefaultLogLineBytes || d.ArtifactBytes != DefaultArtifactBytes {
		t.Errorf("WithDefaults = %+v", d)
	}
	for _, bad := range []Limits{{ConnsPerAddress: -1}, {LogLineBytes: 100}, {BodyTimeout: time.Millisecond}, {CommandOutputBytes: -5}} {
		if err := bad.Check(); !IsKind(err, KindInvalid) {
			t.Errorf("Check of %+v: %v, want KindInvalid", bad, err)
		}
	}
}

func TestOutputCountKeepsTheStart(t *testing.T) {
	b := OutputBound{Lines: 10, Bytes: 10}
	var c OutputCount
	var kept []bool
	for _, n := range []int{4, 4, 4, 1} { // the third is over the bytes; the short fourth is dropped too
		kept = append(kept, c.Admit(b, n))
	}
	if kept[0] != true || kept[1] != true || kept[2] || kept[3] || c != (OutputCount{Lines: 2, Bytes: 8, DroppedLines: 2, DroppedBytes: 5}) {
		t.Errorf("kept %v, count %+v", kept, c)
	}
	if c.Note(b) == "" || (OutputCount{Lines: 3}).Note(b) != "" {
		t.Error("Note says what was dropped, and nothing when nothing was")
	}
}
