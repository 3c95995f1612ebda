package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/cuttledeploy/cuttle/testcluster"
)

// River's side of the task benchmarks (tasks_test.go): bench/cmd/riverjobs
// processes work no-op jobs; this process inserts them with an insert-only
// River client.

// riverNoop is the job riverjobs works: kind "noop", arguments {}.
type riverNoop struct{}

func (riverNoop) Kind() string { return "noop" }

// riverJobs is a database with River's schema, procs riverjobs processes
// working it, and an insert-only client of this process.
type riverJobs struct {
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
	params []river.InsertManyParams // the last batch's, reused
}

// newRiverJobs makes a fresh database of the shared PostgreSQL, runs River's
// migrations on it, and starts procs riverjobs processes (river-a, river-b,
// ...) with the given workers each and FetchCooldown (0: River's default).
// The insert client has the same FetchCooldown, which River also uses to
// limit its insert notifications (at most one per queue per cooldown).
//
// label, if not empty, prefixes the names of the processes' logs.
func newRiverJobs(b *testing.B, label string, procs, workers int, cooldown time.Duration) *riverJobs {
	b.Helper()
	bin := buildCommand(b, "riverjobs")
	db := testcluster.SharedPostgres(b).NewDatabase(b)
	if out, err := exec.Command(bin, "-db", db, "-migrate", "-log-level", "warn").CombinedOutput(); err != nil {
		b.Fatalf("riverjobs -migrate: %v\n%s", err, out)
	}
	dir := b.TempDir()
	var started []*riverProc
	for i := range procs {
		id := "river-" + string(rune('a'+i))
		logPath := filepath.Join(dir, id+".log")
		p := &riverProc{id: id, bin: bin, db: db, logPath: logPath}
		if err := startRiverJobsProc(p, "-workers", strconv.Itoa(workers), "-fetch-cooldown", cooldown.String()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			p.signal(syscall.SIGTERM)
			if err := p.wait(30 * time.Second); err != nil {
				b.Logf("%s: %v", id, err)
				p.kill()
			}
			log, _ := os.ReadFile(logPath)
			keepLog(b, label+id+".log", string(log))
			if b.Failed() {
				b.Logf("log of %s:\n%s", id, tailLines(string(log), 40))
			}
		})
		started = append(started, p)
	}
	for _, p := range started {
		if err := p.waitReady(30 * time.Second); err != nil {
			b.Fatal(err)
		}
	}
	pool := openPool(b, db)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{FetchCooldown: cooldown})
	if err != nil {
		b.Fatal(err)
	}
	return &riverJobs{pool: pool, client: client}
}

// startRiverJobsProc starts p as a riverjobs process with further flags,
// the way riverProc.start starts a riverleader.
func startRiverJobsProc(p *riverProc, args ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.ready, p.exited, p.err = make(chan struct{}), make(chan struct{}), nil
	cmd := exec.Command(p.bin, append([]string{"-db", p.db, "-id", p.id}, args...)...)
	cmd.Stdout = &readyWriter{f: logf, ready: p.ready}
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	p.cmd = cmd
	exited := p.exited
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

func (r *riverJobs) maxJobID(b *testing.B) int64 {
	b.Helper()
	var id int64
	if err := r.pool.QueryRow(context.Background(), `SELECT coalesce(max(id), 0) FROM river_job`).Scan(&id); err != nil {
		b.Fatal(err)
	}
	return id
}

// waitDone polls every interval until no job above after is available or
// running, and returns the database's clock at the poll that saw it.
func (r *riverJobs) waitDone(b *testing.B, after int64, interval, timeout time.Duration) time.Time {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		var (
			active bool
			at     time.Time
		)
		if err := r.pool.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM river_job WHERE state IN ('available', 'running', 'retryable', 'pending', 'scheduled') AND id > $1),
				clock_timestamp()`, after).Scan(&active, &at); err != nil {
			b.Fatalf("waiting for the River jobs after id %d to complete: %v", after, err)
		}
		if !active {
			return at
		}
		time.Sleep(interval)
	}
}

// riverFetch names a FetchCooldown in sub-benchmark names.
func riverFetch(cooldown time.Duration) string {
	if cooldown == 0 {
		return "fetch=default"
	}
	return "fetch=cooldown" + cooldown.String()
}

// BenchmarkRiverPickupLatency is the anchor of BenchmarkTaskPickupLatency:
// three riverjobs processes with 20 workers each (workers=20, the anchor) or
// 5 (workers=5, as cuttle's default task cap), with River's default fetch
// settings (FetchCooldown 100 ms, FetchPollInterval 1 s) or with
// FetchCooldown 2 ms; one iteration inserts one no-op job with
// client.Insert, then pauses as in BenchmarkTaskPickupLatency. The pickup
// is river_job.created_at to attempted_at (both now() of their
// transactions).
func BenchmarkRiverPickupLatency(b *testing.B) {
	for _, gap := range pickupGaps {
		for _, workers := range []int{20, 5} {
			for _, cooldown := range []time.Duration{0, 2 * time.Millisecond} {
				name := fmt.Sprintf("%s/workers=%d/%s", gap, workers, riverFetch(cooldown))
				b.Run(name, func(b *testing.B) { benchmarkRiverPickup(b, workers, cooldown, gap) })
			}
		}
	}
}

func benchmarkRiverPickup(b *testing.B, workers int, cooldown time.Duration, gap gapRange) {
	r := newRiverJobs(b, "", 3, workers, cooldown)
	time.Sleep(3 * time.Second) // elections and River's maintenance services start
	first := r.maxJobID(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := r.client.Insert(ctx, riverNoop{}, nil); err != nil {
			b.Fatal(err)
		}
		time.Sleep(gap.next())
	}
	b.StopTimer()
	r.waitDone(b, first, 20*time.Millisecond, 60*time.Second)
	rows, err := r.pool.Query(ctx, `
		SELECT id, coalesce(attempted_by[array_length(attempted_by, 1)], ''), state::text,
			(extract(epoch FROM attempted_at - created_at) * 1e6)::bigint
		FROM river_job WHERE id > $1 ORDER BY id`, first)
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
		if state != "completed" {
			b.Errorf("job %d ended %s", p.id, state)
		}
		p.latency = time.Duration(us) * time.Microsecond
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(ps) != b.N {
		b.Fatalf("%d jobs were inserted, %d found", b.N, len(ps))
	}
	reportPickups(b, ps)
}

// BenchmarkRiverThroughput is the anchor of BenchmarkTaskThroughput: procs
// riverjobs processes with 20 workers each, with River's default fetch
// settings, with FetchCooldown 2 ms and (three processes only) with River's
// minimum FetchCooldown of 1 ms; one iteration inserts 20,000 no-op
// jobs with one client.InsertMany (one INSERT and one notification in one
// transaction) and reports jobs per second from the first created_at (now()
// of the inserting transaction) to the last finalized_at (the worker's clock
// when the job ended; River writes completions in batches, up to 250 ms
// later), and up to the first poll (every 10 ms) that found no job left
// available or running. Between iterations it vacuums the table; the
// completed jobs stay, as they would for 24 h.
func BenchmarkRiverThroughput(b *testing.B) {
	for _, procs := range []int{3, 2} {
		cooldowns := []time.Duration{0, 2 * time.Millisecond}
		if procs == 3 {
			cooldowns = append(cooldowns, time.Millisecond) // River's minimum
		}
		for _, cooldown := range cooldowns {
			b.Run(fmt.Sprintf("procs=%d,%s", procs, riverFetch(cooldown)), func(b *testing.B) {
				benchmarkRiverThroughput(b, procs, cooldown)
			})
		}
	}
}

func benchmarkRiverThroughput(b *testing.B, procs int, cooldown time.Duration) {
	r := newRiverJobs(b, "", procs, 20, cooldown)
	time.Sleep(3 * time.Second)
	n := throughputTasks(b)
	var (
		rates, observed []float64
		runs            runLog
	)
	run := 0
	for b.Loop() {
		run++
		randomPhase(time.Second) // River's fetch poll interval
		res := r.batch(b, n, fmt.Sprintf("run%d", run))
		rates, observed = append(rates, res.rate), append(observed, res.observed)
		runs.add("run %d: %s", run, res.line)
	}
	b.StopTimer()
	runs.flush(b)
	reportRates(b, "jobs/s", rates, observed)
}

// batch inserts n no-op jobs with one InsertMany, waits until all have
// completed, and measures them; name prefixes the batch's log file. It
// vacuums the table afterwards.
func (r *riverJobs) batch(b *testing.B, n int, name string) batchResult {
	b.Helper()
	ctx := context.Background()
	if len(r.params) != n {
		r.params = make([]river.InsertManyParams, n)
		for i := range r.params {
			r.params[i] = river.InsertManyParams{Args: riverNoop{}}
		}
	}
	prev := r.maxJobID(b)
	t0 := time.Now()
	res, err := r.client.InsertMany(ctx, r.params)
	if err != nil {
		b.Fatal(err)
	}
	insert := time.Since(t0)
	if len(res) != n {
		b.Fatalf("inserted %d jobs, want %d", len(res), n)
	}
	end := r.waitDone(b, prev, throughputPoll, 10*time.Minute)
	var (
		firstC, lastDone time.Time
		completed        int
		perClient        string
	)
	if err := r.pool.QueryRow(ctx, `
		SELECT min(created_at), max(finalized_at), count(*) FILTER (WHERE state = 'completed'),
			(SELECT string_agg(c || ' ' || k, ', ' ORDER BY c)
			 FROM (SELECT attempted_by[1] AS c, count(*) AS k FROM river_job WHERE id > $1 GROUP BY 1) s)
		FROM river_job WHERE id > $1`, prev).Scan(&firstC, &lastDone, &completed, &perClient); err != nil {
		b.Fatal(err)
	}
	if completed != n {
		b.Fatalf("%s: %d of %d jobs completed", name, completed, n)
	}
	span := lastDone.Sub(firstC)
	out := batchResult{rate: float64(n) / span.Seconds(), observed: float64(n) / end.Sub(firstC).Seconds()}
	out.line = fmt.Sprintf("%d jobs, InsertMany %.0f ms, first created to last finalized %.0f ms = %.0f jobs/s (observed done %.0f ms after the first created_at: %.0f jobs/s); per client: %s; %s",
		n, ms(insert), ms(span), out.rate, ms(end.Sub(firstC)), out.observed, perClient,
		batchStats(b, r.pool, name+"-batches.txt", 20, `
			SELECT attempted_by[1], attempted_at, 'claim', count(*) FROM river_job WHERE id > $1 GROUP BY 1, 2 ORDER BY 2`, prev))
	// As for cuttle: keep the completed jobs (River keeps them for 24 h),
	// clear the dead row versions.
	if _, err := r.pool.Exec(ctx, `VACUUM ANALYZE river_job`); err != nil {
		b.Fatal(err)
	}
	return out
}

// BenchmarkThroughputPaired runs, in every iteration, one throughput batch
// (20,000 no-ops, as BenchmarkTaskThroughput and BenchmarkRiverThroughput)
// on each of: cuttle (three nodes, task cap 20, default settings), River
// (three processes of 20 workers) with FetchCooldown 2 ms, and River with
// FetchCooldown 1 ms, all running on the same PostgreSQL at once, in an
// order that rotates each iteration. Each system thus meets the same
// background load of the machine, which the separate benchmarks cannot
// promise on a shared machine. It reports each system's median rate, and
// the median over iterations of cuttle's rate divided by the better of the
// two River rates of the same iteration.
func BenchmarkThroughputPaired(b *testing.B) {
	tc := newTaskThroughput(b, 20)
	r2 := newRiverJobs(b, "cooldown2ms-", 3, 20, 2*time.Millisecond)
	r1 := newRiverJobs(b, "cooldown1ms-", 3, 20, time.Millisecond)
	time.Sleep(3 * time.Second)
	n := throughputTasks(b)
	systems := []struct {
		name string
		run  func(name string) batchResult
	}{
		{"cuttle", func(name string) batchResult { return tc.batch(b, n, name) }},
		{"river-cooldown2ms", func(name string) batchResult { return r2.batch(b, n, name) }},
		{"river-cooldown1ms", func(name string) batchResult { return r1.batch(b, n, name) }},
	}
	var (
		rates  = map[string][]float64{}
		ratios []float64
		wins   int
		runs   runLog
	)
	run := 0
	for b.Loop() {
		run++
		res := map[string]batchResult{}
		for k := range systems {
			s := systems[(run+k)%len(systems)]
			randomPhase(time.Second)
			r := s.run(fmt.Sprintf("run%d-%s", run, s.name))
			res[s.name] = r
			rates[s.name] = append(rates[s.name], r.rate)
			runs.add("run %d, %s: %s", run, s.name, r.line)
		}
		best := max(res["river-cooldown2ms"].rate, res["river-cooldown1ms"].rate)
		ratio := res["cuttle"].rate / best
		ratios = append(ratios, ratio)
		if ratio >= 1 {
			wins++
		}
		runs.add("run %d: cuttle %.0f tasks/s, River %.0f (2 ms) and %.0f (1 ms) jobs/s: cuttle/River's best %.2f",
			run, res["cuttle"].rate, res["river-cooldown2ms"].rate, res["river-cooldown1ms"].rate, ratio)
	}
	b.StopTimer()
	runs.flush(b)
	if len(ratios) == 0 {
		return
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(medianF(rates["cuttle"]), "median_cuttle_tasks/s")
	b.ReportMetric(medianF(rates["river-cooldown2ms"]), "median_river2ms_jobs/s")
	b.ReportMetric(medianF(rates["river-cooldown1ms"]), "median_river1ms_jobs/s")
	b.ReportMetric(medianF(ratios), "median_cuttle/river_best")
	b.ReportMetric(float64(wins), "cuttle_wins")
}
