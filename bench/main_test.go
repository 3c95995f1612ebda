// Package bench holds cuttle's benchmarks of leader failover, drain handover
// and ping, with River's leader election as the anchor to compare with. It is
// a module of its own so that River never becomes a dependency of cuttle and
// `go test ./...` at the root runs no benchmark. Run it with
//
//	cd bench && go test -run XXX -bench . -benchtime=10x -timeout 30m
//
// docs/benchmarks.md records the figures.
package bench

import (
	"os"
	"testing"

	"github.com/cuttledeploy/cuttle/testcluster"
)

func TestMain(m *testing.M) { os.Exit(testcluster.RunWithPostgres(m)) }
