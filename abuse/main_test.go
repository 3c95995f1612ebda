package abuse_test

import (
	"fmt"
	"os"
	"testing"
)

// TestMain runs the suite only when CUTTLE_ABUSE=1: its attacks take the
// machine's CPU and its checks measure the node's answers under them, so
// it runs alone, after the rest of the tests (./scripts/test does so; CI
// runs it). In a `go test ./...` beside other packages it would measure
// their load, not the node's bounds.
func TestMain(m *testing.M) {
	if os.Getenv("CUTTLE_ABUSE") != "1" {
		fmt.Println("abuse: the suite runs alone, with CUTTLE_ABUSE=1 (./scripts/test runs it so)")
		os.Exit(0)
	}
	os.Exit(m.Run())
}
