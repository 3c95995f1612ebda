package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// The deployment benchmarks (issue 10): the overhead of a deployment over
// its scripts, a rolling deployment's waves against the ideal, how long a
// deployment takes to continue after its node is SIGKILLed, and a
// deployment over 1,000 targets. A deployment is driven as a user drives
// it, through a node's API: a project and its process, then for each
// iteration a new release of it (1.0.1, 1.0.2, ...) deployed to the
// agents' environment. Times come from the database (tasks.queue_time,
// start_time, completed_time and commands.created_at, dispatched_at,
// finished_at: clock_timestamp()), from the deployment's checkpoint (each
// action's Started and Ended, by the node's clock), from the agents'
// journals and from the task log's lines (the node's clock): everything
// runs on this machine, so that is one clock.

// deployEnvironment is the environment of the agents: simagents' default
// (-environment), and the real agents' of BenchmarkDeployFailover.
const deployEnvironment = "Sim"

// scriptStep is a deployment step with one Bash script action named like
// the step. With role empty the action runs on the node (RunOnServer), so
// the step has the server as its one target; otherwise it runs on the
// targets of role, at most window at once (0: the default window,
// deploy.DefaultWindow).
func scriptStep(name, role string, window int, body string) map[string]any {
	actionProps := map[string]string{"Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": body}
	stepProps := map[string]string{}
	if role == "" {
		actionProps["Octopus.Action.RunOnServer"] = "True"
	} else {
		stepProps["Octopus.Action.TargetRoles"] = role
	}
	if window > 0 {
		stepProps["Octopus.Action.MaxParallelism"] = strconv.Itoa(window)
	}
	return map[string]any{"Name": name, "Properties": stepProps,
		"Actions": []any{map[string]any{"Name": name, "ActionType": "Octopus.Script", "Properties": actionProps}}}
}

// deployProject is a project with its deployment process, deployed to
// deployEnvironment with a new release each time.
type deployProject struct {
	name     string
	releases int
}

// newDeployProject creates the project name with the steps as its process
// through cl.
func newDeployProject(b *testing.B, cl *client.Client, name string, steps ...map[string]any) *deployProject {
	b.Helper()
	ctx := context.Background()
	var p struct{ Id string }
	if err := cl.Do(ctx, http.MethodPost, "/api/Spaces-1/projects",
		map[string]any{"Name": name, "LifecycleId": "Lifecycles-1", "ProjectGroupId": "ProjectGroups-1"}, &p); err != nil {
		b.Fatalf("creating the project %s: %v", name, err)
	}
	if err := cl.Do(ctx, http.MethodPut, "/api/Spaces-1/projects/"+p.Id+"/deploymentprocesses", map[string]any{"Steps": steps}, nil); err != nil {
		b.Fatalf("setting the process of %s: %v", name, err)
	}
	return &deployProject{name: name}
}

// deploy creates the project's next release (1.0.1, 1.0.2, ...) and
// deploys it to deployEnvironment through cl; it returns the deployment's
// task id and number.
func (p *deployProject) deploy(b *testing.B, cl *client.Client) (string, int64) {
	b.Helper()
	ctx := context.Background()
	p.releases++
	version := "1.0." + strconv.Itoa(p.releases)
	if err := cl.Do(ctx, http.MethodPost, "/api/Spaces-1/releases/create/v1",
		map[string]any{"spaceId": "Spaces-1", "projectName": p.name, "releaseVersion": version}, nil); err != nil {
		b.Fatalf("creating release %s of %s: %v", version, p.name, err)
	}
	var out struct {
		DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
	}
	if err := cl.Do(ctx, http.MethodPost, "/api/Spaces-1/deployments/create/untenanted/v1",
		map[string]any{"spaceId": "Spaces-1", "projectName": p.name, "releaseVersion": version, "environmentNames": []string{deployEnvironment}}, &out); err != nil {
		b.Fatalf("deploying release %s of %s: %v", version, p.name, err)
	}
	if len(out.DeploymentServerTasks) != 1 {
		b.Fatalf("deployments/create/untenanted/v1 answered %+v", out)
	}
	task := out.DeploymentServerTasks[0].ServerTaskId
	return task, testcluster.TaskNumber(b, task)
}

// deployCheckpoint is what the benchmarks read of a Deploy task's
// checkpoint (package deploy's progress): every action on every target of
// every step, with its state and times.
type deployCheckpoint struct {
	Steps []struct {
		Name    string
		Targets []struct {
			MachineID int64
			Actions   []struct {
				Name, State    string
				Started, Ended *time.Time
			}
		}
	}
}

// span returns when step i's first action started and its last ended
// (zero times if none did).
func (c deployCheckpoint) span(i int) (start, end time.Time) {
	if i >= len(c.Steps) {
		return
	}
	for _, t := range c.Steps[i].Targets {
		for _, a := range t.Actions {
			if a.Started != nil && (start.IsZero() || a.Started.Before(start)) {
				start = *a.Started
			}
			if a.Ended != nil && a.Ended.After(end) {
				end = *a.Ended
			}
		}
	}
	return start, end
}

// unfinished lists the actions the checkpoint does not record as
// succeeded, as "step / machine id / action: state".
func (c deployCheckpoint) unfinished() []string {
	var out []string
	for _, s := range c.Steps {
		for _, t := range s.Targets {
			for _, a := range t.Actions {
				if a.State != "Succeeded" {
					out = append(out, fmt.Sprintf("%s / %d / %s: %s", s.Name, t.MachineID, a.Name, a.State))
				}
			}
		}
	}
	return out
}

// deployCommand is one agent command of a deployment.
type deployCommand struct {
	machineID                     int64
	machine, uid, state           string
	created, dispatched, finished time.Time
}

// deployRun is a deployment's task and commands as the database has them
// once the task has ended.
type deployRun struct {
	id                         int64
	state, node                string
	epoch                      int64
	queued, started, completed time.Time
	checkpoint                 deployCheckpoint
	checkpointBytes            int
	commands                   []deployCommand // in the order they were created
}

// readDeployRun reads the ended deployment task id and its commands.
func readDeployRun(b *testing.B, pool *pgxpool.Pool, id int64) deployRun {
	b.Helper()
	ctx := context.Background()
	r := deployRun{id: id}
	var (
		cp        []byte
		completed *time.Time
	)
	if err := pool.QueryRow(ctx, `
		SELECT state, server_node, epoch, queue_time, start_time, completed_time, coalesce(checkpoint::text, '')
		FROM tasks WHERE id = $1`, id).Scan(&r.state, &r.node, &r.epoch, &r.queued, &r.started, &completed, &cp); err != nil {
		b.Fatal(err)
	}
	if completed == nil {
		b.Fatalf("ServerTasks-%d is %s, not ended", id, r.state)
	}
	r.completed, r.checkpointBytes = *completed, len(cp)
	if len(cp) > 0 {
		if err := json.Unmarshal(cp, &r.checkpoint); err != nil {
			b.Fatalf("the checkpoint of ServerTasks-%d: %v", id, err)
		}
	}
	rows, err := pool.Query(ctx, `
		SELECT c.machine_id, m.name, c.uid, c.state, c.created_at, coalesce(c.dispatched_at, c.created_at), coalesce(c.finished_at, c.created_at)
		FROM commands c JOIN machines m ON m.id = c.machine_id WHERE c.task_id = $1 ORDER BY c.created_at, c.id`, id)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var c deployCommand
		if err := rows.Scan(&c.machineID, &c.machine, &c.uid, &c.state, &c.created, &c.dispatched, &c.finished); err != nil {
			b.Fatal(err)
		}
		r.commands = append(r.commands, c)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return r
}

// check fails the benchmark unless the deployment succeeded with one
// succeeded command per target (targets of them); it returns the actions
// its final checkpoint does not record as succeeded (see unfinished).
func (r deployRun) check(b *testing.B, targets int) []string {
	b.Helper()
	ok := 0
	for _, c := range r.commands {
		if c.state == string(cuttle.CommandSuccess) {
			ok++
		}
	}
	if r.state != string(cuttle.TaskSuccess) || len(r.commands) != targets || ok != targets {
		b.Fatalf("ServerTasks-%d ended %s with %d of %d commands succeeded, want %d", r.id, r.state, ok, len(r.commands), targets)
	}
	return r.checkpoint.unfinished()
}

// total is the deployment's time from its queueing to its completion.
func (r deployRun) total() time.Duration { return r.completed.Sub(r.queued) }

// commandSpan returns the first created_at, the last created_at, the first
// dispatched_at and the last finished_at of the commands.
func (r deployRun) commandSpan() (firstCreated, lastCreated, firstDispatched, lastFinished time.Time) {
	for i, c := range r.commands {
		if i == 0 || c.created.Before(firstCreated) {
			firstCreated = c.created
		}
		if c.created.After(lastCreated) {
			lastCreated = c.created
		}
		if i == 0 || c.dispatched.Before(firstDispatched) {
			firstDispatched = c.dispatched
		}
		if c.finished.After(lastFinished) {
			lastFinished = c.finished
		}
	}
	return
}

// perCommand returns, over the commands, the median time from created_at
// to finished_at less script (the part that is not the script), and the
// targets worked on at once: their summed created_at to finished_at over
// the span from the first created_at to the last finished_at.
func (r deployRun) perCommand(script time.Duration) (overhead time.Duration, atOnce float64) {
	var s samples
	var busy time.Duration
	for _, c := range r.commands {
		s = append(s, c.finished.Sub(c.created)-script)
		busy += c.finished.Sub(c.created)
	}
	first, _, _, last := r.commandSpan()
	return s.median(), float64(busy) / float64(last.Sub(first))
}

// startToCommand returns, for each command, the time from the start of
// its target's first action of step i (the checkpoint's Started, stamped
// when the action is set running, before that is saved) to the command's
// created_at (a single 0 if the checkpoint records no start); and the
// spread of those starts (the first to the last).
func (r deployRun) startToCommand(i int) (toCreated samples, startSpread time.Duration) {
	if i >= len(r.checkpoint.Steps) {
		return nil, 0
	}
	started := map[int64]time.Time{}
	var first, last time.Time
	for _, t := range r.checkpoint.Steps[i].Targets {
		if len(t.Actions) == 0 || t.Actions[0].Started == nil {
			continue
		}
		at := *t.Actions[0].Started
		started[t.MachineID] = at
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	for _, c := range r.commands {
		if at, ok := started[c.machineID]; ok {
			toCreated = append(toCreated, c.created.Sub(at))
		}
	}
	if len(toCreated) == 0 { // no start recorded: nothing to say
		toCreated = samples{0}
	}
	return toCreated, last.Sub(first)
}

// meterDeployCPU starts measuring the CPU use of the node, the simulators
// and the cluster's PostgreSQL server (dbPids), and of the machine.
func (l *agentLoad) meterDeployCPU(b *testing.B) *cpuMeter {
	b.Helper()
	return meterCPU(b, []string{"node", "sim", "db"}, [][]int{{l.node.Pid()}, l.simPids(), dbPids(b, l.pool)})
}

// dbPids returns the long-lived processes of the PostgreSQL server of
// pool: its postmaster and what pg_stat_activity lists but autovacuum and
// parallel workers, which come and go. (postgresPids takes every postgres
// process of the machine, other servers' too, and a meter fails when one
// of them exits while it measures.)
func dbPids(b *testing.B, pool *pgxpool.Pool) []int {
	b.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `
		SELECT pid FROM pg_stat_activity WHERE backend_type NOT IN ('autovacuum worker', 'parallel worker')
		UNION SELECT pg_backend_pid()`)
	if err != nil {
		b.Fatal(err)
	}
	var pids []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			b.Fatal(err)
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	// The postmaster is every backend's parent: field 4 of /proc/<pid>/stat.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pids[0]))
	if err != nil {
		b.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	if f := strings.Fields(rest); len(f) > 1 {
		if ppid, err := strconv.Atoi(f[1]); err == nil && !slices.Contains(pids, ppid) {
			pids = append(pids, ppid)
		}
	}
	return pids
}

// noteUnfinished logs a deployment whose final checkpoint does not say
// that every action succeeded (a task that succeeded), and counts it.
func noteUnfinished(b *testing.B, task string, unfinished []string, count *int) string {
	if len(unfinished) == 0 {
		return ""
	}
	*count++
	shown := unfinished[:min(5, len(unfinished))]
	b.Logf("%s succeeded, but its final checkpoint records %d action(s) as not succeeded: %s", task, len(unfinished), strings.Join(shown, "; "))
	return fmt.Sprintf("; FINAL CHECKPOINT: %d action(s) not Succeeded", len(unfinished))
}

// BenchmarkDeployOverhead measures the overhead of a deployment over its
// scripts: a process of three steps, a script `true` on the node, `sleep 1`
// on every one of agents=N simulated agents at once (MaxParallelism N),
// and `true` on the node again, deployed to one node (PostgreSQL, default
// settings) with N agents (newAgentLoad). One iteration creates a release,
// deploys it, waits until its task has ended and pauses 0–1 s. The figure
// is the task's queue_time to completed_time less the longest script path
// (the 1 s sleep; the two `true` are counted as overhead). It reports the
// overhead's median, best and worst (median_ms, best_ms, worst_ms), the
// median of the whole (median_total_ms); the medians of the time to the first
// command handed out (the first dispatched_at), from the last command's
// result stored (the last finished_at) to the task's completion, of the
// spread of the commands' creation (the first created_at to the last), of
// one target's command less its second (created_at to finished_at less
// 1 s); and the CPU use. Each iteration's line breaks its time down, from
// the database's times and the checkpoint's (each action's start and
// end).
func BenchmarkDeployOverhead(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run("agents="+strconv.Itoa(n), func(b *testing.B) { benchmarkDeployOverhead(b, n) })
	}
}

func benchmarkDeployOverhead(b *testing.B, n int) {
	const role, script = "overhead", time.Second
	l := newAgentLoad(b, n, role)
	p := newDeployProject(b, l.node.Client, "Overhead",
		scriptStep("Before", "", 0, "true"),
		scriptStep("Deploy", role, n, "sleep 1"),
		scriptStep("After", "", 0, "true"))
	var (
		total, overhead, toDispatch, afterLast, createSpread, perTarget, toAgent samples
		runs                                                                     runLog
		cpuUse                                                                   cpuSeries
		unfinished                                                               int
	)
	for b.Loop() {
		cpu := l.meterDeployCPU(b)
		task, id := p.deploy(b, l.node.Client)
		waitTasksDone(b, l.pool, id-1, 10*time.Millisecond, 5*time.Minute)
		cpuLine := cpuUse.add(b, cpu)
		r := readDeployRun(b, l.pool, id)
		bad := noteUnfinished(b, task, r.check(b, n), &unfinished)
		firstCreated, lastCreated, firstDispatched, lastFinished := r.commandSpan()
		beforeStart, beforeEnd := r.checkpoint.span(0)
		deployStart, deployEnd := r.checkpoint.span(1)
		afterStart, afterEnd := r.checkpoint.span(2)
		// The agents' side: when each journaled its command (just before
		// it started the script), by its own clock.
		var journal samples
		var lastJournaled time.Time
		for _, c := range r.commands {
			at, err := l.journaledAt(c.machine, c.uid)
			if err != nil {
				b.Fatal(err)
			}
			journal = append(journal, at.Sub(c.dispatched))
			if at.After(lastJournaled) {
				lastJournaled = at
			}
		}
		o := r.total() - script
		oh, atOnce := r.perCommand(script)
		toCreated, startSpread := r.startToCommand(1)
		total = append(total, r.total())
		overhead, toDispatch, afterLast = append(overhead, o), append(toDispatch, firstDispatched.Sub(r.queued)), append(afterLast, r.completed.Sub(lastFinished))
		createSpread, perTarget, toAgent = append(createSpread, lastCreated.Sub(firstCreated)), append(perTarget, oh), append(toAgent, journal.median())
		runs.add("%s: %.0f ms, overhead %.0f ms = claimed +%.0f, Before (node `true`) %.0f–%.0f (its script %.0f), "+
			"first command created +%.0f, handed out +%.0f, last created +%.0f, last journaled by its agent +%.0f, Deploy's actions %.0f–%.0f, "+
			"last result +%.0f, After %.0f–%.0f, completed +%.0f (last result to completed %.0f ms); "+
			"Deploy's %d actions set running within %.0f ms, each one's start to its command created %.0f ms median, %.0f ms at most; "+
			"one target's command %.0f ms + 1 s median (handed out to journaled %.1f ms median), %.1f targets at once; "+
			"checkpoint %d bytes; %s%s",
			task, ms(r.total()), ms(o), ms(r.started.Sub(r.queued)), ms(beforeStart.Sub(r.queued)), ms(beforeEnd.Sub(r.queued)), ms(beforeEnd.Sub(beforeStart)),
			ms(firstCreated.Sub(r.queued)), ms(firstDispatched.Sub(r.queued)), ms(lastCreated.Sub(r.queued)), ms(lastJournaled.Sub(r.queued)),
			ms(deployStart.Sub(r.queued)), ms(deployEnd.Sub(r.queued)),
			ms(lastFinished.Sub(r.queued)), ms(afterStart.Sub(r.queued)), ms(afterEnd.Sub(r.queued)), ms(r.total()), ms(r.completed.Sub(lastFinished)),
			len(toCreated), ms(startSpread), ms(toCreated.median()), ms(slices.Max(toCreated)),
			ms(oh), ms(journal.median()), atOnce, r.checkpointBytes, cpuLine, bad)
		randomPhase(time.Second)
	}
	b.StopTimer()
	runs.flush(b)
	overhead.report(b)
	b.ReportMetric(ms(total.median()), "median_total_ms")
	b.ReportMetric(ms(toDispatch.median()), "median_first_dispatch_ms")
	b.ReportMetric(ms(afterLast.median()), "median_last_result_to_end_ms")
	b.ReportMetric(ms(createSpread.median()), "median_create_spread_ms")
	b.ReportMetric(ms(perTarget.median()), "median_target_overhead_ms")
	b.ReportMetric(ms(toAgent.median()), "median_to_agent_ms")
	b.ReportMetric(float64(unfinished), "unfinished_checkpoints")
	cpuUse.report(b)
}

// rollingTargets and rollingWindow shape BenchmarkDeployRolling: 100
// targets, ten at a time.
const rollingTargets, rollingWindow = 100, 10

// BenchmarkDeployRolling measures a rolling deployment: one step, `sleep 1`
// on 100 simulated agents, at most 10 at once (MaxParallelism 10), on one
// node with the 100 agents (newAgentLoad). One iteration creates a
// release, deploys it, waits until its task has ended and pauses 0–1 s. It
// reports the task's queue_time to completed_time (median, best, worst),
// its ratio to the ideal of ten waves of one second (10 s), the median
// time in which a place of the window stood empty (a command's created_at
// after the result, finished_at, that freed its place: the k-th command
// created against the (k−10)-th result), the median of one target's
// command less its second, the targets worked on at once, and the CPU use.
func BenchmarkDeployRolling(b *testing.B) {
	const role, script = "rolling", time.Second
	ideal := time.Duration(rollingTargets/rollingWindow) * script
	l := newAgentLoad(b, rollingTargets, role)
	p := newDeployProject(b, l.node.Client, "Rolling", scriptStep("Roll", role, rollingWindow, "sleep 1"))
	var (
		total, refill, perTarget samples
		ratios, atOnce           []float64
		runs                     runLog
		cpuUse                   cpuSeries
		unfinished               int
	)
	for b.Loop() {
		cpu := l.meterDeployCPU(b)
		task, id := p.deploy(b, l.node.Client)
		waitTasksDone(b, l.pool, id-1, 10*time.Millisecond, 5*time.Minute)
		cpuLine := cpuUse.add(b, cpu)
		r := readDeployRun(b, l.pool, id)
		bad := noteUnfinished(b, task, r.check(b, rollingTargets), &unfinished)
		firstCreated, _, firstDispatched, lastFinished := r.commandSpan()
		finished := make([]time.Time, len(r.commands))
		for i, c := range r.commands {
			finished[i] = c.finished
		}
		slices.SortFunc(finished, func(x, y time.Time) int { return x.Compare(y) })
		var gaps samples
		for k := rollingWindow; k < len(r.commands); k++ {
			gaps = append(gaps, r.commands[k].created.Sub(finished[k-rollingWindow]))
		}
		oh, once := r.perCommand(script)
		toCreated, _ := r.startToCommand(0)
		total, refill, perTarget = append(total, r.total()), append(refill, gaps.median()), append(perTarget, oh)
		ratios, atOnce = append(ratios, float64(r.total())/float64(ideal)), append(atOnce, once)
		runs.add("%s: %.0f ms = %.3f × ideal (first command created +%.0f ms, handed out +%.0f ms, last result +%.0f ms, completed +%.0f ms); "+
			"a place empty %.1f ms median, %.1f ms at most; a target's start to its command created %.1f ms median; one target's command %.0f ms + 1 s median; %.2f targets at once; checkpoint %d bytes; %s%s",
			task, ms(r.total()), ratios[len(ratios)-1], ms(firstCreated.Sub(r.queued)), ms(firstDispatched.Sub(r.queued)),
			ms(lastFinished.Sub(r.queued)), ms(r.total()), ms(gaps.median()), ms(slices.Max(gaps)), ms(toCreated.median()), ms(oh), once, r.checkpointBytes, cpuLine, bad)
		randomPhase(time.Second)
	}
	b.StopTimer()
	runs.flush(b)
	total.report(b)
	b.ReportMetric(ms(ideal), "ideal_ms")
	b.ReportMetric(medianF(ratios), "median_ratio")
	b.ReportMetric(slices.Max(ratios), "worst_ratio")
	b.ReportMetric(ms(refill.median()), "median_refill_ms")
	b.ReportMetric(ms(perTarget.median()), "median_target_overhead_ms")
	b.ReportMetric(medianF(atOnce), "targets_at_once")
	b.ReportMetric(float64(unfinished), "unfinished_checkpoints")
	cpuUse.report(b)
}

// failoverAgents and failoverScript shape BenchmarkDeployFailover: a
// rolling step, one target at a time, of two seconds per target.
const (
	failoverAgents = 4
	failoverScript = "echo start; sleep 2; echo done"
)

// logLine is one line of a task log segment (package tasklog's format).
type logLine struct {
	Time time.Time `json:"t"`
	Text string    `json:"m"`
}

// findLogLine returns the first line of a task's log segments in the
// cluster's storage, at an epoch above after, whose text starts with
// prefix, and the epoch of its segment.
func findLogLine(storage string, task, after int64, prefix string) (logLine, int64, error) {
	dir := filepath.Join(storage, "tasklogs", strconv.FormatInt(task, 10))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return logLine{}, 0, err
	}
	for _, e := range entries { // in epoch order: the names are zero-padded
		epoch, err := strconv.ParseInt(strings.TrimSuffix(e.Name(), ".log"), 10, 64)
		if err != nil || epoch <= after {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return logLine{}, 0, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && strings.HasPrefix(l.Text, prefix) {
				f.Close()
				return l, epoch, nil
			}
		}
		f.Close()
	}
	return logLine{}, 0, fmt.Errorf("no line of ServerTasks-%d's log after epoch %d starts with %q", task, after, prefix)
}

// BenchmarkDeployFailover measures how long a deployment takes to continue
// after the node running it is SIGKILLed, with the default settings
// (heartbeat 1 s, stale timeout 10 s). Two nodes on PostgreSQL and four
// real `cuttle agent` processes, each polling both nodes (as an agent of a
// cluster does; a simulated agent polls one address, and would lose its
// node half the time); one rolling step, one target at a time, of a 2 s
// script per target. One iteration deploys a new release through a random
// node, waits until the second target's command has been handed out,
// waits a random 0–1 s (the killed node checks in every heartbeat), SIGKILLs
// the node running the deployment, waits until the deployment has
// succeeded, then restarts the killed node after another random 0–1 s. The
// figure is the time from just before the SIGKILL to the line "Resuming
// the deployment of ..." that the node taking it over writes in the task's
// log (its time, by that node's clock). It also reports the time to the
// next command created and handed out, and the share of the figure that is
// the stale timeout: the kill to the moment the database counts the node
// offline (its last check-in, nodes.last_seen, plus the stale timeout).
// Each iteration's line breaks it down: the last check-in's age at the
// kill, the offline moment, the leader's sweep that took the task over
// (its log line "took over a task of an offline node"), the resume, the
// next command.
func BenchmarkDeployFailover(b *testing.B) {
	const role = "failover"
	c := newTaskCluster(b, 2)
	steadyLeader(b, c)
	pool := openPool(b, c.DB)
	ctx := context.Background()
	cl, err := c.Nodes[0].Client.Cluster(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if cl.StaleTimeoutSeconds != 10 || cl.HeartbeatFrequencySeconds != 1 {
		b.Fatalf("cluster settings: heartbeat %v s, stale timeout %v s; want the defaults, 1 s and 10 s", cl.HeartbeatFrequencySeconds, cl.StaleTimeoutSeconds)
	}
	stale := time.Duration(cl.StaleTimeoutSeconds * float64(time.Second))
	var polls []string
	for _, n := range c.Nodes {
		polls = append(polls, "127.0.0.1:"+strconv.Itoa(n.PollingPort))
	}
	for i := 1; i <= failoverAgents; i++ {
		a := testcluster.StartAgent(b, testcluster.AgentConfig{Name: fmt.Sprintf("fo-%d", i), Register: c.Nodes[0], AdminKey: c.AdminKey,
			Poll: polls, Environments: []string{deployEnvironment}, Roles: []string{role}})
		b.Cleanup(func() { keepLog(b, a.Config.Name+".log", a.Log()) })
	}
	for _, n := range c.Nodes {
		waitPolling(b, n, failoverAgents, time.Minute)
	}
	time.Sleep(2 * time.Second)
	waitTasksDone(b, pool, 0, 20*time.Millisecond, time.Minute)
	p := newDeployProject(b, c.Nodes[0].Client, "Failover", scriptStep("Roll", role, 1, failoverScript))
	const heartbeat = time.Second
	var (
		resume, nextCreated, nextDispatched samples
		shares                              []float64
		runs                                runLog
		unfinished                          int
	)
	run := 0
	for b.Loop() {
		run++
		leader, _, _ := steadyLeader(b, c)
		via := c.Nodes[run%len(c.Nodes)]
		task, id := p.deploy(b, via.Client)
		var owner string
		testcluster.Eventually(b, time.Minute, func() error {
			var (
				state      string
				dispatched int
			)
			if err := pool.QueryRow(ctx, `
				SELECT t.state, t.server_node, count(c.dispatched_at) FROM tasks t LEFT JOIN commands c ON c.task_id = t.id
				WHERE t.id = $1 GROUP BY t.id`, id).Scan(&state, &owner, &dispatched); err != nil {
				return err
			}
			if state != string(cuttle.TaskExecuting) || dispatched < 2 {
				return fmt.Errorf("%s is %s with %d commands handed out", task, state, dispatched)
			}
			return nil
		})
		x := c.Node(owner)
		if x == nil {
			b.Fatalf("%s executes on %q, which is no node of the cluster", task, owner)
		}
		randomPhase(heartbeat)
		t0 := time.Now()
		if err := x.Signal(syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		waitTasksDone(b, pool, id-1, 10*time.Millisecond, 2*time.Minute)
		r := readDeployRun(b, pool, id)
		bad := noteUnfinished(b, task, r.check(b, failoverAgents), &unfinished)
		resumed, epoch, err := findLogLine(c.Storage, id, 1, "Resuming the deployment of ")
		if err != nil {
			b.Fatal(err)
		}
		var lastSeen time.Time
		if err := pool.QueryRow(ctx, `SELECT last_seen FROM nodes WHERE name = $1`, owner).Scan(&lastSeen); err != nil {
			b.Fatal(err)
		}
		var next *deployCommand
		for i := range r.commands {
			if r.commands[i].created.After(t0) {
				next = &r.commands[i]
				break
			}
		}
		if next == nil {
			b.Fatalf("%s: no command was created after the SIGKILL of %s", task, owner)
		}
		offline := lastSeen.Add(stale)
		d := resumed.Time.Sub(t0)
		resume, nextCreated, nextDispatched = append(resume, d), append(nextCreated, next.created.Sub(t0)), append(nextDispatched, next.dispatched.Sub(t0))
		shares = append(shares, float64(offline.Sub(t0))/float64(d))
		detail := fmt.Sprintf("last check-in %.0f ms before the kill, offline at kill+%.0f ms", ms(t0.Sub(lastSeen)), ms(offline.Sub(t0)))
		if at, by, ok := takeoverLogged(c, task, owner); ok {
			detail += fmt.Sprintf(", %s's sweep took it over at kill+%.0f ms (%.0f ms after offline)", by, ms(at.Sub(t0)), ms(at.Sub(offline)))
		}
		runs.add("run %d: %s on %s%s, SIGKILL; resumed on %s (epoch %d) after %.1f ms: %s, resumed at kill+%.0f ms; next command (%s) created at kill+%.0f ms, handed out +%.0f ms; the deployment took %.0f ms%s",
			run, task, owner, leaderMark(x == leader), r.node, epoch, ms(d), detail, ms(d), next.machine, ms(next.created.Sub(t0)),
			ms(next.dispatched.Sub(t0)), ms(r.total()), bad)
		x.Wait(10 * time.Second)
		randomPhase(heartbeat)
		if err := x.Start(); err != nil {
			b.Fatal(err)
		}
		if err := x.WaitServing(30 * time.Second); err != nil {
			b.Fatal(err)
		}
		waitPolling(b, x, failoverAgents, time.Minute)
	}
	b.StopTimer()
	runs.flush(b)
	resume.report(b)
	b.ReportMetric(ms(nextCreated.median()), "median_next_command_ms")
	b.ReportMetric(ms(nextDispatched.median()), "median_next_dispatch_ms")
	b.ReportMetric(100*medianF(shares), "median_stale_share_%")
	b.ReportMetric(float64(unfinished), "unfinished_checkpoints")
}

// thousandTargets is how many simulated agents BenchmarkDeploy1000 deploys to.
const thousandTargets = 1000

// BenchmarkDeploy1000 measures a deployment over 1,000 simulated agents on
// one node (newAgentLoad): one step, `true` on every agent, at most
// window=W at once (10: no MaxParallelism, the default window; 100:
// MaxParallelism 100), both on the same node and agents, one after the
// other. One iteration resets the node's peak resident memory (VmHWM),
// creates a release, deploys it, waits until its task has ended, reads
// the node's peak, then times GET /api/tasks/{id}/details and /raw. It
// reports the task's queue_time to completed_time, the node's peak and
// its resident memory before the deployment, the size of the task's log
// (its segment files in shared storage) and of its checkpoint, what
// PostgreSQL wrote to its WAL during the deployment, the details call's
// time and size, and the CPU use.
func BenchmarkDeploy1000(b *testing.B) {
	const role = "thousand"
	l := newAgentLoad(b, thousandTargets, role)
	for _, w := range []int{10, 100} {
		b.Run("window="+strconv.Itoa(w), func(b *testing.B) { benchmarkDeploy1000(b, l, role, w) })
	}
}

func benchmarkDeploy1000(b *testing.B, l *agentLoad, role string, window int) {
	stepWindow := window
	if window == 10 {
		stepWindow = 0 // the default
	}
	p := newDeployProject(b, l.node.Client, "Thousand"+strconv.Itoa(window), scriptStep("Deploy", role, stepWindow, "true"))
	pid := l.node.Pid()
	slow := &client.Client{BaseURL: l.node.URL, APIKey: l.node.Client.APIKey, HTTP: &http.Client{Timeout: 5 * time.Minute}}
	ctx := context.Background()
	var (
		total, details                               samples
		peaks, before, logs, raws, walMiB, detailMiB []float64
		cpBytes                                      []float64
		runs                                         runLog
		cpuUse                                       cpuSeries
		unfinished                                   int
	)
	for b.Loop() {
		mem0, err := testcluster.ReadMemory(pid)
		if err != nil {
			b.Fatal(err)
		}
		if err := testcluster.ResetPeakMemory(pid); err != nil {
			b.Fatal(err)
		}
		var wal0 string
		if err := l.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&wal0); err != nil {
			b.Fatal(err)
		}
		cpu := l.meterDeployCPU(b)
		task, id := p.deploy(b, l.node.Client)
		waitTasksDone(b, l.pool, id-1, 20*time.Millisecond, 30*time.Minute)
		cpuLine := cpuUse.add(b, cpu)
		mem, err := testcluster.ReadMemory(pid)
		if err != nil {
			b.Fatal(err)
		}
		var wal float64
		if err := l.pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::text::pg_lsn)`, wal0).Scan(&wal); err != nil {
			b.Fatal(err)
		}
		r := readDeployRun(b, l.pool, id)
		bad := noteUnfinished(b, task, r.check(b, thousandTargets), &unfinished)
		var logBytes int64
		entries, err := os.ReadDir(filepath.Join(l.node.Config.Storage, "tasklogs", strconv.FormatInt(id, 10)))
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				b.Fatal(err)
			}
			logBytes += info.Size()
		}
		t0 := time.Now()
		var raw json.RawMessage
		if err := slow.Do(ctx, http.MethodGet, "/api/tasks/"+task+"/details", nil, &raw); err != nil {
			b.Fatal(err)
		}
		detailTime := time.Since(t0)
		text, err := testcluster.TaskLog(ctx, slow, task)
		if err != nil {
			b.Fatal(err)
		}
		firstCreated, _, firstDispatched, lastFinished := r.commandSpan()
		oh, once := r.perCommand(0)
		toCreated, _ := r.startToCommand(0)
		total, details = append(total, r.total()), append(details, detailTime)
		peaks, before, logs, raws = append(peaks, mib(mem.Peak)), append(before, mib(mem0.RSS)), append(logs, mib(logBytes)), append(raws, mib(int64(len(text))))
		walMiB, detailMiB, cpBytes = append(walMiB, wal/(1<<20)), append(detailMiB, mib(int64(len(raw)))), append(cpBytes, float64(r.checkpointBytes))
		runs.add("%s: %.0f ms (first command created +%.0f ms, handed out +%.0f ms, last result +%.0f ms); a target's start to its command created %.1f ms median; one target's command %.1f ms median, %.1f targets at once; "+
			"node RSS %.1f MiB before, peak %.1f MiB, %.1f MiB after; task log %.2f MiB in %d segment(s), raw %.2f MiB (%d lines); checkpoint %d bytes; WAL %.0f MiB; details %.0f ms, %.2f MiB; %s%s",
			task, ms(r.total()), ms(firstCreated.Sub(r.queued)), ms(firstDispatched.Sub(r.queued)), ms(lastFinished.Sub(r.queued)), ms(toCreated.median()), ms(oh), once,
			mib(mem0.RSS), mib(mem.Peak), mib(mem.RSS), mib(logBytes), len(entries), mib(int64(len(text))), strings.Count(text, "\n"),
			r.checkpointBytes, wal/(1<<20), ms(detailTime), mib(int64(len(raw))), cpuLine, bad)
		randomPhase(time.Second)
	}
	b.StopTimer()
	runs.flush(b)
	total.report(b)
	b.ReportMetric(slices.Max(peaks), "peak_MiB")
	b.ReportMetric(medianF(before), "rss_before_MiB")
	b.ReportMetric(medianF(logs), "log_MiB")
	b.ReportMetric(medianF(raws), "raw_log_MiB")
	b.ReportMetric(medianF(cpBytes), "checkpoint_bytes")
	b.ReportMetric(medianF(walMiB), "wal_MiB")
	b.ReportMetric(ms(details.median()), "details_ms")
	b.ReportMetric(medianF(detailMiB), "details_MiB")
	b.ReportMetric(float64(unfinished), "unfinished_checkpoints")
	cpuUse.report(b)
}
