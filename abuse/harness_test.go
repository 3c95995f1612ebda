package abuse_test

// This file is the suite's harness: the node under attack with a genuine
// agent, and the measurements of one attack.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// The limits the issue states for a node under any attack.
const (
	// maxGrowth bounds the growth of the node's resident memory.
	maxGrowth = 256 << 20
	// maxPingP99 bounds what an attack adds to the 99th percentile of the
	// ping's answers: over the baseline, the percentile of a ping just
	// before the attack (a few ms on an idle machine; more when other
	// work loads it, which is not the attack's doing).
	maxPingP99 = 100 * time.Millisecond
	// baselineFor is how long the baseline ping runs.
	baselineFor = 1500 * time.Millisecond
)

// The node's bounds the suite expects: the defaults of `cuttle server`
// and the bounds of the agent protocol (package agentapi).
const (
	logLineLimit       = cuttle.DefaultLogLineBytes    // --log-line-limit: a longer line in a task log is cut
	detailsLimit       = cuttle.DefaultDetailsBytes    // --details-limit: the most a task's details answer holds
	maxConnsPerAddress = cuttle.DefaultConnsPerAddress // --max-conns-per-address, on the API port
	maxReportBody      = agentapi.MaxReportBody
	maxReportLines     = agentapi.MaxReportLines
)

// Addresses of the test's traffic. The attacks come from addresses of
// their own.
const (
	attackerIP = "127.0.0.2"
	victimIP   = "127.0.0.3" // a second fake agent, whose command the attacker reports on
)

const (
	// pingEvery is the interval of the ping's calls.
	pingEvery = 20 * time.Millisecond
	// attackFor is the least an attack that a node may refuse quickly
	// lasts, repeated, so that the ping's figures over it come from a
	// couple of hundred calls.
	attackFor = 5 * time.Second
	// memoryCeiling is the resident memory at which a node is killed
	// (about 3 GB): past it, a node is far beyond its limits, and the
	// machine runs other work.
	memoryCeiling = 2800 << 20
	// genuineTimeout bounds the genuine agent's script.
	genuineTimeout = 30 * time.Second
)

// target is a node under attack: a `cuttle server` on embedded SQLite,
// sampled until the test ends, with a genuine polling agent on 127.0.0.1
// that has already run one script.
type target struct {
	t       *testing.T
	node    *testcluster.Node
	storage string // the node's shared storage root
	sampler *testcluster.Sampler
	genuine *testcluster.Agent
}

// startTarget starts the node with settings (NAME=VALUE for `cuttle server
// --name VALUE`; a setting the node does not know fails its start) and its
// genuine agent.
func startTarget(t *testing.T, settings ...string) *target {
	t.Helper()
	var args []string
	for _, s := range settings {
		args = append(args, "--"+s)
	}
	storage := t.TempDir()
	node := testcluster.StartNode(t, testcluster.NodeConfig{Name: "node-a", AdminKey: cuttle.NewAPIKey(), Storage: storage, Args: args})
	tg := &target{t: t, node: node, storage: storage, sampler: node.Sample(t, memoryCeiling)}
	tg.genuine = testcluster.StartAgent(t, testcluster.AgentConfig{Name: "genuine", Register: node, AdminKey: node.Config.AdminKey})
	tg.waitSuccess(tg.startGenuine(), genuineTimeout)
	return tg
}

// startGenuine queues a script on the genuine agent and returns its task.
func (tg *target) startGenuine() string {
	tg.t.Helper()
	tk, err := tg.node.Client.CreateTask(testcluster.Context(tg.t, 10*time.Second), "AdHocScript",
		map[string]any{"ScriptBody": "echo genuine", "Syntax": "Bash", "MachineIds": []string{tg.genuine.MachineID}})
	if err != nil {
		tg.t.Fatalf("queueing the genuine agent's script: %v", err)
	}
	return tk.Id
}

// waitSuccess waits until the task has ended and fails the test unless it
// ended Success; it fails the test after timeout, or at once if the node
// has exited.
func (tg *target) waitSuccess(id string, timeout time.Duration) {
	tg.t.Helper()
	var tk client.Task
	testcluster.Eventually(tg.t, timeout, func() error {
		tg.alive()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		if tk, err = tg.node.Client.Task(ctx, id); err != nil {
			return err
		}
		if !tk.IsCompleted {
			return fmt.Errorf("task %s is %s", id, tk.State)
		}
		return nil
	})
	if tk.State != "Success" {
		tg.t.Fatalf("task %s ended %s: %s", id, tk.State, tk.ErrorMessage)
	}
}

// alive fails the test if the node has exited, saying why.
func (tg *target) alive() {
	tg.t.Helper()
	if rss, killed := tg.sampler.Killed(); killed {
		tg.t.Fatalf("the node's resident memory reached %s: it was killed, past the %s the suite allows any node",
			testcluster.MiB(rss), testcluster.MiB(memoryCeiling))
	}
	if tg.node.Exited() {
		tg.t.Fatalf("the node exited: %v", tg.node.ExitErr())
	}
}

// taskLogBytes returns the size of a task's log in shared storage: the
// sum of its segments.
func (tg *target) taskLogBytes(id string) int64 {
	tg.t.Helper()
	segments, _ := filepath.Glob(filepath.Join(tg.storage, "tasklogs", fmt.Sprint(testcluster.TaskNumber(tg.t, id)), "*.log"))
	var total int64
	for _, s := range segments {
		total += max(testcluster.FileSize(s), 0)
	}
	return total
}

// readTimeout bounds a read of the API that may answer a lot.
const readTimeout = time.Minute

// get sends a GET of the API's path with the administrator's key and
// returns the answer, which is an error unless its status is 200.
func (tg *target) get(path string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, tg.node.URL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Octopus-ApiKey", tg.node.Config.AdminKey)
	resp, err := (&http.Client{Timeout: readTimeout}).Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s %s", path, resp.Status, b)
	}
	return resp, nil
}

// attack measures the node over one attack, from begin to end, while the
// genuine agent runs a script.
type attack struct {
	tg      *target
	name    string
	before  testcluster.Memory
	files   int
	start   time.Time
	pinger  *testcluster.Pinger
	genuine string // the genuine agent's task
	done    bool   // whether the genuine script was seen to end
	// pingBound is what the ping's 99th percentile must stay under:
	// maxPingP99 over the baseline's.
	pingBound time.Duration
}

// begin starts measuring an attack: the node's resident memory now (and
// its peak reset to it), its open files, its ping; and it queues the
// genuine agent's script.
func (tg *target) begin(name string) *attack {
	tg.t.Helper()
	base := testcluster.StartPinger(tg.t, tg.node, pingEvery) // first: it may build its probe
	time.Sleep(baselineFor)
	baseline := base.Stop()
	if baseline.Failures > 0 || baseline.Samples == 0 {
		tg.t.Fatalf("before %s, the ping failed: %v", name, baseline)
	}
	tg.t.Logf("before %s: %v", name, baseline)
	pinger := testcluster.StartPinger(tg.t, tg.node, pingEvery)
	pid := tg.node.Pid()
	if err := testcluster.ResetPeakMemory(pid); err != nil {
		tg.t.Fatalf("resetting the node's peak resident memory: %v", err)
	}
	before, err := testcluster.ReadMemory(pid)
	if err != nil {
		tg.t.Fatal(err)
	}
	files, err := testcluster.OpenFiles(pid)
	if err != nil {
		tg.t.Fatal(err)
	}
	tg.sampler.Reset()
	return &attack{tg: tg, name: name, before: before, files: files, start: time.Now(), pinger: pinger, genuine: tg.startGenuine(),
		pingBound: maxPingP99 + baseline.P99}
}

// genuineDone waits until the genuine agent's script has ended Success; an
// attack calls it while it still holds the node, where it can.
func (a *attack) genuineDone() {
	a.tg.t.Helper()
	if !a.done {
		a.tg.waitSuccess(a.genuine, genuineTimeout)
		a.done = true
	}
}

// figures are the measurements of one attack.
type figures struct {
	before testcluster.Memory
	peak   int64 // the most resident memory over the attack (VmHWM)
	growth int64 // peak less the resident memory before
	ping   testcluster.PingStats
	files  int // open files before the attack
	most   int // the most open files sampled over it
}

// end waits for the genuine agent's script, stops the measurements, logs
// the figures and fails the test if the node passed a limit: its resident
// memory grew by maxGrowth or more, a ping failed, or their 99th percentile
// reached pingBound.
func (a *attack) end() figures {
	t := a.tg.t
	t.Helper()
	a.genuineDone()
	ping := a.pinger.Stop()
	a.tg.alive()
	mem, err := testcluster.ReadMemory(a.tg.node.Pid())
	if err != nil {
		t.Fatal(err)
	}
	most := a.tg.sampler.MostOpenFiles()
	f := figures{before: a.before, peak: mem.Peak, growth: mem.Peak - a.before.RSS, ping: ping, files: a.files, most: most}
	t.Logf("%s (%v): resident memory %s before, %s at most (growth %s); %v; open files %d before, %d at most",
		a.name, time.Since(a.start).Round(time.Millisecond), testcluster.MiB(f.before.RSS), testcluster.MiB(f.peak),
		testcluster.MiB(f.growth), ping, f.files, f.most)
	if f.growth >= maxGrowth {
		t.Errorf("%s: the node's resident memory grew by %s, want less than %s", a.name, testcluster.MiB(f.growth), testcluster.MiB(maxGrowth))
	}
	if ping.Failures > 0 {
		t.Errorf("%s: %d calls of the ping failed; the first %s", a.name, ping.Failures, ping.Failure)
	}
	if ping.Samples == 0 || ping.P99 >= a.pingBound {
		t.Errorf("%s: the ping's 99th percentile is %v over %d answers, want under %v (%v over the baseline's)", a.name, ping.P99, ping.Samples, a.pingBound, maxPingP99)
	}
	return f
}

// count tallies the outcomes of an attack's requests, such as "413" or
// "connection reset".
type count struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *count) add(outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[outcome]++
}

func (c *count) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.m)
}

// files lists the regular files under dir, for messages.
func files(dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, path)
		}
		return nil
	})
	return out
}
