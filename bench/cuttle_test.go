package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/testcluster"
)

// BenchmarkLeaderFailoverSIGKILL measures, on three nodes with the default
// cluster settings (heartbeat 1 s, lease 3 s), the time from a SIGKILL of the
// leader to another node's ping reporting Rank "Leader". The killed node is
// restarted between runs, so that every run starts from three nodes. A
// LeaderWatch samples every ping throughout and fails the benchmark on any
// proof of two leaders at once.
func BenchmarkLeaderFailoverSIGKILL(b *testing.B) {
	c := newCluster(b, 3)
	watch := c.WatchLeaders(b)
	var (
		s    samples
		runs runLog
	)
	run := 0
	for b.Loop() {
		run++
		leader, _, term := steadyLeader(b, c)
		randomPhase(time.Second) // one heartbeat: the leader renews every heartbeat
		t0 := time.Now()
		if err := leader.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		next, t1, nextTerm, err := waitOtherLeader(c, leader, 60*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		s = append(s, t1.Sub(t0))
		runs.add("run %d: SIGKILL of %s (term %d), %s leads term %d after %.1f ms",
			run, leader.Config.Name, term, next.Config.Name, nextTerm, ms(t1.Sub(t0)))
		leader.Wait(10 * time.Second)
		// A node checks in (and, as a follower, bids) every heartbeat from
		// its start. Restarting it right after the election would put its
		// bids a fixed few ms after the new leader's renewals, so that it
		// would always bid just after that lease expires: restart it at a
		// random point of the heartbeat instead, as in a real cluster.
		randomPhase(time.Second)
		if err := leader.Start(); err != nil {
			b.Fatal(err)
		}
		if err := leader.WaitServing(30 * time.Second); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	watch.Stop()
	rounds, single := watch.Rounds()
	runs.flush(b)
	b.Logf("leader watch: %d rounds sampled, %d with exactly one leader, %d proofs of two leaders", rounds, single, len(watch.Violations()))
	s.report(b)
	b.ReportMetric(float64(len(watch.Violations())), "two_leader_proofs")
}

// BenchmarkDrainHandover measures the time from sending PUT
// /api/octopusservernodes/{leader} {"IsInMaintenanceMode":true} through
// another node's API to a node other than the drained one reporting Rank
// "Leader" in its ping. The drained node is undrained between runs.
func BenchmarkDrainHandover(b *testing.B) {
	c := newCluster(b, 3)
	watch := c.WatchLeaders(b)
	var (
		s    samples
		runs runLog
	)
	run := 0
	for b.Loop() {
		run++
		leader, id, term := steadyLeader(b, c)
		var via *testcluster.Node
		for _, n := range c.Nodes {
			if n != leader {
				via = n
				break
			}
		}
		randomPhase(time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		drain, undrain := true, false
		putDone := make(chan error, 1)
		t0 := time.Now()
		go func() {
			_, err := via.Client.UpdateNode(ctx, id, nil, &drain)
			putDone <- err
		}()
		next, t1, nextTerm, err := waitOtherLeader(c, leader, 30*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		if err := <-putDone; err != nil {
			b.Fatalf("draining %s through %s: %v", leader.Config.Name, via.Config.Name, err)
		}
		s = append(s, t1.Sub(t0))
		runs.add("run %d: drain of %s (term %d) through %s, %s leads term %d after %.1f ms",
			run, leader.Config.Name, term, via.Config.Name, next.Config.Name, nextTerm, ms(t1.Sub(t0)))
		if _, err := via.Client.UpdateNode(ctx, id, nil, &undrain); err != nil {
			b.Fatal(err)
		}
		cancel()
		if err := leader.WaitPing(30*time.Second, 200); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	watch.Stop()
	rounds, single := watch.Rounds()
	runs.flush(b)
	b.Logf("leader watch: %d rounds sampled, %d with exactly one leader, %d proofs of two leaders", rounds, single, len(watch.Violations()))
	s.report(b)
	b.ReportMetric(float64(len(watch.Violations())), "two_leader_proofs")
}

// BenchmarkPingWrk loads one node's ping route with wrk on loopback as fast
// as it answers (`wrk -t2 -c50 -d10s --latency`, once per iteration after one
// 3 s warm-up) and reports the requests per second and the 99th percentile
// latency that wrk measured: their median over the runs, the lowest rate and
// the highest p99. wrk runs on the same two cores as the node. wrk must be
// installed (Debian: apt-get install wrk).
func BenchmarkPingWrk(b *testing.B) {
	benchmarkPingWrk(b, "-t2", "-c50")
}

// BenchmarkPingWrkPaced is BenchmarkPingWrk at a fixed load of about 21,000
// requests per second instead of the most the node answers: 60 connections,
// each waiting 2 ms after an answer before it sends the next request (wrk's
// Lua delay hook), so that the p99 is the latency at that load rather than
// the queueing of a saturated machine. The rate is reported as measured.
func BenchmarkPingWrkPaced(b *testing.B) {
	script := filepath.Join(b.TempDir(), "pace.lua")
	if err := os.WriteFile(script, []byte("function delay()\n  return 2\nend\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	benchmarkPingWrk(b, "-t2", "-c60", "-s", script)
}

func benchmarkPingWrk(b *testing.B, args ...string) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Fatal("wrk is not installed (Debian: apt-get install wrk)")
	}
	c := newCluster(b, 1)
	n := c.Nodes[0]
	url := n.URL + "/api/octopusservernodes/ping"
	if _, err := runWrk(wrk, url, append([]string{"-d3s"}, args...)...); err != nil { // warm-up
		b.Fatal(err)
	}
	var (
		rps, p99s []float64
		runs      runLog
	)
	run := 0
	for b.Loop() {
		run++
		r, err := runWrk(wrk, url, append([]string{"-d10s"}, args...)...)
		if err != nil {
			b.Fatal(err)
		}
		rps = append(rps, r.rps)
		p99s = append(p99s, r.p99)
		runs.add("run %d: %.0f req/s, p50 %.3f ms, p90 %.3f ms, p99 %.3f ms", run, r.rps, r.p50, r.p90, r.p99)
	}
	b.StopTimer()
	runs.flush(b)
	if len(rps) == 0 {
		return
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(medianF(rps), "median_req/s")
	b.ReportMetric(slices.Min(rps), "lowest_req/s")
	b.ReportMetric(medianF(p99s), "median_p99_ms")
	b.ReportMetric(slices.Max(p99s), "worst_p99_ms")
}

type wrkResult struct {
	rps, p50, p90, p99 float64 // requests per second; latencies in ms
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkLatency = regexp.MustCompile(`(?m)^\s+(50|90|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkBad     = regexp.MustCompile(`(Non-2xx or 3xx responses|Socket errors):[^\n]*`)
)

// runWrk runs wrk with args and --latency against url and parses its
// report. Any error or non-2xx answer fails the run.
func runWrk(wrk, url string, args ...string) (wrkResult, error) {
	out, err := exec.Command(wrk, append(append(args, "--latency"), url)...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	if m := wrkBad.Find(out); m != nil {
		return wrkResult{}, fmt.Errorf("wrk reported %s\n%s", m, out)
	}
	var r wrkResult
	m := wrkRPS.FindSubmatch(out)
	if m == nil {
		return wrkResult{}, fmt.Errorf("no Requests/sec in wrk's report:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, m := range wrkLatency.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		switch string(m[3]) {
		case "us":
			v /= 1000
		case "s":
			v *= 1000
		}
		switch string(m[1]) {
		case "50":
			r.p50 = v
		case "90":
			r.p90 = v
		case "99":
			r.p99 = v
		}
	}
	if r.p99 == 0 {
		return wrkResult{}, fmt.Errorf("no 99%% latency in wrk's report:\n%s", out)
	}
	return r, nil
}

func medianF(v []float64) float64 {
	t := slices.Clone(v)
	slices.Sort(t)
	if len(t)%2 == 1 {
		return t[len(t)/2]
	}
	return (t[len(t)/2-1] + t[len(t)/2]) / 2
}
