package bench

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// The agent benchmarks: the memory of one node holding many idle polling
// agents and the dispatch latency at that load, the fan-out of one script
// to 500 agents, and the transfer of a large file to one agent. The
// simulated agents are real agent.Agent values in one simagents process
// (bench/cmd/simagents), or in as few as the open-file limit allows (see
// newAgentLoad); the file goes to a real `cuttle agent` process. Times
// come from the database (clock_timestamp() of the insert, claim,
// dispatch or report) and from the agents, which stamp output lines and
// their journal with their own clock: everything runs on this machine, so
// that is one clock.

// simAgents is one running simagents process.
type simAgents struct {
	cmd     *exec.Cmd
	dir     string // the agents' homes are dir/<machine name>
	logPath string
	started chan struct{} // closed when it printed "started ..."
	exited  chan struct{} // closed when it exited; then err says how
	err     error
	// output is what it printed on standard output, such as
	// "registered 1000 agents in 3.1s"; read it once started is closed.
	output []string
}

// startSimAgents starts n simulated polling agents of role role, named
// prefix-00001 and so on, in a simagents process that registers them
// through node's API and polls node's polling port. The agents log at
// level warn, or at $BENCH_SIM_LOG_LEVEL (such as debug). The process is
// stopped (SIGTERM) when the benchmark ends, and its log kept (see
// keepLog).
func startSimAgents(b *testing.B, c *testcluster.Cluster, node *testcluster.Node, n int, role, prefix string) *simAgents {
	b.Helper()
	dir := b.TempDir()
	s := &simAgents{dir: dir, logPath: filepath.Join(dir, "simagents.log"), started: make(chan struct{}), exited: make(chan struct{})}
	logf, err := os.Create(s.logPath)
	if err != nil {
		b.Fatal(err)
	}
	s.cmd = exec.Command(buildCommand(b, "simagents"), "-dir", dir, "-n", strconv.Itoa(n), "-api", node.URL, "-api-key", c.AdminKey,
		"-poll", "127.0.0.1:"+strconv.Itoa(node.PollingPort), "-role", role, "-name-prefix", prefix)
	if level := os.Getenv("BENCH_SIM_LOG_LEVEL"); level != "" {
		s.cmd.Args = append(s.cmd.Args, "-log-level", level)
	}
	s.cmd.Stderr = logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			s.output = append(s.output, sc.Text())
			if strings.HasPrefix(sc.Text(), "started ") {
				close(s.started)
			}
		}
		s.err = s.cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	b.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(time.Minute):
			s.cmd.Process.Kill()
			<-s.exited
		}
		log, _ := os.ReadFile(s.logPath)
		keepLog(b, prefix+".log", string(log))
		if b.Failed() {
			b.Logf("log of simagents %s:\n%s", prefix, tailLines(string(log), 40))
		}
	})
	return s
}

// waitStarted waits until every agent has started.
func (s *simAgents) waitStarted(b *testing.B, timeout time.Duration) {
	b.Helper()
	select {
	case <-s.started:
	case <-s.exited:
		b.Fatalf("simagents exited before its agents started: %v", s.err)
	case <-time.After(timeout):
		b.Fatalf("simagents did not start its agents within %v", timeout)
	}
}

// establishedOn counts the established TCP connections (IPv4 and IPv6)
// whose local port is port: on a node's polling port, one per connected
// agent poll.
func establishedOn(port int) (int, error) {
	n := 0
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(name)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return 0, err
		}
		lines := strings.Split(string(b), "\n")
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "01" { // 01: ESTABLISHED
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && int(p) == port {
				n++
			}
		}
	}
	return n, nil
}

// waitPolling waits until at least n connections to the node's polling
// port are established, and returns when that was seen.
func waitPolling(b *testing.B, node *testcluster.Node, n int, timeout time.Duration) time.Time {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := establishedOn(node.PollingPort)
		if err != nil {
			b.Fatal(err)
		}
		if got >= n {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d agents are connected to node %s after %v", got, n, node.Config.Name, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// procMemory returns a process's resident memory (VmRSS) and its peak
// (VmHWM) in bytes, from /proc/<pid>/status.
func procMemory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %v", pid, line, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// clockTicks is the unit of the CPU times in /proc/<pid>/stat (USER_HZ,
// 100 on Linux).
const clockTicks = 100

// procCPU returns the CPU time (user and system) a process has used, from
// /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses: state
	// (field 3) first, utime and stime (fields 14 and 15) at 11 and 12.
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat has too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad CPU times %q %q", pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// machineBusy returns the CPU time all cores have spent working (user,
// nice, system, irq and softirq: not idle, waiting for I/O or stolen by
// the hypervisor) since boot, from /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat starts with %q", line)
	}
	var busy int64
	for i, v := range f[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q: %v", line, err)
		}
		if i != 3 && i != 4 && i != 7 { // idle, iowait, steal
			busy += n
		}
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

// cpuMeter measures the CPU use of some groups of processes and of the
// whole machine over a stretch of time.
type cpuMeter struct {
	names  []string
	groups [][]int // pids
	start  time.Time
	used   []time.Duration // at the start, by group; the machine's last
}

// meterCPU starts measuring the groups of processes, named names, and the
// machine.
func meterCPU(b *testing.B, names []string, groups [][]int) *cpuMeter {
	b.Helper()
	m := &cpuMeter{names: names, groups: groups, start: time.Now()}
	m.used = m.read(b)
	return m
}

func (m *cpuMeter) read(b *testing.B) []time.Duration {
	b.Helper()
	var used []time.Duration
	for _, pids := range m.groups {
		var sum time.Duration
		for _, pid := range pids {
			d, err := procCPU(pid)
			if err != nil {
				b.Fatal(err)
			}
			sum += d
		}
		used = append(used, sum)
	}
	d, err := machineBusy()
	if err != nil {
		b.Fatal(err)
	}
	return append(used, d)
}

// stop returns each group's CPU use since the start and the machine's,
// in % of one core (the machine's is of all its cores: nproc × 100 % is
// the most), with their names (the machine is "machine") and as one line.
func (m *cpuMeter) stop(b *testing.B) (names []string, pcts []float64, line string) {
	b.Helper()
	now := m.read(b)
	elapsed := time.Since(m.start).Seconds()
	names = append(slices.Clone(m.names), "machine")
	var parts []string
	for i, name := range names {
		pcts = append(pcts, 100*(now[i]-m.used[i]).Seconds()/elapsed)
		parts = append(parts, fmt.Sprintf("%s %.0f %%", name, pcts[i]))
	}
	return names, pcts, fmt.Sprintf("CPU over %.1f s: %s", elapsed, strings.Join(parts, ", "))
}

// report logs stop's line and reports each use as <name>_cpu_%.
func (m *cpuMeter) report(b *testing.B) {
	b.Helper()
	names, pcts, line := m.stop(b)
	b.Log(line)
	for i, name := range names {
		b.ReportMetric(pcts[i], name+"_cpu_%")
	}
}

// cpuSeries keeps the CPU use of each iteration, by the meters' names.
type cpuSeries struct {
	names []string
	pcts  [][]float64 // by name
}

// add stops the meter, keeps its figures and returns its line.
func (s *cpuSeries) add(b *testing.B, m *cpuMeter) string {
	b.Helper()
	names, pcts, line := m.stop(b)
	s.names = names
	for i, p := range pcts {
		if i == len(s.pcts) {
			s.pcts = append(s.pcts, nil)
		}
		s.pcts[i] = append(s.pcts[i], p)
	}
	return line
}

// report reports the median of each as median_<name>_cpu_%.
func (s *cpuSeries) report(b *testing.B) {
	b.Helper()
	for i, name := range s.names {
		b.ReportMetric(medianF(s.pcts[i]), "median_"+name+"_cpu_%")
	}
}

// agentsPerSim is how many agents one simagents process may run: as many
// as its open-file limit allows, which is this process's hard limit (see
// filesPerAgent and spareFiles in bench/cmd/simagents).
func agentsPerSim(b *testing.B) int {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	const filesPerAgent, spareFiles = 3, 1000
	if lim.Max < filesPerAgent+spareFiles {
		b.Fatalf("the open-file limit (ulimit -Hn) is %d, too low for any simulated agent", lim.Max)
	}
	return int((lim.Max - spareFiles) / filesPerAgent)
}

// agentLoad is one node of a fresh cluster on the shared PostgreSQL with
// the default settings, and n simulated polling agents connected to it.
type agentLoad struct {
	node     *testcluster.Node
	pool     *pgxpool.Pool
	sims     []*simAgents // none without agents
	machines []string     // the agents' machine ids, Machines-N
}

// newAgentLoad starts a node and, for n > 0, n agents of role role that
// register through its API, start evenly over one poll cycle
// (agentapi.PollWait) and poll it: in one simagents process if its
// open-file limit allows (agentsPerSim), otherwise in as few as it allows,
// each with an equal share (named sim1-00001, sim2-00001, ...). It waits
// until all are connected, then one more poll cycle, so that every agent
// has had a poll answered and polls again, as idle agents do. Without
// agents it waits the same cycle. Then it analyzes the database.
func newAgentLoad(b *testing.B, n int, role string) *agentLoad {
	b.Helper()
	c := newTaskCluster(b, 1)
	steadyLeader(b, c)
	l := &agentLoad{node: c.Nodes[0], pool: openPool(b, c.DB)}
	// The leader queues its scheduled jobs at its first sweep, before any
	// machine exists: let them end.
	time.Sleep(2 * time.Second)
	waitTasksDone(b, l.pool, 0, 20*time.Millisecond, time.Minute)
	if n > 0 {
		t0 := time.Now()
		procs := (n + agentsPerSim(b) - 1) / agentsPerSim(b)
		for i := range procs {
			prefix := "sim"
			if procs > 1 {
				prefix = "sim" + strconv.Itoa(i+1)
			}
			l.sims = append(l.sims, startSimAgents(b, c, l.node, n*(i+1)/procs-n*i/procs, role, prefix))
		}
		var said []string
		for _, s := range l.sims {
			s.waitStarted(b, 30*time.Minute)
			said = append(said, strings.Join(s.output, "; "))
		}
		connected := waitPolling(b, l.node, n, 5*time.Minute)
		b.Logf("%d simagents process(es): %s; all %d agents connected %.1f s after the start", procs, strings.Join(said, " | "), n, connected.Sub(t0).Seconds())
		rows, err := l.pool.Query(context.Background(), `SELECT id FROM machines WHERE $1 = ANY (roles) ORDER BY id`, role)
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				b.Fatal(err)
			}
			l.machines = append(l.machines, cuttle.FormatID(cuttle.MachineIDPrefix, id))
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		if len(l.machines) != n {
			b.Fatalf("%d machines of role %s are registered, want %d", len(l.machines), role, n)
		}
	}
	time.Sleep(agentapi.PollWait + 5*time.Second)
	// The planner's statistics, as a database in use has them: without
	// them the tables created empty moments ago are read whole.
	if _, err := l.pool.Exec(context.Background(), "ANALYZE"); err != nil {
		b.Fatal(err)
	}
	return l
}

// meterCPU starts measuring the CPU use of the node, the simulators (if
// any, together), PostgreSQL and the machine.
func (l *agentLoad) meterCPU(b *testing.B) *cpuMeter {
	b.Helper()
	groups := [][]int{{l.node.Pid()}}
	names := []string{"node"}
	if len(l.sims) > 0 {
		groups, names = append(groups, l.simPids()), append(names, "sim")
	}
	groups, names = append(groups, postgresPids(b)), append(names, "db")
	return meterCPU(b, names, groups)
}

// postgresPids returns the processes of PostgreSQL on this machine
// (command name postgres): the benchmarks' server and its backends, which
// the nodes' pools keep connected.
func postgresPids(b *testing.B) []int {
	b.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// journaledAt returns when the agent of the machine named name journaled
// the command uid, by its own clock: the StartedAt of the command's
// state.json in the agent's journal, which the agent stamps just before
// it journals the command, and before it starts the work.
func (l *agentLoad) journaledAt(name, uid string) (time.Time, error) {
	for _, s := range l.sims {
		b, err := os.ReadFile(filepath.Join(s.dir, name, "commands", uid, "state.json"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return time.Time{}, err
		}
		var rec struct{ StartedAt time.Time }
		if err := json.Unmarshal(b, &rec); err != nil {
			return time.Time{}, fmt.Errorf("the journal of %s's command %s: %v", name, uid, err)
		}
		return rec.StartedAt, nil
	}
	return time.Time{}, fmt.Errorf("no simulated agent %s journaled the command %s", name, uid)
}

func (l *agentLoad) simPids() []int {
	var pids []int
	for _, s := range l.sims {
		pids = append(pids, s.cmd.Process.Pid)
	}
	return pids
}

// xacts returns the transactions the cluster's database has ended so far
// (pg_stat_database, which lags by up to a second).
func (l *agentLoad) xacts(b *testing.B) int64 {
	b.Helper()
	var n int64
	if err := l.pool.QueryRow(context.Background(),
		`SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// reportProcMemory reports the VmRSS and VmHWM of processes, summed, in
// MiB as prefix+"rss_MiB" and prefix+"hwm_MiB".
func reportProcMemory(b *testing.B, prefix string, pids ...int) {
	b.Helper()
	var rss, hwm int64
	for _, pid := range pids {
		r, h, err := procMemory(pid)
		if err != nil {
			b.Fatal(err)
		}
		rss, hwm = rss+r, hwm+h
	}
	b.ReportMetric(mib(rss), prefix+"rss_MiB")
	b.ReportMetric(mib(hwm), prefix+"hwm_MiB")
}

// agentCounts are the simulated agents of the idle-load benchmarks.
var agentCounts = []int{0, 1000, 10000}

// BenchmarkAgentsIdleRSS measures the resident memory of one node (on
// PostgreSQL, default settings) that holds agents=N idle polling agents
// (see newAgentLoad), each polling with one connection (PollConnections
// 1); agents=0 is the baseline. After the setup, one iteration waits a
// second and samples the node's VmRSS. It reports the median and highest
// sample, the node's VmHWM at the end (its peak since it started,
// registration included), the CPU use of the node, the simulators and the
// machine and the database's transactions per second over the samples,
// and the simulators' memory.
func BenchmarkAgentsIdleRSS(b *testing.B) {
	for _, n := range agentCounts {
		b.Run("agents="+strconv.Itoa(n), func(b *testing.B) { benchmarkIdleRSS(b, n) })
	}
}

func benchmarkIdleRSS(b *testing.B, n int) {
	l := newAgentLoad(b, n, "sim")
	pid := l.node.Pid()
	cpu := l.meterCPU(b)
	x0, t0 := l.xacts(b), time.Now()
	var rss []float64
	for b.Loop() {
		time.Sleep(time.Second)
		r, _, err := procMemory(pid)
		if err != nil {
			b.Fatal(err)
		}
		rss = append(rss, mib(r))
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	cpu.report(b)
	x1, elapsed := l.xacts(b), time.Since(t0)
	conns, err := establishedOn(l.node.PollingPort)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("node %s: %d connections on its polling port at the end; VmRSS samples (MiB): %.0f", l.node.Config.Name, conns, rss)
	b.ReportMetric(medianF(rss), "rss_MiB")
	b.ReportMetric(slices.Max(rss), "max_rss_MiB")
	_, hwm, err := procMemory(pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(mib(hwm), "hwm_MiB")
	b.ReportMetric(float64(x1-x0)/elapsed.Seconds(), "db_xact/s")
	if len(l.sims) > 0 {
		reportProcMemory(b, "sim_", l.simPids()...)
	}
}

// dispatchGap is the pause after queueing one command in the dispatch
// benchmark: longer than a command takes, so that none waits behind
// another, and random, so that none arrives at a fixed point of a cycle.
var dispatchGap = gapRange{150 * time.Millisecond, 300 * time.Millisecond}

// BenchmarkAgentsDispatch measures, on the load of BenchmarkAgentsIdleRSS
// (agents=N idle polling agents on one node), the time from queueing a
// command to its start on an agent. One iteration queues one AdHocScript
// `echo start` through the API with MachineIds naming one agent picked at
// random, then pauses 150 to 300 ms. A command starts with its first
// output line, whose time the agent stamps when it reads the line from
// the script. It reports the percentiles of that time minus the task's
// queue_time (what the caller sees; the figure), and minus the command's
// created_at (the agent path alone); the medians of the parts: created_at
// to dispatched_at (the node hands the command to the agent's waiting
// poll), to the agent journaling it (the StartedAt of its state.json: the
// answer has reached the agent), and to the first line (the agent's
// journal, then bash); the percentiles of the last two; and the node's
// memory and the CPU use over the iterations.
func BenchmarkAgentsDispatch(b *testing.B) {
	for _, n := range agentCounts[1:] {
		b.Run("agents="+strconv.Itoa(n), func(b *testing.B) { benchmarkDispatch(b, n) })
	}
}

func benchmarkDispatch(b *testing.B, n int) {
	l := newAgentLoad(b, n, "sim")
	first := maxTaskID(b, l.pool)
	ctx := context.Background()
	cpu := l.meterCPU(b)
	for b.Loop() {
		m := l.machines[rand.N(len(l.machines))]
		if _, err := l.node.Client.CreateTask(ctx, "AdHocScript", map[string]any{
			"ScriptBody": "echo start", "Syntax": "Bash", "MachineIds": []string{m}}); err != nil {
			b.Fatalf("queueing a script for %s: %v", m, err)
		}
		time.Sleep(dispatchGap.next())
	}
	b.StopTimer()
	cpu.report(b)
	waitTasksDone(b, l.pool, first, 20*time.Millisecond, 2*time.Minute)
	rows, err := l.pool.Query(ctx, `
		SELECT t.id, m.name, c.uid, t.state, o.time IS NOT NULL, t.queue_time, c.created_at, c.dispatched_at,
			coalesce(o.time, c.dispatched_at)
		FROM tasks t JOIN commands c ON c.task_id = t.id JOIN machines m ON m.id = c.machine_id
		LEFT JOIN command_output o ON o.command_id = c.id AND o.seq = 1
		WHERE t.id > $1 ORDER BY t.id`, first)
	if err != nil {
		b.Fatal(err)
	}
	// One task's start, in four parts: from its queue_time to the
	// command's created_at, to its dispatched_at, to the agent journaling
	// it, to its first output line.
	type start struct {
		task                        int64
		machine                     string
		toCommand, toDispatch       time.Duration
		toJournal, toFirstLine, all time.Duration
	}
	var starts []start
	for rows.Next() {
		var (
			st                                     start
			uid, state                             string
			started                                bool
			queued, created, dispatched, firstLine time.Time
		)
		if err := rows.Scan(&st.task, &st.machine, &uid, &state, &started, &queued, &created, &dispatched, &firstLine); err != nil {
			b.Fatal(err)
		}
		if state != string(cuttle.TaskSuccess) || !started {
			b.Errorf("task %d ended %s (first output line stored: %v)", st.task, state, started)
			continue
		}
		journaled, err := l.journaledAt(st.machine, uid)
		if err != nil {
			b.Fatal(err)
		}
		st.toCommand, st.toDispatch = created.Sub(queued), dispatched.Sub(created)
		st.toJournal, st.toFirstLine, st.all = journaled.Sub(dispatched), firstLine.Sub(journaled), firstLine.Sub(queued)
		starts = append(starts, st)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if len(starts) != b.N {
		b.Fatalf("%d of %d scripts started", len(starts), b.N)
	}
	var fromQueue, fromCreated, toCommand, toDispatch, toJournal, toFirstLine samples
	lines := []string{"task machine queue_to_command_ms command_to_dispatch_ms dispatch_to_journal_ms journal_to_first_line_ms"}
	for _, st := range starts {
		fromQueue, fromCreated = append(fromQueue, st.all), append(fromCreated, st.all-st.toCommand)
		toCommand, toDispatch = append(toCommand, st.toCommand), append(toDispatch, st.toDispatch)
		toJournal, toFirstLine = append(toJournal, st.toJournal), append(toFirstLine, st.toFirstLine)
		lines = append(lines, fmt.Sprintf("%d %s %.3f %.3f %.3f %.3f", st.task, st.machine, ms(st.toCommand), ms(st.toDispatch), ms(st.toJournal), ms(st.toFirstLine)))
	}
	keepLog(b, "starts.txt", strings.Join(lines, "\n")+"\n")
	slices.SortFunc(starts, func(x, y start) int { return cmp.Compare(y.all, x.all) })
	var slow []string
	for _, st := range starts[:min(5, len(starts))] {
		slow = append(slow, fmt.Sprintf("ServerTasks-%d on %s: %.1f + %.1f + %.1f + %.1f ms", st.task, st.machine,
			ms(st.toCommand), ms(st.toDispatch), ms(st.toJournal), ms(st.toFirstLine)))
	}
	b.Logf("slowest, as queue_time to created_at + to dispatched_at + to journaled + to the first line: %s", strings.Join(slow, "; "))
	b.ReportMetric(0, "ns/op")
	fromQueue.reportPercentiles(b, "start")
	fromCreated.reportPercentiles(b, "cmd_start")
	b.Logf("medians: queue_time to created_at %.2f ms, to dispatched_at %.2f ms, to journaled %.2f ms, to the first line %.2f ms",
		ms(toCommand.median()), ms(toDispatch.median()), ms(toJournal.median()), ms(toFirstLine.median()))
	b.ReportMetric(ms(toDispatch.median()), "median_dispatch_ms")
	b.ReportMetric(ms(toJournal.median()), "median_to_agent_ms")
	b.ReportMetric(ms(toFirstLine.median()), "median_agent_ms")
	toJournal.reportPercentiles(b, "to_agent")
	toFirstLine.reportPercentiles(b, "agent")
	reportProcMemory(b, "", l.node.Pid())
}

// reportPercentiles logs the slowest samples and reports p50, p90, p99
// and the highest, in milliseconds, as name+"_p50_ms" and so on.
func (s samples) reportPercentiles(b *testing.B, name string) {
	b.Helper()
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	var slow []string
	for _, d := range sorted[max(0, len(sorted)-5):] {
		slow = append(slow, strconv.FormatFloat(ms(d), 'f', 1, 64))
	}
	b.Logf("%s: %d samples, p50 %.2f ms, p90 %.2f ms, p99 %.2f ms; slowest (ms): %s", name, len(sorted),
		ms(percentile(sorted, 50)), ms(percentile(sorted, 90)), ms(percentile(sorted, 99)), strings.Join(slow, " "))
	b.ReportMetric(ms(percentile(sorted, 50)), name+"_p50_ms")
	b.ReportMetric(ms(percentile(sorted, 90)), name+"_p90_ms")
	b.ReportMetric(ms(percentile(sorted, 99)), name+"_p99_ms")
	b.ReportMetric(ms(sorted[len(sorted)-1]), name+"_max_ms")
}

// fanOutAgents is how many agents BenchmarkAgentsFanOut runs a script on.
const fanOutAgents = 500

// BenchmarkAgentsFanOut measures one AdHocScript `true` on 500 simulated
// polling agents (one simagents process; TargetRoles selects all 500) on
// one node with the default settings, where a task works on at most
// tasks.DefaultTargetParallelism (10) targets at once. One iteration
// queues the task through the API and waits until it has completed, then
// pauses a random 0–1 s. It reports the median and worst time from
// tasks.queue_time to tasks.completed_time, and the medians of its parts:
// to the first command handed out (commands.dispatched_at), to the last
// result stored (commands.finished_at), and the median time of one
// target's command (created_at to finished_at); the number of targets
// worked on at once (the targets' busy time divided by the span from the
// first command to the last result); and the CPU use of the node, the
// simulator and the machine during the task. With $BENCH_LOG_DIR it also
// writes each command's times there (runN-commands.txt).
func BenchmarkAgentsFanOut(b *testing.B) {
	l := newAgentLoad(b, fanOutAgents, "fanout")
	ctx := context.Background()
	var (
		total, firstDispatch, lastResult, perTarget samples
		busy                                        []float64
		runs                                        runLog
		cpuUse                                      cpuSeries
	)
	for b.Loop() {
		prev := maxTaskID(b, l.pool)
		cpu := l.meterCPU(b)
		t, err := l.node.Client.CreateTask(ctx, "AdHocScript", map[string]any{
			"ScriptBody": "true", "Syntax": "Bash", "TargetRoles": []string{"fanout"}})
		if err != nil {
			b.Fatal(err)
		}
		id := testcluster.TaskNumber(b, t.Id)
		waitTasksDone(b, l.pool, prev, 10*time.Millisecond, 5*time.Minute)
		cpuLine := cpuUse.add(b, cpu)
		var (
			state                 string
			cmds, succeeded       int
			tot, fd, lr, med, sum int64
			firstCmd, lastDone    int64
		)
		if err := l.pool.QueryRow(ctx, `
			SELECT t.state, count(*), count(*) FILTER (WHERE c.state = 'Success'),
				(extract(epoch FROM t.completed_time - t.queue_time) * 1e6)::bigint,
				(extract(epoch FROM min(c.dispatched_at) - t.queue_time) * 1e6)::bigint,
				(extract(epoch FROM max(c.finished_at) - t.queue_time) * 1e6)::bigint,
				(extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY c.finished_at - c.created_at)) * 1e6)::bigint,
				(extract(epoch FROM sum(c.finished_at - c.created_at)) * 1e6)::bigint,
				(extract(epoch FROM min(c.created_at) - t.queue_time) * 1e6)::bigint,
				(extract(epoch FROM max(c.finished_at) - min(c.created_at)) * 1e6)::bigint
			FROM tasks t JOIN commands c ON c.task_id = t.id
			WHERE t.id = $1 GROUP BY t.id`, id).
			Scan(&state, &cmds, &succeeded, &tot, &fd, &lr, &med, &sum, &firstCmd, &lastDone); err != nil {
			b.Fatal(err)
		}
		if state != string(cuttle.TaskSuccess) || cmds != fanOutAgents || succeeded != fanOutAgents {
			b.Fatalf("%s ended %s with %d of %d commands succeeded", t.Id, state, succeeded, cmds)
		}
		us := time.Microsecond
		total, firstDispatch, lastResult, perTarget = append(total, time.Duration(tot)*us), append(firstDispatch, time.Duration(fd)*us),
			append(lastResult, time.Duration(lr)*us), append(perTarget, time.Duration(med)*us)
		busy = append(busy, float64(sum)/float64(lastDone))
		keepCommands(b, l.pool, id, fmt.Sprintf("run%d-commands.txt", len(total)))
		runs.add("%s: %.0f ms (first command queued +%.1f ms, handed out +%.1f ms, last result +%.0f ms; one target's command %.1f ms median; %.1f targets at once; %s)",
			t.Id, ms(time.Duration(tot)*us), ms(time.Duration(firstCmd)*us), ms(time.Duration(fd)*us), ms(time.Duration(lr)*us), ms(time.Duration(med)*us), busy[len(busy)-1], cpuLine)
		randomPhase(time.Second)
	}
	b.StopTimer()
	runs.flush(b)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(total.median()), "median_ms")
	b.ReportMetric(ms(slices.Max(total)), "worst_ms")
	b.ReportMetric(ms(firstDispatch.median()), "median_first_dispatch_ms")
	b.ReportMetric(ms(lastResult.median()), "median_last_result_ms")
	b.ReportMetric(ms(perTarget.median()), "median_target_ms")
	b.ReportMetric(medianF(busy), "targets_at_once")
	cpuUse.report(b)
}

// keepCommands writes, with keepLog, one line per command of the task:
// its machine and the ms from the task's queue_time to its created_at,
// dispatched_at and finished_at, in the order they were created.
func keepCommands(b *testing.B, pool *pgxpool.Pool, task int64, name string) {
	b.Helper()
	if os.Getenv("BENCH_LOG_DIR") == "" {
		return
	}
	rows, err := pool.Query(context.Background(), `
		SELECT c.machine_id, extract(epoch FROM c.created_at - t.queue_time) * 1e3,
			extract(epoch FROM c.dispatched_at - t.queue_time) * 1e3, extract(epoch FROM c.finished_at - t.queue_time) * 1e3
		FROM commands c JOIN tasks t ON t.id = c.task_id WHERE t.id = $1 ORDER BY c.created_at`, task)
	if err != nil {
		b.Fatal(err)
	}
	lines := []string{"machine created_ms dispatched_ms finished_ms"}
	for rows.Next() {
		var (
			machine                       int64
			created, dispatched, finished float64
		)
		if err := rows.Scan(&machine, &created, &dispatched, &finished); err != nil {
			b.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%d %.3f %.3f %.3f", machine, created, dispatched, finished))
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	keepLog(b, name, strings.Join(lines, "\n")+"\n")
}

// transferBytes is the size of the file of BenchmarkAgentFileTransfer:
// 1 GiB, or $BENCH_TRANSFER_MIB MiB.
func transferBytes(b *testing.B) int64 {
	if s := os.Getenv("BENCH_TRANSFER_MIB"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("BENCH_TRANSFER_MIB=%q is not a positive number", s)
		}
		return n << 20
	}
	return 1 << 30
}

// writeRandomFile writes size random bytes (nothing a disk or a link could
// compress) to path.
func writeRandomFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, rand.NewChaCha8([32]byte{1}), size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// hashTime returns how long SHA-256 of a file takes in one goroutine, as
// the node's digest before sending and the agent's while receiving run.
func hashTime(path string) (time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	t0 := time.Now()
	_, err = io.Copy(sha256.New(), f)
	return time.Since(t0), err
}

// runProgram runs a program to its end.
func runProgram(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// partialWatch samples, every 2 ms, the size of the partial file a
// ReceiveFile command grows in its agent's journal, and keeps when it
// first grew and when it was first seen full or gone (moved into place).
type partialWatch struct {
	firstByte, lastByte time.Time
	stop, done          chan struct{}
}

func watchPartial(path string, size int64) *partialWatch {
	w := &partialWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			info, err := os.Stat(path)
			now := time.Now()
			if err == nil && info.Size() > 0 && w.firstByte.IsZero() {
				w.firstByte = now
			}
			// Full, or moved into place (gone after it grew): the agent
			// syncs and renames it within a few ms of its last byte.
			if (err == nil && info.Size() == size) || (os.IsNotExist(err) && !w.firstByte.IsZero()) {
				w.lastByte = now
				return
			}
		}
	}()
	return w
}

func (w *partialWatch) end() {
	close(w.stop)
	<-w.done
}

// BenchmarkAgentFileTransfer measures a TransferFile of a 1 GiB file of
// random bytes, in the cluster's shared storage, to one `cuttle agent`
// process polling one node over loopback, against `cp` of the same file
// on the same disk. The source is in the page cache for both (it was
// just written and is read again every iteration; nothing is dropped).
// One iteration copies the file with cp, then flushes the copy with `sync
// FILE`, removes it, then runs the TransferFile task to a new Destination
// and removes what the agent received. It reports MB/s (10^6 bytes) from
// the task's start_time to its completed_time (the figure) and from the
// command's dispatched_at to its finished_at (its final report stored),
// cp's rate and cp's with the sync; and the parts of the transfer: the
// node's digest (the task's start to the command's created_at), the
// dispatch, the agent's receive (its partial file's first to last byte,
// sampled every 2 ms), and the rest (fsync, rename, report); the CPU use
// of the node, the agent and the machine during the task; and how long
// SHA-256 of the file takes in one goroutine of this process, which is
// what each side's hashing costs.
func BenchmarkAgentFileTransfer(b *testing.B) {
	size := transferBytes(b)
	c := newTaskCluster(b, 1)
	steadyLeader(b, c)
	node := c.Nodes[0]
	pool := openPool(b, c.DB)
	a := testcluster.StartAgent(b, testcluster.AgentConfig{Name: "target", Register: node, AdminKey: c.AdminKey})
	b.Cleanup(func() { keepLog(b, "agent.log", a.Log()) })
	waitPolling(b, node, 1, time.Minute)
	time.Sleep(2 * time.Second)
	waitTasksDone(b, pool, 0, 20*time.Millisecond, time.Minute)

	src := filepath.Join(c.Storage, "packages", "transfer.bin")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := writeRandomFile(src, size); err != nil {
		b.Fatal(err)
	}
	hash, err := hashTime(src)
	if err != nil {
		b.Fatal(err)
	}
	copyPath := filepath.Join(b.TempDir(), "transfer.bin") // the same file system as the agent's home
	mbps := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }
	ctx := context.Background()
	var (
		task, command, cp, cpSync, digest, dispatch, receive, rest samples
		runs                                                       runLog
		cpuUse                                                     cpuSeries
	)
	i := 0
	for b.Loop() {
		i++
		t0 := time.Now()
		if err := runProgram("cp", src, copyPath); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := runProgram("sync", copyPath); err != nil {
			b.Fatal(err)
		}
		cp, cpSync = append(cp, t1.Sub(t0)), append(cpSync, time.Since(t0))
		if err := os.Remove(copyPath); err != nil {
			b.Fatal(err)
		}

		dest := fmt.Sprintf("transfer-%d.bin", i)
		prev := maxTaskID(b, pool)
		cpu := meterCPU(b, []string{"node", "agent"}, [][]int{{node.Pid()}, {a.Pid()}})
		t, err := node.Client.CreateTask(ctx, "TransferFile", map[string]any{
			"Source": "packages/transfer.bin", "Destination": dest, "MachineIds": []string{a.MachineID}})
		if err != nil {
			b.Fatal(err)
		}
		id := testcluster.TaskNumber(b, t.Id)
		var uid string
		testcluster.Eventually(b, time.Minute, func() error {
			return pool.QueryRow(ctx, `SELECT uid FROM commands WHERE task_id = $1`, id).Scan(&uid)
		})
		w := watchPartial(filepath.Join(a.Home, "commands", uid, "receive.partial"), size)
		waitTasksDone(b, pool, prev, 10*time.Millisecond, 10*time.Minute)
		w.end()
		cpuLine := cpuUse.add(b, cpu)
		var (
			state, cmdState                         string
			started, completed, created, dispatched time.Time
			finished                                time.Time
		)
		if err := pool.QueryRow(ctx, `
			SELECT t.state, c.state, t.start_time, t.completed_time, c.created_at, c.dispatched_at, c.finished_at
			FROM tasks t JOIN commands c ON c.task_id = t.id WHERE t.id = $1`, id).
			Scan(&state, &cmdState, &started, &completed, &created, &dispatched, &finished); err != nil {
			b.Fatal(err)
		}
		if state != string(cuttle.TaskSuccess) || cmdState != string(cuttle.CommandSuccess) {
			b.Fatalf("%s ended %s, its command %s", t.Id, state, cmdState)
		}
		if w.firstByte.IsZero() || w.lastByte.IsZero() {
			b.Fatalf("%s: the agent's partial file was not seen growing to %d bytes", t.Id, size)
		}
		if err := os.Remove(filepath.Join(a.Home, "work", dest)); err != nil {
			b.Fatal(err)
		}
		task, command = append(task, completed.Sub(started)), append(command, finished.Sub(dispatched))
		digest, dispatch = append(digest, created.Sub(started)), append(dispatch, w.firstByte.Sub(dispatched))
		receive, rest = append(receive, w.lastByte.Sub(w.firstByte)), append(rest, finished.Sub(w.lastByte))
		runs.add("%s: task %.0f ms = %.0f MB/s, command %.0f ms = %.0f MB/s (digest %.0f ms, dispatch to first byte %.0f ms, receive %.0f ms = %.0f MB/s, last byte to final report %.0f ms, final report to completed %.0f ms; task %s); cp %.0f ms = %.0f MB/s, with sync %.0f ms = %.0f MB/s",
			t.Id, ms(completed.Sub(started)), mbps(completed.Sub(started)), ms(finished.Sub(dispatched)), mbps(finished.Sub(dispatched)),
			ms(created.Sub(started)), ms(w.firstByte.Sub(dispatched)), ms(w.lastByte.Sub(w.firstByte)), mbps(w.lastByte.Sub(w.firstByte)),
			ms(finished.Sub(w.lastByte)), ms(completed.Sub(finished)), cpuLine, ms(t1.Sub(t0)), mbps(t1.Sub(t0)), ms(cpSync[len(cpSync)-1]), mbps(cpSync[len(cpSync)-1]))
	}
	b.StopTimer()
	runs.flush(b)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(mbps(task.median()), "task_MB/s")
	b.ReportMetric(mbps(command.median()), "command_MB/s")
	b.ReportMetric(mbps(cp.median()), "cp_MB/s")
	b.ReportMetric(mbps(cpSync.median()), "cp_sync_MB/s")
	b.ReportMetric(mbps(receive.median()), "receive_MB/s")
	b.ReportMetric(ms(digest.median()), "digest_ms")
	b.ReportMetric(ms(dispatch.median()), "dispatch_ms")
	b.ReportMetric(ms(rest.median()), "after_receive_ms")
	b.ReportMetric(ms(hash), "sha256_ms")
	cpuUse.report(b)
}
