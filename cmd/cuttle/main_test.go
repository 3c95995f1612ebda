package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/testcluster"
)

func TestMain(m *testing.M) { os.Exit(testcluster.RunWithPostgres(m)) }

// cli runs a cuttle command in-process and returns its exit status and output.
func cli(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestClientCommands(t *testing.T) {
	pg := testcluster.SharedPostgres(t)
	c := testcluster.NewCluster(t, pg.NewDatabase(t))
	a := c.StartNode("alpha")
	b := c.StartNode("beta")
	env := map[string]string{"CUTTLE_SERVER": a.URL, "CUTTLE_API_KEY": c.AdminKey}

	code, out, errOut := cli(t, env, "node", "list")
	if code != 0 || !strings.Contains(out, "alpha") || !strings.Contains(out, "beta") || !strings.Contains(out, "TASK CAP") {
		t.Fatalf("node list: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli(t, env, "node", "drain", "beta", "--wait", "--output", "json")
	var n client.Node
	if code != 0 || json.Unmarshal([]byte(out), &n) != nil || !n.IsInMaintenanceMode {
		t.Fatalf("node drain --wait: %d\n%s%s", code, out, errOut)
	}
	if err := b.WaitPing(2*time.Second, 418); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut = cli(t, env, "node", "undrain", "beta"); code != 0 {
		t.Fatalf("node undrain: %d\n%s%s", code, out, errOut)
	}
	if err := b.WaitPing(2*time.Second, 200); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cli(t, env, "node", "set-cap", "beta", "0", "--output", "json")
	if code != 0 || json.Unmarshal([]byte(out), &n) != nil || n.MaxConcurrentTasks != 0 {
		t.Fatalf("node set-cap: %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut = cli(t, env, "node", "set-cap", "beta", "--", "-3"); code == 0 || !strings.Contains(errOut, "MaxConcurrentTasks") {
		t.Fatalf("node set-cap -3: %d %s; want a failure that names the rule", code, errOut)
	}
	if code, _, errOut = cli(t, env, "node", "remove", "beta"); code == 0 || !strings.Contains(errOut, "409") {
		t.Fatalf("node remove of an online node: %d %s; want refused with 409", code, errOut)
	}
	cert, err := a.Client.ClusterCertificate(testcluster.Context(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cli(t, env, "cluster", "set", "--heartbeat", "200ms", "--stale-timeout", "1s")
	if code != 0 || !regexp.MustCompile(`Stale timeout +1s\n`).MatchString(out) || !regexp.MustCompile(`Certificate thumbprint +`+cert.Thumbprint+`\n`).MatchString(out) {
		t.Fatalf("cluster set: %d\n%s%s", code, out, errOut)
	}
	b.Kill()
	testcluster.Eventually(t, 10*time.Second, func() error {
		_, _, err := cli(t, env, "node", "remove", "beta")
		if err != "" {
			return errorString(err)
		}
		return nil
	})
	code, out, errOut = cli(t, env, "cluster", "show", "--output", "json")
	var cl client.Cluster
	if code != 0 || json.Unmarshal([]byte(out), &cl) != nil || cl.NodeCount != 1 || cl.Servers[0].Name != "alpha" || cl.CertificateThumbprint != cert.Thumbprint {
		t.Fatalf("cluster show after removing beta: %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut = cli(t, map[string]string{"CUTTLE_API_KEY": "API-WRONGWRONGWRONGWRONGWRONG"}, "node", "list"); code != 1 || !strings.Contains(errOut, "401") {
		t.Fatalf("wrong API key: %d %s; want exit 1 naming 401", code, errOut)
	}
	if code, _, _ = cli(t, nil, "node", "frobnicate"); code != 2 {
		t.Fatalf("unknown subcommand: exit %d, want 2", code)
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// TestFirstStartPrintsAdminKeyOnce runs a node on the embedded database with
// no key given: it prints an administrator key that works, and a restart
// prints none.
func TestFirstStartPrintsAdminKeyOnce(t *testing.T) {
	t.Parallel()
	n := testcluster.StartNode(t, testcluster.NodeConfig{Name: "solo"})
	key := regexp.MustCompile(`API-[A-Z0-9]{20,}`).FindString(n.Log())
	if key == "" {
		t.Fatalf("no administrator key printed:\n%s", n.Log())
	}
	n.Client.APIKey = key
	if _, err := n.Client.Nodes(testcluster.Context(t, 5*time.Second)); err != nil {
		t.Fatalf("the printed key does not work: %v", err)
	}
	if err := n.Terminate(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	before := len(n.Log())
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitServing(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(n.Log()[before:], "API-") {
		t.Fatalf("a restart printed a key again:\n%s", n.Log()[before:])
	}
	info, err := os.Stat(n.Config.DataDir + "/master.key")
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("master key file: %v, %v; want mode 0600", info, err)
	}
}

// TestNodesStartTogetherOnEmptyDatabase starts three nodes at the same
// moment on an empty database: migrations run once, all three join.
func TestNodesStartTogetherOnEmptyDatabase(t *testing.T) {
	t.Parallel()
	pg := testcluster.SharedPostgres(t)
	c := testcluster.NewCluster(t, pg.NewDatabase(t))
	nodes := make([]*testcluster.Node, 3)
	for i := range nodes {
		nodes[i] = testcluster.NewNode(t, c.NodeConfig(string(rune('a'+i))))
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Start(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, n := range nodes {
		if err := n.WaitServing(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	all, err := nodes[0].Client.Nodes(testcluster.Context(t, 5*time.Second))
	if err != nil || len(all) != 3 {
		t.Fatalf("nodes after a simultaneous start: %v, %v", all, err)
	}
}

// TestFlagsFromEnvironment checks that every server flag has an environment
// variable and that --help lists it with its default.
func TestFlagsFromEnvironment(t *testing.T) {
	code, _, errOut := cli(t, nil, "server", "--help")
	if code != 0 {
		t.Fatalf("server --help: exit %d", code)
	}
	for _, want := range []string{"--data-dir  [$CUTTLE_DATA_DIR] (default \"./cuttle-data\")", "--db  [$CUTTLE_DB]", "--listen  [$CUTTLE_LISTEN] (default \":8080\")", "--polling-listen  [$CUTTLE_POLLING_LISTEN] (default \":10943\")", "[$CUTTLE_AGENT_PICKUP_TIMEOUT]",
		"[$CUTTLE_NODE_NAME]", "[$CUTTLE_TASK_CAP]", "[$CUTTLE_MASTER_KEY]", "[$CUTTLE_STORAGE]", "[$CUTTLE_PACKAGES]", "[$CUTTLE_ARTIFACTS]",
		"[$CUTTLE_TASK_LOGS]", "[$CUTTLE_ADMIN_API_KEY]", "--tls-cert  [$CUTTLE_TLS_CERT]", "--tls-key  [$CUTTLE_TLS_KEY]"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("server --help lacks %q", want)
		}
	}
	if code, _, errOut = cli(t, map[string]string{"CUTTLE_TASK_CAP": "lots"}, "server"); code == 0 || !strings.Contains(errOut, "CUTTLE_TASK_CAP") {
		t.Errorf("a bad CUTTLE_TASK_CAP: exit %d %s; want refused naming the variable", code, errOut)
	}
}

// TestServerTLSFlags: --tls-cert and --tls-key (or their variables) go
// together, and a file that cannot be read or a certificate and key that
// are not a pair stop the start with an error naming the files, before the
// data folder is made.
func TestServerTLSFlags(t *testing.T) {
	ca, dir := testcluster.NewCA(t), t.TempDir()
	cert, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.Issue(t, 1, cert, key)
	otherCert, otherKey := filepath.Join(dir, "other.crt"), filepath.Join(dir, "other.key")
	ca.Issue(t, 2, otherCert, otherKey)
	missing := filepath.Join(dir, "missing.key")
	data := filepath.Join(dir, "data")
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want []string // in the error
	}{
		{"only --tls-cert", nil, []string{"--tls-cert", cert}, []string{"--tls-cert and --tls-key go together"}},
		{"only $CUTTLE_TLS_KEY", map[string]string{"CUTTLE_TLS_KEY": key}, nil, []string{"--tls-cert and --tls-key go together"}},
		{"a key file missing", nil, []string{"--tls-cert", cert, "--tls-key", missing}, []string{missing, "no such file"}},
		{"a folder for a certificate", map[string]string{"CUTTLE_TLS_CERT": dir, "CUTTLE_TLS_KEY": key}, nil, []string{dir, "is a directory"}},
		{"not a pair", nil, []string{"--tls-cert", cert, "--tls-key", otherKey}, []string{cert, otherKey, "private key does not match"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, errOut := cli(t, c.env, append([]string{"server", "--data-dir", data, "--listen", "127.0.0.1:0", "--polling-listen", "127.0.0.1:0"}, c.args...)...)
			if code != 1 {
				t.Errorf("exit %d, want 1: %s", code, errOut)
			}
			for _, want := range c.want {
				if !strings.Contains(errOut, want) {
					t.Errorf("the error lacks %q: %s", want, errOut)
				}
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Errorf("a refused start made the data folder: %v", err)
			}
		})
	}
}

func TestTaskCommands(t *testing.T) {
	t.Parallel()
	n := testcluster.StartNode(t, testcluster.NodeConfig{Name: "solo", AdminKey: cuttle.NewAPIKey()})
	base := []string{"--server", n.URL, "--api-key", n.Config.AdminKey}
	script := filepath.Join(t.TempDir(), "ok.sh")
	os.WriteFile(script, []byte("echo working on $CUTTLE_SERVER_NODE\nsleep 0.2\necho finished\n"), 0o644)
	code, out, errOut := cli(t, nil, append([]string{"task", "run-script", "--file", script, "--wait"}, base...)...)
	if code != 0 || !strings.Contains(out, "working on solo") || !strings.Contains(out, "finished") || !strings.Contains(out, "Success") {
		t.Fatalf("run-script --wait of a good script: exit %d\n%s%s", code, out, errOut)
	}
	failing := filepath.Join(t.TempDir(), "bad.sh")
	os.WriteFile(failing, []byte("echo about to fail\nexit 4\n"), 0o644)
	code, out, errOut = cli(t, nil, append([]string{"task", "run-script", "--file", failing, "--wait"}, base...)...)
	if code != 1 || !strings.Contains(out, "about to fail") || !strings.Contains(errOut, "code 4") {
		t.Fatalf("run-script --wait of a failing script: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli(t, nil, append([]string{"task", "list", "--state", "Failed", "--output", "json"}, base...)...)
	var list []client.Task
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].State != "Failed" {
		t.Fatalf("task list --state Failed: exit %d\n%s%s", code, out, errOut)
	}
	id := list[0].Id
	if code, out, _ = cli(t, nil, append([]string{"task", "show", id}, base...)...); code != 0 || !strings.Contains(out, "The script exited with code 4.") {
		t.Fatalf("task show: exit %d\n%s", code, out)
	}
	if code, out, _ = cli(t, nil, append([]string{"task", "log", id}, base...)...); code != 0 || !strings.Contains(out, "about to fail") {
		t.Fatalf("task log: exit %d\n%s", code, out)
	}
	if code, _, errOut = cli(t, nil, append([]string{"task", "cancel", id}, base...)...); code != 1 || !strings.Contains(errOut, "409") {
		t.Fatalf("cancel of a finished task: exit %d %s; want refused with 409", code, errOut)
	}
	// A long task: follow its log from another command, cancel it, and the follower ends.
	long, err := n.Client.CreateTask(testcluster.Context(t, 5*time.Second), "AdHocScript", map[string]any{"ScriptBody": "echo started; sleep 60", "Syntax": "Bash"})
	if err != nil {
		t.Fatal(err)
	}
	followed := make(chan string, 1)
	go func() {
		_, out, _ := cli(t, nil, append([]string{"task", "log", long.Id, "--follow"}, base...)...)
		followed <- out
	}()
	testcluster.Eventually(t, 5*time.Second, func() error {
		log, err := testcluster.TaskLog(context.Background(), n.Client, long.Id)
		if err != nil || !strings.Contains(log, "started") {
			return fmt.Errorf("the script has not started (log %q, %v)", log, err)
		}
		return nil
	})
	if code, out, errOut = cli(t, nil, append([]string{"task", "cancel", long.Id}, base...)...); code != 0 {
		t.Fatalf("task cancel: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case out := <-followed:
		if !strings.Contains(out, "started") || !strings.Contains(out, "cancelled") {
			t.Fatalf("followed log: %s", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("task log --follow did not end after the task was cancelled")
	}
}

// TestMachineCommands: machine list and check, and run-script on agents
// chosen by name and by role, against a node with a real agent.
func TestMachineCommands(t *testing.T) {
	t.Parallel()
	c := testcluster.NewCluster(t, "")
	n := c.StartNode("solo")
	ag := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: n, AdminKey: c.AdminKey, Roles: []string{"web"}})
	base := []string{"--server", n.URL, "--api-key", c.AdminKey}
	code, out, errOut := cli(t, nil, append([]string{"machine", "check", "web-1"}, base...)...)
	if code != 0 || !strings.Contains(out, "Healthy") {
		t.Fatalf("machine check web-1: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli(t, nil, append([]string{"machine", "list"}, base...)...)
	if code != 0 || !strings.Contains(out, "web-1") || !strings.Contains(out, ag.MachineID) || !strings.Contains(out, "Healthy") {
		t.Fatalf("machine list: exit %d\n%s%s", code, out, errOut)
	}
	script := filepath.Join(t.TempDir(), "hi.sh")
	os.WriteFile(script, []byte("echo hi from $CUTTLE_COMMAND_ID\n"), 0o644)
	for _, target := range [][]string{{"--machine", "web-1"}, {"--role", "web", "--environment", "Test"}} {
		code, out, errOut = cli(t, nil, append(append([]string{"task", "run-script", "--file", script, "--wait"}, target...), base...)...)
		if code != 0 || !strings.Contains(out, "[web-1] hi from ") || !strings.Contains(out, "Success") {
			t.Errorf("run-script %v: exit %d\n%s%s", target, code, out, errOut)
		}
	}
	if code, _, errOut = cli(t, nil, append([]string{"task", "run-script", "--file", script, "--machine", "nope"}, base...)...); code != 1 || !strings.Contains(errOut, "nope") {
		t.Errorf("run-script on an unknown machine: exit %d %s", code, errOut)
	}
	ag.Kill()
	if code, out, _ = cli(t, nil, append([]string{"machine", "check", "web-1", "--timeout", "2s"}, base...)...); code != 1 || !strings.Contains(out, "Unavailable") {
		t.Errorf("machine check of a stopped agent: exit %d\n%s", code, out)
	}
}

// TestNodeScriptsSeeNoSettings: a node configured through its environment,
// as a service is, runs a script that prints its environment into the task
// log, which every API user can read: none of the node's settings or
// secrets are in it.
func TestNodeScriptsSeeNoSettings(t *testing.T) {
	t.Parallel()
	db := testcluster.SharedPostgres(t).NewDatabase(t)
	key, master := cuttle.NewAPIKey(), masterkey.Generate().String()
	n := testcluster.StartNode(t, testcluster.NodeConfig{Name: "env", Env: []string{
		"CUTTLE_DB=" + db, "CUTTLE_MASTER_KEY=" + master, "CUTTLE_ADMIN_API_KEY=" + key}})
	n.Client.APIKey = key
	task, err := n.Client.CreateTask(testcluster.Context(t, 5*time.Second), "AdHocScript", map[string]any{"ScriptBody": "env", "Syntax": "Bash"})
	if err != nil {
		t.Fatal(err)
	}
	testcluster.WaitTask(t, n.Client, task.Id, 20*time.Second, "Success")
	log, err := testcluster.TaskLog(testcluster.Context(t, 5*time.Second), n.Client, task.Id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "PATH=") || !strings.Contains(log, "CUTTLE_TASK_ID="+task.Id) {
		t.Fatalf("the script's environment lacks PATH or the task's id:\n%s", log)
	}
	for _, secret := range []string{db, master, key, "CUTTLE_DB", "CUTTLE_MASTER_KEY", "CUTTLE_ADMIN_API_KEY"} {
		if strings.Contains(log, secret) {
			t.Errorf("the task log shows the node's setting %s:\n%s", secret, log)
		}
	}
}
