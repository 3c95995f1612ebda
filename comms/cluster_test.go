package comms_test

// Tests of agent traffic across real cuttle server processes on one
// PostgreSQL database, with real agent processes: polling through any node
// or a load balancer while nodes die, listening agents reached by the node
// that runs the task, a task's owner killed mid-script, refusals, file
// transfer with a cut connection, health checks, and the official Go
// client (DESIGN.md, Invariants 2, 3 and 6).

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/environments"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/machines"

	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

func TestMain(m *testing.M) { os.Exit(testcluster.RunWithPostgres(m)) }

func pollAddr(n *testcluster.Node) string { return "127.0.0.1:" + strconv.Itoa(n.PollingPort) }

// pollAddrs returns every node's polling address.
func pollAddrs(c *testcluster.Cluster) []string {
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, pollAddr(n))
	}
	return addrs
}

// runScript queues an AdHocScript on the machines through cl and waits for
// it to end; it fails the test unless it ends Success, and returns the
// task and its log.
func runScript(t *testing.T, cl *client.Client, body string, timeout time.Duration, machineIDs ...string) (client.Task, string) {
	t.Helper()
	ctx := testcluster.Context(t, timeout+10*time.Second)
	tk, err := cl.CreateTask(ctx, "AdHocScript", map[string]any{"ScriptBody": body, "Syntax": "Bash", "MachineIds": machineIDs})
	if err != nil {
		t.Fatal(err)
	}
	tk = testcluster.WaitTask(t, cl, tk.Id, timeout, "Success", "Failed", "Canceled", "TimedOut")
	log, err := testcluster.TaskLog(ctx, cl, tk.Id)
	if err != nil {
		t.Fatal(err)
	}
	if tk.State != "Success" {
		t.Fatalf("task %s on %s ended %s (%s):\n%s", tk.Id, tk.ServerNode, tk.State, tk.ErrorMessage, log)
	}
	return tk, log
}

// TestAgentPollingOneNode: an agent that polls only node-b runs the script
// of a task that node-a owns (node-b has no task cap): the command reaches
// it through the database, not through node-a's memory.
func TestAgentPollingOneNode(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 0)
	a, b := c.Nodes[0], c.Nodes[1]
	ag := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: b, AdminKey: c.AdminKey, Poll: []string{pollAddr(b)}})
	// A NUL in the output (find -print0) is kept as U+FFFD: PostgreSQL
	// stores no NUL, and the report must not be refused for it.
	tk, log := runScript(t, a.Client, "echo hello from $CUTTLE_COMMAND_ID; printf 'nul\\0byte\\n'", 30*time.Second, ag.MachineID)
	if tk.ServerNode != "node-a" || !strings.Contains(log, "[web-1] hello from ") || !strings.Contains(log, "nul\uFFFDbyte") {
		t.Errorf("task ran on %s with log:\n%s\nwant node-a and the agent's output", tk.ServerNode, log)
	}
	if !strings.Contains(b.Log(), "handed out a command") || strings.Contains(a.Log(), "handed out a command") {
		t.Errorf("the command was not handed out by node-b alone")
	}
}

// TestAgentPollsEveryNodeWhileOneDies: an agent that polls all three nodes
// keeps running scripts while each node in turn is killed.
func TestAgentPollsEveryNodeWhileOneDies(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 5, 5)
	addrs := pollAddrs(c)
	ag := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: c.Nodes[0], AdminKey: c.AdminKey, Poll: addrs})
	runScript(t, c.Nodes[0].Client, "echo warm", 30*time.Second, ag.MachineID)
	for i, victim := range c.Nodes {
		victim.Kill()
		live := c.Nodes[(i+1)%len(c.Nodes)]
		start := time.Now()
		_, log := runScript(t, live.Client, fmt.Sprintf("echo round %d", i), 30*time.Second, ag.MachineID)
		if !strings.Contains(log, fmt.Sprintf("round %d", i)) {
			t.Errorf("round %d: the log lacks the script's output:\n%s", i, log)
		}
		t.Logf("with %s killed, a script ran in %v", victim.Config.Name, time.Since(start))
		if err := victim.Start(); err != nil {
			t.Fatal(err)
		}
		if err := victim.WaitServing(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAgentThroughBalancer: an agent that polls one TCP load balancer in
// front of the nodes keeps working while nodes behind it die.
func TestAgentThroughBalancer(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 5, 5)
	addrs := pollAddrs(c)
	lb := testcluster.NewBalancer(t, addrs...)
	ag := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: c.Nodes[0], AdminKey: c.AdminKey, Poll: []string{lb.Addr()}})
	runScript(t, c.Nodes[2].Client, "echo before", 30*time.Second, ag.MachineID)
	for i, victim := range c.Nodes[:2] {
		victim.Kill()
		_, log := runScript(t, c.Nodes[2].Client, fmt.Sprintf("echo after %d", i), 30*time.Second, ag.MachineID)
		if !strings.Contains(log, fmt.Sprintf("after %d", i)) {
			t.Errorf("after killing %s, the log lacks the output:\n%s", victim.Config.Name, log)
		}
	}
}

// markerRE reads the lines of the long script: "tick N".
var markerRE = regexp.MustCompile(`\[web-1\] tick (\d+)`)

// TestAgentOwnerKilledMidScript: the node that owns a task is killed in the
// middle of a 10-second script on an agent; the script runs to its end
// once, its whole output is in the task's log once, in order, and the task
// ends Success on another node (Invariants 3 and 6).
func TestAgentOwnerKilledMidScript(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 5, 5)
	addrs := pollAddrs(c)
	ag := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: c.Nodes[0], AdminKey: c.AdminKey, Poll: addrs})
	runs := filepath.Join(t.TempDir(), "runs")
	script := fmt.Sprintf(`echo run >> %q
for i in $(seq 1 20); do echo "tick $i"; sleep 0.5; done`, runs)
	ctx := testcluster.Context(t, 2*time.Minute)
	tk, err := c.Nodes[0].Client.CreateTask(ctx, "AdHocScript", map[string]any{"ScriptBody": script, "Syntax": "Bash", "MachineIds": []string{ag.MachineID}})
	if err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 20*time.Second, func() error {
		log, err := testcluster.TaskLog(ctx, c.Nodes[0].Client, tk.Id)
		if err != nil || !strings.Contains(log, "tick 5") {
			return fmt.Errorf("the script has not reached tick 5 (%v)", err)
		}
		return nil
	})
	owner := testcluster.WaitTask(t, c.Nodes[0].Client, tk.Id, time.Second, "Executing").ServerNode
	var victim, other *testcluster.Node
	for _, n := range c.Nodes {
		if n.Config.Name == owner {
			victim = n
		} else if other == nil {
			other = n
		}
	}
	victim.Kill()
	killed := time.Now()
	done := testcluster.WaitTask(t, other.Client, tk.Id, 40*time.Second, "Success", "Failed", "Canceled")
	log, _ := testcluster.TaskLog(ctx, other.Client, tk.Id)
	if done.State != "Success" || done.ServerNode == owner {
		t.Fatalf("after killing %s the task ended %s on %s (%s):\n%s", owner, done.State, done.ServerNode, done.ErrorMessage, log)
	}
	t.Logf("killed %s at tick 5+; the task ended Success on %s %v later", owner, done.ServerNode, time.Since(killed))
	var ticks []int
	for _, m := range markerRE.FindAllStringSubmatch(log, -1) {
		n, _ := strconv.Atoi(m[1])
		ticks = append(ticks, n)
	}
	if len(ticks) != 20 {
		t.Errorf("the log has %d tick lines, want 20 once each:\n%s", len(ticks), log)
	}
	for i, n := range ticks {
		if n != i+1 {
			t.Errorf("tick line %d is tick %d: out of order or repeated", i+1, n)
			break
		}
	}
	if b, _ := os.ReadFile(runs); strings.Count(string(b), "run") != 1 {
		t.Errorf("the script ran %d times, want once", strings.Count(string(b), "run"))
	}
}

// TestListeningAgentReachedByOwner: a listening agent is reached by
// whichever node runs the task.
func TestListeningAgentReachedByOwner(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 0)
	a := c.Nodes[0]
	ag := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "db-1", Listening: true, Register: a, AdminKey: c.AdminKey})
	if tk, log := runScript(t, a.Client, "echo one", 30*time.Second, ag.MachineID); tk.ServerNode != "node-a" || !strings.Contains(log, "[db-1] one") {
		t.Fatalf("first task on %s:\n%s", tk.ServerNode, log)
	}
	ctx := testcluster.Context(t, 10*time.Second)
	for name, taskCap := range map[string]int{"node-a": 0, "node-b": 5} {
		if err := testcluster.SetTaskCap(ctx, a.Client, name, taskCap); err != nil {
			t.Fatal(err)
		}
	}
	if tk, log := runScript(t, a.Client, "echo two", 30*time.Second, ag.MachineID); tk.ServerNode != "node-b" || !strings.Contains(log, "[db-1] two") {
		t.Fatalf("second task on %s:\n%s", tk.ServerNode, log)
	}
	for _, n := range c.Nodes {
		if !strings.Contains(n.Log(), "connected to the listening agent") {
			t.Errorf("%s never connected to the listening agent", n.Config.Name)
		}
	}
}

// TestAgentRefusals: an agent whose certificate the cluster does not know,
// a server whose certificate the agent does not trust, a wrong API key at
// registration, and a file path that leads out of the agent's work folder
// are each refused with a clear error, logged, and nothing runs.
func TestAgentRefusals(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5)
	n := c.Nodes[0]
	cuttle := testcluster.Binary(t)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(cuttle, args...).CombinedOutput()
		return string(out), err
	}

	// A wrong API key at registration: refused, nothing registered.
	home := t.TempDir()
	if out, err := run("agent", "configure", "--home", home, "--polling", "--name", "stranger"); err != nil {
		t.Fatalf("configure: %v\n%s", err, out)
	}
	out, err := run("agent", "register", "--home", home, "--server", n.URL, "--api-key", "API-"+strings.Repeat("X", 26),
		"--environment", "Test", "--role", "web", "--address", pollAddr(n))
	if err == nil || !strings.Contains(out, "401") {
		t.Errorf("register with a wrong key: %v\n%s\nwant a refusal naming 401", err, out)
	}
	ms, err := n.Client.Machines(testcluster.Context(t, 5*time.Second))
	if err != nil || len(ms) != 0 {
		t.Errorf("after the refused registration the cluster has machines %v (%v)", ms, err)
	}

	// An agent the cluster does not know: it trusts the cluster, but was
	// never registered. The node refuses it in the handshake, and both log it.
	if out, err := run("agent", "poll-server", "--home", home, "--server", n.URL, "--api-key", c.AdminKey, "--address", pollAddr(n)); err != nil {
		t.Fatalf("poll-server: %v\n%s", err, out)
	}
	thumb, _ := run("agent", "show-thumbprint", "--home", home)
	thumb = strings.TrimSpace(thumb)
	stranger := exec.Command(cuttle, "agent", "run", "--home", home)
	var strangerLog logBuffer
	stranger.Stdout, stranger.Stderr = &strangerLog, &strangerLog
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stranger.Process.Kill(); stranger.Wait() })
	testcluster.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(n.Log(), "refused an agent connection") || !strings.Contains(n.Log(), thumb) {
			return fmt.Errorf("the node has not logged refusing %s", thumb)
		}
		if !strings.Contains(strings.ToLower(strangerLog.String()), "refused") {
			return fmt.Errorf("the agent has not logged the refusal:\n%s", strangerLog.String())
		}
		return nil
	})

	t.Logf("the node says: %s", firstLine(n.Log(), "refused an agent connection"))
	t.Logf("the unknown agent says: %s", firstLine(strangerLog.String(), "refused"))

	// A server the agent does not trust: a registered agent whose trusted
	// thumbprint is not the cluster's never polls it, and says why.
	ag := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: n, AdminKey: c.AdminKey})
	ag.Kill()
	cfgPath := filepath.Join(ag.Home, "agent.json")
	cfg, _ := os.ReadFile(cfgPath)
	clusterThumb := regexp.MustCompile(`"Thumbprint":\s*"([0-9A-F]{64})"`).FindSubmatch(cfg)
	if clusterThumb == nil {
		t.Fatalf("agent.json has no trusted thumbprint:\n%s", cfg)
	}
	wrong := strings.Repeat("AB", 32)
	os.WriteFile(cfgPath, []byte(strings.ReplaceAll(string(cfg), string(clusterThumb[1]), wrong)), 0o600)
	if err := ag.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := testcluster.Context(t, time.Minute)
	tk, err := n.Client.CreateTask(ctx, "Health", map[string]any{"MachineIds": []string{ag.MachineID}, "TimeoutSeconds": 3})
	if err != nil {
		t.Fatal(err)
	}
	testcluster.WaitTask(t, n.Client, tk.Id, 30*time.Second, "Success")
	testcluster.Eventually(t, 10*time.Second, func() error {
		if log := ag.Log(); !strings.Contains(log, string(clusterThumb[1])) || !strings.Contains(log, "trust") {
			return fmt.Errorf("the agent has not logged that it does not trust %s:\n%s", clusterThumb[1], log)
		}
		return nil
	})
	t.Logf("the untrusting agent says: %s", firstLine(ag.Log(), "trust"))
	if m := machineHealth(t, n.Client, ag.MachineID); m != "Unavailable" {
		t.Errorf("the agent that does not trust the cluster is %s, want Unavailable", m)
	}
	ag.Kill()
	os.WriteFile(cfgPath, cfg, 0o600)
	if err := ag.Start(); err != nil {
		t.Fatal(err)
	}

	// A file command whose path leads out of the work folder through a
	// symlink: the command fails saying so, nothing is written outside.
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(ag.Home, "work", "escape")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(c.Storage, "packages", "app.txt"), []byte("payload"), 0o644)
	tk, err = n.Client.CreateTask(ctx, "TransferFile", map[string]any{"Source": "packages/app.txt", "Destination": "escape/app.txt", "MachineIds": []string{ag.MachineID}})
	if err != nil {
		t.Fatal(err)
	}
	tk = testcluster.WaitTask(t, n.Client, tk.Id, 30*time.Second, "Success", "Failed")
	log, _ := testcluster.TaskLog(ctx, n.Client, tk.Id)
	if tk.State != "Failed" || !strings.Contains(log, "work folder") {
		t.Errorf("a transfer through a symlink out of the work folder ended %s:\n%s", tk.State, log)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the refused transfer wrote %v outside the work folder", entries)
	}
	if !strings.Contains(ag.Log(), "escape/app.txt") {
		t.Errorf("the agent did not log the refused path")
	}
	// And one the API can tell at once.
	_, err = n.Client.CreateTask(ctx, "TransferFile", map[string]any{"Source": "packages/app.txt", "Destination": "../app.txt", "MachineIds": []string{ag.MachineID}})
	if e, ok := err.(*client.Error); !ok || e.Status != 400 {
		t.Errorf("a transfer to ../app.txt: %v, want 400", err)
	}
}

// firstLine returns the first line of log that holds substr.
func firstLine(log, substr string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return ""
}

// machineHealth returns a machine's HealthStatus.
func machineHealth(t *testing.T, cl *client.Client, id string) string {
	t.Helper()
	m, err := cl.Machine(testcluster.Context(t, 5*time.Second), id)
	if err != nil {
		t.Fatal(err)
	}
	return string(m.HealthStatus)
}

// TestHealthCheck: a health check marks a running agent Healthy and a
// stopped one Unavailable, polling and listening alike.
func TestHealthCheck(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5)
	n := c.Nodes[0]
	up := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "up", Register: n, AdminKey: c.AdminKey})
	down := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "down", Register: n, AdminKey: c.AdminKey})
	upL := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "up-listening", Listening: true, Register: n, AdminKey: c.AdminKey})
	downL := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "down-listening", Listening: true, Register: n, AdminKey: c.AdminKey})
	down.Kill()
	downL.Kill()
	ctx := testcluster.Context(t, time.Minute)
	tk, err := n.Client.CreateTask(ctx, "Health", map[string]any{"TimeoutSeconds": 3})
	if err != nil {
		t.Fatal(err)
	}
	tk = testcluster.WaitTask(t, n.Client, tk.Id, 30*time.Second, "Success", "Failed")
	log, _ := testcluster.TaskLog(ctx, n.Client, tk.Id)
	if tk.State != "Success" {
		t.Fatalf("the health check ended %s (%s):\n%s", tk.State, tk.ErrorMessage, log)
	}
	for ag, want := range map[*testcluster.Agent]string{up: "Healthy", upL: "Healthy", down: "Unavailable", downL: "Unavailable"} {
		if got := machineHealth(t, n.Client, ag.MachineID); got != want {
			t.Errorf("%s is %s, want %s; log:\n%s", ag, got, want, log)
		}
	}
	if !strings.Contains(log, "2 Healthy, 2 Unavailable") {
		t.Errorf("the health check's log does not sum up the findings:\n%s", log)
	}
}

// TestScheduledHealthFollowsThePolicy: with the leader looking every
// second, a new machine is checked by the next scheduled health check, and
// a machine checked already is not checked again before its machine
// policy's interval (the default policy's hour) has passed.
func TestScheduledHealthFollowsThePolicy(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, map[string]time.Duration{"HealthCheckIntervalSeconds": time.Second}, 5)
	n := c.Nodes[0]
	healthy := func(ag *testcluster.Agent) {
		testcluster.Eventually(t, 30*time.Second, func() error {
			if got := machineHealth(t, n.Client, ag.MachineID); got != "Healthy" {
				return fmt.Errorf("%s is %s", ag, got)
			}
			return nil
		})
	}
	first := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "first", Register: n, AdminKey: c.AdminKey})
	healthy(first)
	second := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "second", Register: n, AdminKey: c.AdminKey})
	healthy(second)
	time.Sleep(3 * time.Second) // three more scheduled looks

	ctx := testcluster.Context(t, time.Minute)
	tasks, _, err := n.Client.Tasks(ctx, []string{"Success"}, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	checked := map[string]int{}
	var looks int
	for _, tk := range tasks {
		if tk.Name != "Health" {
			continue
		}
		looks++
		log, _ := testcluster.TaskLog(ctx, n.Client, tk.Id)
		for line := range strings.Lines(log) {
			for _, name := range []string{"first", "second"} {
				if strings.Contains(line, name) && strings.Contains(line, "Healthy:") {
					checked[name]++
				}
			}
		}
	}
	if looks < 3 || checked["first"] != 1 || checked["second"] != 1 {
		t.Errorf("in %d scheduled health checks, the machines were checked %v times; want each once", looks, checked)
	}
}

// TestFileTransferResumes: a 1 GiB file sent to an agent arrives with the
// right SHA-256; when every connection is cut in the middle, the transfer
// resumes where it was instead of starting again.
func TestFileTransferResumes(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5)
	n := c.Nodes[0]
	lb := testcluster.NewBalancer(t, pollAddr(n))
	ag := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: n, AdminKey: c.AdminKey, Poll: []string{lb.Addr()}})
	const size = 1 << 30
	src := filepath.Join(c.Storage, "packages", "big.bin")
	want := writeRandomFile(t, src, size)
	ctx := testcluster.Context(t, 5*time.Minute)
	tk, err := n.Client.CreateTask(ctx, "TransferFile", map[string]any{"Source": "packages/big.bin", "Destination": "big.bin", "MachineIds": []string{ag.MachineID}})
	if err != nil {
		t.Fatal(err)
	}
	testcluster.Eventually(t, 2*time.Minute, func() error {
		if got := lb.Bytes.Load(); got < size/3 {
			return fmt.Errorf("%d MiB relayed so far", got>>20)
		}
		return nil
	})
	cut := lb.Bytes.Load()
	lb.Sever()
	t.Logf("cut every connection after %d MiB", cut>>20)
	tk = testcluster.WaitTask(t, n.Client, tk.Id, 3*time.Minute, "Success", "Failed")
	log, _ := testcluster.TaskLog(ctx, n.Client, tk.Id)
	if tk.State != "Success" || !strings.Contains(log, "resumed 1 time(s)") && !strings.Contains(log, "resumed 2 time(s)") {
		t.Fatalf("the transfer ended %s:\n%s", tk.State, log)
	}
	if total := lb.Bytes.Load(); total > size+size/2 {
		t.Errorf("%d MiB relayed for a 1 GiB file: the transfer started again instead of resuming", total>>20)
	}
	got, err := digest(filepath.Join(ag.Home, "work", "big.bin"))
	if err != nil || got != want {
		t.Errorf("the received file's SHA-256 is %s (%v), want %s", got, err, want)
	}
	t.Logf("relayed %d MiB in all; %s", lb.Bytes.Load()>>20, strings.TrimSpace(log[strings.LastIndex(log, "web-1"):]))
}

// writeRandomFile writes size pseudo-random bytes to path and returns their SHA-256.
func writeRandomFile(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(i*7 + i>>8)
	}
	for written := int64(0); written < size; written += int64(len(block)) {
		block[0], block[1] = byte(written>>20), byte(written>>28) // no two blocks alike
		f.Write(block)
		h.Write(block)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func digest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), err
}

// TestOfficialClientAgainstCluster: the official Go client creates an
// environment, lists machines, and reads and updates a registered agent's
// machine, through different nodes of a cluster.
func TestOfficialClientAgainstCluster(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 5)
	ag := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: c.Nodes[0], AdminKey: c.AdminKey})
	runScript(t, c.Nodes[0].Client, "true", 30*time.Second, ag.MachineID)
	oc := func(n *testcluster.Node) *octoclient.Client {
		u, _ := url.Parse(n.URL)
		cl, err := octoclient.NewClient(nil, u, c.AdminKey, "Spaces-1")
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	a, b := oc(c.Nodes[0]), oc(c.Nodes[1])
	env, err := a.Environments.Add(environments.NewEnvironment("Production"))
	if err != nil {
		t.Fatal(err)
	}
	list, err := b.Machines.GetAll()
	if err != nil || len(list) != 1 || list[0].GetID() != ag.MachineID {
		t.Fatalf("Machines.GetAll through node-b: %v, %v", list, err)
	}
	m, err := b.Machines.GetByID(ag.MachineID)
	if err != nil {
		t.Fatal(err)
	}
	ep, ok := m.Endpoint.(*machines.PollingTentacleEndpoint)
	if !ok || !strings.HasPrefix(ep.URI.String(), "poll://") || len(ep.Thumbprint) != 64 {
		t.Fatalf("the agent's endpoint: %#v", m.Endpoint)
	}
	m.EnvironmentIDs = append(m.EnvironmentIDs, env.GetID())
	m.Roles = []string{"web", "api"}
	if _, err := b.Machines.Update(m); err != nil {
		t.Fatal(err)
	}
	got, err := machines.GetByID(a, "Spaces-1", ag.MachineID)
	if err != nil || len(got.EnvironmentIDs) != 2 || strings.Join(got.Roles, ",") != "web,api" {
		t.Fatalf("the updated machine through node-a: %+v, %v", got, err)
	}
	// The agent still works after the update (its endpoint is unchanged).
	runScript(t, c.Nodes[1].Client, "echo still here", 30*time.Second, ag.MachineID)
}

// TestAgentScriptCancel: cancelling, through another node, a task whose
// script runs on an agent stops the script's whole process tree on the
// agent, and the task ends Canceled.
func TestAgentScriptCancel(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 0)
	ag := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: c.Nodes[0], AdminKey: c.AdminKey})
	pids := filepath.Join(t.TempDir(), "pids")
	ctx := testcluster.Context(t, time.Minute)
	tk, err := c.Nodes[0].Client.CreateTask(ctx, "AdHocScript", map[string]any{"Syntax": "Bash", "MachineIds": []string{ag.MachineID},
		"ScriptBody": fmt.Sprintf("sleep 300 &\necho \"$$ $!\" > %q\necho started\nwait", pids)})
	if err != nil {
		t.Fatal(err)
	}
	var shell, child int
	testcluster.Eventually(t, 20*time.Second, func() error {
		b, err := os.ReadFile(pids)
		if err != nil {
			return err
		}
		_, err = fmt.Sscan(string(b), &shell, &child)
		return err
	})
	start := time.Now()
	if _, err := c.Nodes[1].Client.CancelTask(ctx, tk.Id); err != nil {
		t.Fatal(err)
	}
	tk = testcluster.WaitTask(t, c.Nodes[1].Client, tk.Id, 20*time.Second, "Canceled", "Failed", "Success")
	if tk.State != "Canceled" {
		t.Fatalf("the cancelled task ended %s (%s)", tk.State, tk.ErrorMessage)
	}
	t.Logf("Canceled %v after the cancel", time.Since(start))
	testcluster.Eventually(t, 5*time.Second, func() error {
		if testcluster.ProcessAlive(shell) || testcluster.ProcessAlive(child) {
			return fmt.Errorf("the script's shell (%d) or its child (%d) still runs", shell, child)
		}
		return nil
	})
}

// TestStoppedAgentFailsTheScript: a script for an agent that is not running
// fails once the pickup timeout has passed, saying so, and its command is
// withdrawn: the agent, started again, does not run it.
func TestStoppedAgentFailsTheScript(t *testing.T) {
	t.Parallel()
	c := testcluster.NewCluster(t, testcluster.SharedPostgres(t).NewDatabase(t))
	n := c.StartNode("node-a", "--agent-pickup-timeout", "2s")
	ag := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: n, AdminKey: c.AdminKey})
	ag.Kill()
	ran := filepath.Join(t.TempDir(), "ran")
	ctx := testcluster.Context(t, time.Minute)
	tk, err := n.Client.CreateTask(ctx, "AdHocScript", map[string]any{"ScriptBody": "touch " + ran, "Syntax": "Bash", "MachineIds": []string{ag.MachineID}})
	if err != nil {
		t.Fatal(err)
	}
	tk = testcluster.WaitTask(t, n.Client, tk.Id, 20*time.Second, "Failed", "Success")
	if tk.State != "Failed" || !strings.Contains(tk.ErrorMessage, "did not take the command within 2s") {
		t.Fatalf("a script for a stopped agent ended %s: %q", tk.State, tk.ErrorMessage)
	}
	if err := ag.Start(); err != nil {
		t.Fatal(err)
	}
	runScript(t, n.Client, "echo back", 30*time.Second, ag.MachineID) // the agent polls again
	if _, err := os.Stat(ran); err == nil {
		t.Error("the withdrawn command ran when the agent came back")
	}
}
