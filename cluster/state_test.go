package cluster

import (
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
)

// TestAliveSince: a check-in that comes while the node is still Alive keeps
// the start of its run of aliveness; one that comes after a gap (a pause, a
// lost database) starts a new run.
func TestAliveSince(t *testing.T) {
	settings := cuttle.DefaultClusterSettings()
	settings.StaleTimeout = 600 * time.Millisecond // Alive for 500 ms after a check-in
	var s State
	first := time.Now().Add(-time.Second)
	s.checkedInAt(first, settings)
	if !s.AliveSince().Equal(first) {
		t.Fatalf("after the first check-in AliveSince = %v, want %v", s.AliveSince(), first)
	}
	s.checkedInAt(first.Add(400*time.Millisecond), settings)
	if !s.AliveSince().Equal(first) {
		t.Errorf("a check-in within the window moved AliveSince to %v, want %v", s.AliveSince(), first)
	}
	late := first.Add(900 * time.Millisecond) // 500 ms after the last one: the window had closed
	s.checkedInAt(late, settings)
	if !s.AliveSince().Equal(late) {
		t.Errorf("a check-in after a gap left AliveSince at %v, want %v", s.AliveSince(), late)
	}
	if !s.Alive() {
		t.Errorf("not Alive 100 ms after a check-in")
	}
}
