package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{} // by command name: the binary's path
)

// buildCommand builds ./cmd/<name> of this module, once per process, and
// returns the binary's path.
func buildCommand(b *testing.B, name string) string {
	b.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[name]; ok {
		return bin
	}
	dir, err := os.MkdirTemp("", "cuttle-bench-bin-")
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/"+name).CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/%s: %v\n%s", name, err, out)
	}
	built[name] = bin
	return bin
}

// pollInterval is the pause between two rounds of leader polling, in both
// cuttle's and River's benchmarks.
const pollInterval = 2 * time.Millisecond

// newCluster starts n cuttle nodes named a, b, c, ... on a fresh database of
// the shared PostgreSQL, with the default cluster settings.
func newCluster(b *testing.B, n int) *testcluster.Cluster {
	b.Helper()
	db := testcluster.SharedPostgres(b).NewDatabase(b)
	c := testcluster.NewCluster(b, db)
	for i := range n {
		c.StartNode(string(rune('a' + i)))
	}
	b.Cleanup(func() {
		for _, n := range c.Nodes {
			keepLog(b, n.Config.Name+".log", n.Log())
		}
	})
	return c
}

// keepLog writes a process's log to the folder named by $BENCH_LOG_DIR, if
// set, as <benchmark>-<name>.
func keepLog(b *testing.B, name, log string) {
	dir := os.Getenv("BENCH_LOG_DIR")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Error(err)
		return
	}
	path := filepath.Join(dir, strings.ReplaceAll(b.Name(), "/", "_")+"-"+name)
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		b.Error(err)
	}
}

// pingClient is shared by the pollers so that they reuse connections.
var pingClient = &http.Client{
	Timeout:   500 * time.Millisecond,
	Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true},
}

// ping reads one node's ping answer; ok is false if the node did not answer.
func ping(n *testcluster.Node) (node client.Node, status int, term int64, ok bool) {
	resp, err := pingClient.Get(n.URL + "/api/octopusservernodes/ping")
	if err != nil {
		return client.Node{}, 0, 0, false
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&node); err != nil {
		return client.Node{}, resp.StatusCode, 0, false
	}
	term, _ = strconv.ParseInt(resp.Header.Get("X-Cuttle-Leader-Term"), 10, 64)
	return node, resp.StatusCode, term, true
}

// waitOtherLeader polls the ping of every running node but old every
// pollInterval until one reports Rank "Leader", and returns it with the time
// its answer arrived and the term it leads.
func waitOtherLeader(c *testcluster.Cluster, old *testcluster.Node, timeout time.Duration) (*testcluster.Node, time.Time, int64, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, n := range c.Nodes {
			if n == old || n.Exited() {
				continue
			}
			if node, _, term, ok := ping(n); ok && node.Rank == "Leader" {
				return n, time.Now(), term, nil
			}
		}
		time.Sleep(pollInterval)
	}
	return nil, time.Time{}, 0, fmt.Errorf("no other node than %s led within %v", old.Config.Name, timeout)
}

// steadyLeader waits until every node serves and exactly one leads, and
// returns the leader, its node id and term.
func steadyLeader(b *testing.B, c *testcluster.Cluster) (*testcluster.Node, string, int64) {
	b.Helper()
	for _, n := range c.Nodes {
		if err := n.WaitServing(30 * time.Second); err != nil {
			b.Fatal(err)
		}
	}
	leader, err := c.WaitLeader(30 * time.Second)
	if err != nil {
		b.Fatal(err)
	}
	node, _, term, ok := ping(leader)
	if !ok || node.Rank != "Leader" {
		b.Fatalf("node %s stopped leading right after it was found leading", leader.Config.Name)
	}
	return leader, node.Id, term
}

// randomPhase sleeps a uniformly random time in [0, d), so that the measured
// event falls at a random point of the leader's renewal cycle instead of at
// the same point in every run (the previous run's new leader took its lease
// a fixed restart time earlier).
func randomPhase(d time.Duration) {
	time.Sleep(rand.N(d))
}

// runLog collects one line per run. The testing package keeps only the first
// ten lines a benchmark logs, so flush logs them as one line (and writes
// them one a line to $BENCH_LOG_DIR, if set).
type runLog []string

func (l *runLog) add(format string, args ...any) { *l = append(*l, fmt.Sprintf(format, args...)) }

func (l runLog) flush(b *testing.B) {
	b.Helper()
	if len(l) == 0 {
		return
	}
	b.Logf("runs: %s", strings.Join(l, "; "))
	keepLog(b, "runs.txt", strings.Join(l, "\n")+"\n")
}

// samples are the durations of one benchmark's measured events.
type samples []time.Duration

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (s samples) median() time.Duration {
	t := slices.Clone(s)
	slices.Sort(t)
	if len(t)%2 == 1 {
		return t[len(t)/2]
	}
	return (t[len(t)/2-1] + t[len(t)/2]) / 2
}

// report logs every sample and reports their median, best and worst in
// milliseconds, suppressing ns/op (which would count restarts between runs).
func (s samples) report(b *testing.B) {
	b.Helper()
	if len(s) == 0 {
		return
	}
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatFloat(ms(d), 'f', 1, 64)
	}
	b.Logf("samples (ms, in run order): %s", strings.Join(parts, " "))
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(s.median()), "median_ms")
	b.ReportMetric(ms(slices.Min(s)), "best_ms")
	b.ReportMetric(ms(slices.Max(s)), "worst_ms")
}
