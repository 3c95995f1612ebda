package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cuttledeploy/cuttle/testcluster"
)

// The task benchmarks: pickup latency on an idle cluster, throughput of
// no-op tasks, and takeover of a SIGKILLed node's task. river_tasks_test.go
// holds River's side of the first two. Every figure comes from the
// database's own times (clock_timestamp() in cuttle, now() or the worker's
// clock in River; see docs/benchmarks.md) except the takeover, which is
// timed from the kill to the first poll that sees the task executing again.

// gapRange is the pause after queueing one task in the pickup-latency
// benchmarks: uniform in [lo, hi), so that a task never arrives at a fixed
// point of any node's or River client's cycle.
type gapRange struct{ lo, hi time.Duration }

func (g gapRange) next() time.Duration { return g.lo + rand.N(g.hi-g.lo) }

func (g gapRange) String() string {
	return fmt.Sprintf("gap=%d-%dms", g.lo/time.Millisecond, g.hi/time.Millisecond)
}

// pickupGaps are the gaps of the pickup-latency benchmarks: a few ms (the
// figure), and 100 to 200 ms, longer than River's default FetchCooldown, to
// show how River's latency depends on the rate of inserts.
var pickupGaps = []gapRange{{2 * time.Millisecond, 6 * time.Millisecond}, {100 * time.Millisecond, 200 * time.Millisecond}}

// throughputTasks is how many no-op tasks (or River jobs) one iteration of a
// throughput benchmark queues in one statement; $BENCH_TASKS overrides it
// (for a quick check of the benchmark itself).
func throughputTasks(b *testing.B) int {
	if s := os.Getenv("BENCH_TASKS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("BENCH_TASKS=%q is not a positive number", s)
		}
		return n
	}
	return 20000
}

// throughputPoll is the pause between two polls for the end of a throughput
// batch; the observed end is late by at most one poll.
const throughputPoll = 10 * time.Millisecond

// newTaskCluster starts n cuttle nodes named a, b, c, ... with the extra
// server flags args on a fresh database of the shared PostgreSQL, with the
// default cluster settings, and keeps their logs (see keepLog).
func newTaskCluster(b *testing.B, n int, args ...string) *testcluster.Cluster {
	b.Helper()
	db := testcluster.SharedPostgres(b).NewDatabase(b)
	c := testcluster.NewCluster(b, db)
	for i := range n {
		c.StartNode(string(rune('a'+i)), args...)
	}
	b.Cleanup(func() {
		for _, n := range c.Nodes {
			keepLog(b, n.Config.Name+".log", n.Log())
		}
	})
	return c
}

// openPool opens a small pool on the database at url, closed when the
// benchmark ends.
func openPool(b *testing.B, url string) *pgxpool.Pool {
	b.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

// maxTaskID returns the highest task id so far (0 if none).
func maxTaskID(b *testing.B, pool *pgxpool.Pool) int64 {
	b.Helper()
	var id int64
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(max(id), 0) FROM tasks`).Scan(&id); err != nil {
		b.Fatal(err)
	}
	return id
}

// tasksActive reports whether any task with an id above after is Queued,
// Executing or Cancelling, and the database's clock at that instant. Each
// half uses its own partial index (tasks_queued, tasks_running).
func tasksActive(ctx context.Context, pool *pgxpool.Pool, after int64) (bool, time.Time, error) {
	var (
		active bool
		at     time.Time
	)
	err := pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM tasks WHERE state = 'Queued' AND id > $1)
			OR EXISTS (SELECT 1 FROM tasks WHERE state IN ('Executing', 'Cancelling') AND id > $1),
			clock_timestamp()`, after).Scan(&active, &at)
	return active, at, err
}

// waitTasksDone polls every interval until no task above after is active,
// and returns the database's clock at the poll that saw it.
func waitTasksDone(b *testing.B, pool *pgxpool.Pool, after int64, interval, timeout time.Duration) time.Time {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		active, at, err := tasksActive(ctx, pool, after)
		if err != nil {
			b.Fatalf("waiting for the tasks after id %d to complete: %v", after, err)
		}
		if !active {
			return at
		}
		time.Sleep(interval)
	}
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// pickup is one task's (or job's) pickup: from its queueing to its start,
// both by the database's clock, and who started it.
type pickup struct {
	id      int64
	by      string
	latency time.Duration
}

// reportPickups logs the distribution and the slowest pickups and reports
// p50, p90, p99, the highest and the mean in milliseconds.
func reportPickups(b *testing.B, ps []pickup) {
	b.Helper()
	if len(ps) == 0 {
		b.Fatal("no pickups to report")
	}
	lat := make([]time.Duration, len(ps))
	var sum time.Duration
	byNode := map[string]int{}
	for i, p := range ps {
		lat[i] = p.latency
		sum += p.latency
		byNode[p.by]++
	}
	slices.Sort(lat)
	slow := slices.Clone(ps)
	slices.SortFunc(slow, func(x, y pickup) int { return cmp.Compare(y.latency, x.latency) })
	var parts []string
	for _, p := range slow[:min(10, len(slow))] {
		parts = append(parts, fmt.Sprintf("#%d by %s %.2f ms", p.id, p.by, ms(p.latency)))
	}
	var nodes []string
	for n, k := range byNode {
		nodes = append(nodes, fmt.Sprintf("%s %d", n, k))
	}
	sort.Strings(nodes)
	var buckets []string
	for _, edge := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, time.Second} {
		k, _ := slices.BinarySearch(lat, edge)
		buckets = append(buckets, fmt.Sprintf("<%v: %d", edge, k))
	}
	b.Logf("%d pickups; p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms, mean %.2f ms; started by: %s",
		len(lat), ms(percentile(lat, 50)), ms(percentile(lat, 90)), ms(percentile(lat, 99)), ms(lat[len(lat)-1]),
		ms(sum/time.Duration(len(lat))), strings.Join(nodes, ", "))
	b.Logf("cumulative: %s", strings.Join(buckets, ", "))
	b.Logf("slowest: %s", strings.Join(parts, "; "))
	var all []string
	for _, p := range ps {
		all = append(all, fmt.Sprintf("%d %s %.3f", p.id, p.by, ms(p.latency)))
	}
	keepLog(b, "pickups.txt", "id started_by latency_ms\n"+strings.Join(all, "\n")+"\n")
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(percentile(lat, 50)), "p50_ms")
	b.ReportMetric(ms(percentile(lat, 90)), "p90_ms")
	b.ReportMetric(ms(percentile(lat, 99)), "p99_ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max_ms")
	b.ReportMetric(ms(sum/time.Duration(len(lat))), "mean_ms")
}

// queueNoopNotify is the direct way to queue one Noop task: the row the API
// would insert (QueueTime, QueueTimeExpiry and LastUpdatedTime from one
// clock_timestamp(), the default queue timeout of one day) and the
// notification, in one statement (the notification goes out when it commits).
const queueNoopNotify = `
	WITH clock AS (SELECT clock_timestamp() AS ts),
	ins AS (
		INSERT INTO tasks (space_id, name, description, arguments, state, queue_time, queue_time_expiry, last_updated_time)
		SELECT 'Spaces-1', 'Noop', 'Does nothing (measures the task queue)', '{}', 'Queued', ts, ts + interval '1 day', ts
		FROM clock
		RETURNING id
	)
	SELECT pg_notify('cuttle_tasks', '') FROM ins`

// BenchmarkTaskPickupLatency measures, on an idle cluster of three nodes
// with the default settings (task cap 5, heartbeat 1 s), the time from a
// Noop task's queueing to its start: tasks.queue_time to tasks.start_time,
// both clock_timestamp() of the database. One iteration queues one task,
// then pauses (gap=2-6ms: 2 to 6 ms, the figure; gap=100-200ms: 100 to
// 200 ms). api queues through POST /api/tasks of a node picked at random
// (which inserts, then NOTIFYs); sql queues with one SQL statement that
// inserts the row and calls pg_notify on cuttle_tasks with an empty payload.
func BenchmarkTaskPickupLatency(b *testing.B) {
	for _, gap := range pickupGaps {
		for _, via := range []string{"api", "sql"} {
			b.Run(gap.String()+"/"+via, func(b *testing.B) { benchmarkTaskPickup(b, via == "api", gap) })
		}
	}
}

func benchmarkTaskPickup(b *testing.B, viaAPI bool, gap gapRange) {
	c := newTaskCluster(b, 3)
	steadyLeader(b, c)
	pool := openPool(b, c.DB)
	// The leader queues its scheduled jobs at its first sweep: let them end,
	// so that the cluster is idle.
	time.Sleep(2 * time.Second)
	waitTasksDone(b, pool, 0, 20*time.Millisecond, 60*time.Second)
	first := maxTaskID(b, pool)
	ctx := context.Background()
	time.Sleep(time.Second)
	for b.Loop() {
		if viaAPI {
			n := c.Nodes[rand.N(len(c.Nodes))]
			if _, err := n.Client.CreateTask(ctx, "Noop", map[string]any{}); err != nil {
				b.Fatalf("queueing a Noop task through %s: %v", n.Config.Name, err)
			}
		} else if _, err := pool.Exec(ctx, queueNoopNotify); err != nil {
			b.Fatal(err)
		}
		time.Sleep(gap.next())
	}
	b.StopTimer()
	waitTasksDone(b, pool, first, 20*time.Millisecond, 60*time.Second)
	rows, err := pool.Query(ctx, `
		SELECT id, server_node, state, (extract(epoch FROM start_time - queue_time) * 1e6)::bigint FROM tasks WHERE id > $1 ORDER BY id`, first)
	if err != nil {
		b.Fatal(err)
	}
	var ps []pickup
	for rows.Next() {
		var (
			p     pickup
			state string
			us    int64
		)
		if err := rows.Scan(&p.id, &p.by, &state, &us); err != nil {
			b.Fatal(err)
		}
		p.latency = time.Duration(us) * time.Microsecond
		if state != "Success" {
			b.Errorf("task %d ended %s", p.id, state)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(ps) != b.N {
		b.Fatalf("%d tasks were queued, %d found", b.N, len(ps))
	}
	reportPickups(b, ps)
}

// BenchmarkTaskThroughput measures how fast three nodes with a task cap of
// 20 each (cap=20, the figure: --task-cap 20; every other setting is the
// default) or of 5 (cap=5, cuttle's default cap) run no-op tasks: one
// iteration queues 20,000 Noop tasks in one INSERT, then sends one pg_notify
// on cuttle_tasks with an empty payload, and reports tasks per second from
// the first queue_time to the last completed_time (both clock_timestamp()
// of the database). It also reports the rate up to the first poll (every
// 10 ms) that found no task left queued or executing. Between iterations it
// vacuums the table; the completed tasks stay, as they would until
// retention.
func BenchmarkTaskThroughput(b *testing.B) {
	for _, taskCap := range []int{20, 5} {
		b.Run("cap="+strconv.Itoa(taskCap), func(b *testing.B) { benchmarkTaskThroughput(b, taskCap) })
	}
}

func benchmarkTaskThroughput(b *testing.B, taskCap int) {
	tc := newTaskThroughput(b, taskCap)
	n := throughputTasks(b)
	var (
		rates, observed []float64
		runs            runLog
	)
	run := 0
	for b.Loop() {
		run++
		randomPhase(time.Second) // the nodes' heartbeat claims and monitors
		r := tc.batch(b, n, fmt.Sprintf("run%d", run))
		rates, observed = append(rates, r.rate), append(observed, r.observed)
		runs.add("run %d: %s", run, r.line)
	}
	b.StopTimer()
	runs.flush(b)
	reportRates(b, "tasks/s", rates, observed)
}

// taskThroughput is a cluster of three nodes ready for throughput batches.
type taskThroughput struct {
	pool    *pgxpool.Pool
	taskCap int
}

func newTaskThroughput(b *testing.B, taskCap int) *taskThroughput {
	b.Helper()
	c := newTaskCluster(b, 3, "--task-cap", strconv.Itoa(taskCap))
	steadyLeader(b, c)
	pool := openPool(b, c.DB)
	time.Sleep(2 * time.Second)
	waitTasksDone(b, pool, 0, 20*time.Millisecond, 60*time.Second)
	return &taskThroughput{pool: pool, taskCap: taskCap}
}

// batchResult is one throughput batch: its rate by the database's times,
// its observed rate, and a line for the run log.
type batchResult struct {
	rate, observed float64
	line           string
}

// batch queues n Noop tasks in one INSERT, notifies, waits until all have
// completed, and measures them; name prefixes the batch's log file. It
// vacuums the table afterwards.
func (tc *taskThroughput) batch(b *testing.B, n int, name string) batchResult {
	b.Helper()
	ctx := context.Background()
	pool := tc.pool
	prev := maxTaskID(b, pool)
	tag, err := pool.Exec(ctx, `
		INSERT INTO tasks (space_id, name, description, arguments, state, queue_time, queue_time_expiry, last_updated_time)
		SELECT 'Spaces-1', 'Noop', 'Does nothing (measures the task queue)', '{}', 'Queued',
			clock_timestamp(), clock_timestamp() + interval '1 day', clock_timestamp()
		FROM generate_series(1, $1)`, n)
	if err != nil {
		b.Fatal(err)
	}
	if tag.RowsAffected() != int64(n) {
		b.Fatalf("inserted %d tasks, want %d", tag.RowsAffected(), n)
	}
	var notified time.Time
	if err := pool.QueryRow(ctx, `SELECT clock_timestamp() FROM pg_notify('cuttle_tasks', '')`).Scan(&notified); err != nil {
		b.Fatal(err)
	}
	end := waitTasksDone(b, pool, prev, throughputPoll, 10*time.Minute)
	var (
		firstQ, lastQ, lastDone time.Time
		success                 int
		perNode                 string
	)
	if err := pool.QueryRow(ctx, `
		SELECT min(queue_time), max(queue_time), max(completed_time), count(*) FILTER (WHERE state = 'Success'),
			(SELECT string_agg(server_node || ' ' || k, ', ' ORDER BY server_node)
			 FROM (SELECT server_node, count(*) AS k FROM tasks WHERE id > $1 GROUP BY server_node) s)
		FROM tasks WHERE id > $1`, prev).Scan(&firstQ, &lastQ, &lastDone, &success, &perNode); err != nil {
		b.Fatal(err)
	}
	if success != n {
		b.Fatalf("%s: %d of %d tasks succeeded", name, success, n)
	}
	span := lastDone.Sub(firstQ)
	r := batchResult{rate: float64(n) / span.Seconds(), observed: float64(n) / end.Sub(firstQ).Seconds()}
	r.line = fmt.Sprintf("%d tasks, insert %.0f ms, notify +%.0f ms, first queued to last completed %.0f ms = %.0f tasks/s (observed done %.0f ms after the first queue time: %.0f tasks/s); per node: %s; %s",
		n, ms(lastQ.Sub(firstQ)), ms(notified.Sub(lastQ)), ms(span), r.rate, ms(end.Sub(firstQ)), r.observed, perNode,
		batchStats(b, pool, name+"-batches.txt", tc.taskCap, `
			SELECT server_node, start_time, 'claim', count(*) FROM tasks WHERE id > $1 GROUP BY 1, 2
			UNION ALL
			SELECT server_node, completed_time, 'finish', count(*) FROM tasks WHERE id > $1 GROUP BY 1, 2
			ORDER BY 2, 3`, prev))
	// Keep the completed tasks (emptying the table between batches made
	// River's next batch crawl; see docs/benchmarks.md), but clear the dead
	// row versions so that every batch starts alike.
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE tasks`); err != nil {
		b.Fatal(err)
	}
	return r
}

// batchStats reads the claims and finishes of one throughput batch (query
// returns node, time, "claim" or "finish", and the number of tasks: a claim
// or finish statement stamps all its tasks with one time), writes them to
// $BENCH_LOG_DIR as name, and summarizes them: per node the number of
// claims, their mean size and how many were full (taskCap), the number of
// finishes, and the mean and longest time from a finish to the node's next
// claim; and the longest time in which nothing was claimed or finished.
func batchStats(b *testing.B, pool *pgxpool.Pool, name string, taskCap int, query string, args ...any) string {
	b.Helper()
	rows, err := pool.Query(context.Background(), query, args...)
	if err != nil {
		b.Fatal(err)
	}
	type node struct {
		claims, full, claimed, finishes int
		lastFinish                      time.Time
		idle, maxIdle                   time.Duration
		idles                           int
	}
	nodes := map[string]*node{}
	var (
		lines    []string
		prev     time.Time
		stall    time.Duration
		stallAt  time.Time
		firstAt  time.Time
		numEvent int
	)
	for rows.Next() {
		var (
			who, kind string
			at        time.Time
			k         int
		)
		if err := rows.Scan(&who, &at, &kind, &k); err != nil {
			b.Fatal(err)
		}
		if firstAt.IsZero() {
			firstAt = at
		}
		numEvent++
		lines = append(lines, fmt.Sprintf("%.3f %s %s %d", ms(at.Sub(firstAt)), who, kind, k))
		if !prev.IsZero() && at.Sub(prev) > stall {
			stall, stallAt = at.Sub(prev), prev
		}
		prev = at
		nd := nodes[who]
		if nd == nil {
			nd = &node{}
			nodes[who] = nd
		}
		switch kind {
		case "claim":
			nd.claims++
			nd.claimed += k
			if k == taskCap {
				nd.full++
			}
			if !nd.lastFinish.IsZero() {
				d := at.Sub(nd.lastFinish)
				nd.idle += d
				nd.idles++
				nd.maxIdle = max(nd.maxIdle, d)
				nd.lastFinish = time.Time{}
			}
		case "finish":
			nd.finishes++
			nd.lastFinish = at
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	keepLog(b, name, "ms_since_first who event tasks\n"+strings.Join(lines, "\n")+"\n")
	var names []string
	for who := range nodes {
		names = append(names, who)
	}
	sort.Strings(names)
	var parts []string
	for _, who := range names {
		nd := nodes[who]
		part := fmt.Sprintf("%s: %d claims (mean %.1f, %d full)", who, nd.claims, float64(nd.claimed)/float64(max(nd.claims, 1)), nd.full)
		if nd.finishes > 0 {
			part += fmt.Sprintf(", %d finishes", nd.finishes)
		}
		if nd.idles > 0 {
			part += fmt.Sprintf(", finish to next claim mean %.2f ms, max %.1f ms", ms(nd.idle/time.Duration(nd.idles)), ms(nd.maxIdle))
		}
		parts = append(parts, part)
	}
	return fmt.Sprintf("%s; longest pause without a claim or finish %.1f ms at +%.0f ms", strings.Join(parts, "; "), ms(stall), ms(stallAt.Sub(firstAt)))
}

// reportRates reports the median and lowest rate by the database's times
// and the median observed rate.
func reportRates(b *testing.B, unit string, rates, observed []float64) {
	b.Helper()
	if len(rates) == 0 {
		return
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(medianF(rates), "median_"+unit)
	b.ReportMetric(slices.Min(rates), "lowest_"+unit)
	b.ReportMetric(medianF(observed), "median_observed_"+unit)
}

// BenchmarkTaskTakeoverSIGKILL measures, on three nodes, the time from a
// SIGKILL of the node running a Wait task (resumable, 600 s) to the first
// poll (every 2 ms, of the database) that sees the task Executing on another
// node: at the default stale timeout of 10 s, and at 5 s and 3 s (set with
// PUT /api/cluster; the heartbeat stays 1 s). One iteration queues a Wait
// task through a random node, waits until it executes, waits a random time
// within one heartbeat, kills its node, measures, cancels the task and
// restarts the killed node after another random wait. It also logs, from
// the database's and the leader's times, what the takeover was made of: the
// age of the node's last check-in at the kill, then the stale timeout, then
// the wait for the leader's sweep, then the claim.
func BenchmarkTaskTakeoverSIGKILL(b *testing.B) {
	for _, stale := range []time.Duration{10 * time.Second, 5 * time.Second, 3 * time.Second} {
		b.Run("stale="+stale.String(), func(b *testing.B) { benchmarkTakeover(b, stale) })
	}
}

// takeoverLine matches the leader's log line of a takeover.
var takeoverLine = regexp.MustCompile(`(?m)^time=(\S+) level=WARN msg="took over a task of an offline node" task=(\S+) node=(\S+)`)

// takeoverLogged returns when a node's log says it took task over from node.
func takeoverLogged(c *testcluster.Cluster, task, node string) (time.Time, string, bool) {
	for _, n := range c.Nodes {
		for _, m := range takeoverLine.FindAllStringSubmatch(n.Log(), -1) {
			if m[2] == task && m[3] == node {
				t, err := time.Parse(time.RFC3339Nano, m[1])
				return t, n.Config.Name, err == nil
			}
		}
	}
	return time.Time{}, "", false
}

func benchmarkTakeover(b *testing.B, stale time.Duration) {
	c := newTaskCluster(b, 3)
	steadyLeader(b, c)
	pool := openPool(b, c.DB)
	ctx := context.Background()
	if stale != 10*time.Second {
		if _, err := c.Nodes[0].Client.UpdateCluster(ctx, 0, stale); err != nil {
			b.Fatal(err)
		}
	}
	cl, err := c.Nodes[0].Client.Cluster(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if cl.StaleTimeoutSeconds != stale.Seconds() || cl.HeartbeatFrequencySeconds != 1 {
		b.Fatalf("cluster settings: heartbeat %v s, stale timeout %v s; want 1 s and %v", cl.HeartbeatFrequencySeconds, cl.StaleTimeoutSeconds, stale)
	}
	time.Sleep(2 * time.Second) // every node reloads the settings at its next check-in
	waitTasksDone(b, pool, 0, 20*time.Millisecond, 60*time.Second)
	const heartbeat = time.Second
	var (
		s                                  samples
		ages, afterOffline, sweeps, claims samples
		runs                               runLog
	)
	run := 0
	for b.Loop() {
		run++
		leader, _, _ := steadyLeader(b, c)
		via := c.Nodes[rand.N(len(c.Nodes))]
		t, err := via.Client.CreateTask(ctx, "Wait", map[string]any{"Seconds": 600})
		if err != nil {
			b.Fatal(err)
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(t.Id, "ServerTasks-"), 10, 64)
		if err != nil {
			b.Fatalf("task id %q: %v", t.Id, err)
		}
		var (
			owner string
			epoch int64
		)
		testcluster.Eventually(b, 10*time.Second, func() error {
			var state string
			if err := pool.QueryRow(ctx, `SELECT state, server_node, epoch FROM tasks WHERE id = $1`, id).Scan(&state, &owner, &epoch); err != nil {
				return err
			}
			if state != "Executing" {
				return fmt.Errorf("task %s is %s", t.Id, state)
			}
			return nil
		})
		var x *testcluster.Node
		for _, n := range c.Nodes {
			if n.Config.Name == owner {
				x = n
			}
		}
		if x == nil {
			b.Fatalf("task %s executes on %q, which is no node of the cluster", t.Id, owner)
		}
		randomPhase(heartbeat) // the killed node checks in every heartbeat
		t0 := time.Now()
		if err := x.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		var (
			newOwner string
			newEpoch int64
			claimAt  time.Time
			t1       time.Time
		)
		deadline := t0.Add(stale + 60*time.Second)
		for {
			var state string
			if err := pool.QueryRow(ctx, `SELECT state, server_node, epoch, last_updated_time FROM tasks WHERE id = $1`, id).
				Scan(&state, &newOwner, &newEpoch, &claimAt); err != nil {
				b.Fatal(err)
			}
			if state == "Executing" && newOwner != owner {
				t1 = time.Now()
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("task %s was not taken over within %v of the SIGKILL of %s (now %s on %q)", t.Id, deadline.Sub(t0), owner, state, newOwner)
			}
			time.Sleep(pollInterval)
		}
		var lastSeen time.Time
		if err := pool.QueryRow(ctx, `SELECT last_seen FROM nodes WHERE name = $1`, owner).Scan(&lastSeen); err != nil {
			b.Fatal(err)
		}
		d := t1.Sub(t0)
		s = append(s, d)
		// The database runs on this machine: its clock_timestamp() and
		// time.Now() read the same clock.
		age := t0.Sub(lastSeen)
		offlineAt := lastSeen.Add(stale)
		ages, afterOffline = append(ages, age), append(afterOffline, claimAt.Sub(offlineAt))
		detail := fmt.Sprintf("last check-in %.0f ms before the kill, offline at kill+%.0f ms, claimed at kill+%.0f ms (%.0f ms after offline)",
			ms(age), ms(offlineAt.Sub(t0)), ms(claimAt.Sub(t0)), ms(claimAt.Sub(offlineAt)))
		if at, by, ok := takeoverLogged(c, t.Id, owner); ok {
			sweeps, claims = append(sweeps, at.Sub(offlineAt)), append(claims, claimAt.Sub(at))
			detail += fmt.Sprintf("; %s's sweep took it over at kill+%.0f ms (%.0f ms after offline), claim %.1f ms later", by, ms(at.Sub(t0)), ms(at.Sub(offlineAt)), ms(claimAt.Sub(at)))
		}
		runs.add("run %d: %s on %s%s (epoch %d), SIGKILL; executing on %s (epoch %d) after %.1f ms: %s",
			run, t.Id, owner, leaderMark(x == leader), epoch, newOwner, newEpoch, ms(d), detail)

		var live *testcluster.Node
		for _, n := range c.Nodes {
			if n != x {
				live = n
				break
			}
		}
		if _, err := live.Client.CancelTask(ctx, t.Id); err != nil {
			b.Fatal(err)
		}
		testcluster.Eventually(b, 10*time.Second, func() error {
			var state string
			if err := pool.QueryRow(ctx, `SELECT state FROM tasks WHERE id = $1`, id).Scan(&state); err != nil {
				return err
			}
			if state != "Canceled" {
				return fmt.Errorf("task %s is %s after its cancellation", t.Id, state)
			}
			return nil
		})
		x.Wait(10 * time.Second)
		randomPhase(heartbeat)
		if err := x.Start(); err != nil {
			b.Fatal(err)
		}
		if err := x.WaitServing(30 * time.Second); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runs.flush(b)
	s.report(b)
	if len(ages) > 0 {
		b.Logf("medians: last check-in age at the kill %.0f ms; claim after the offline moment %.0f ms", ms(ages.median()), ms(afterOffline.median()))
		b.ReportMetric(ms(afterOffline.median()), "median_after_offline_ms")
	}
	if len(sweeps) > 0 {
		b.Logf("medians: sweep after the offline moment %.0f ms; claim after the sweep %.1f ms (%d runs with the leader's log line)",
			ms(sweeps.median()), ms(claims.median()), len(sweeps))
	}
}

func leaderMark(leader bool) string {
	if leader {
		return " (the leader)"
	}
	return ""
}
