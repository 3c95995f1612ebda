package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/masterkey"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds cmd/cuttle once per test process and returns its path. It
// finds the cuttle module through `go list`, so it works from any module that
// requires cuttle (such as bench/) as well as from cuttle's own packages.
func Binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() { buildPath, buildErr = build("./cmd/cuttle", "cuttle") })
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildPath
}

// binDir is the temporary folder of the test process's builds.
var binDir struct {
	once sync.Once
	path string
	err  error
}

// build builds the command pkg of the cuttle module (a path such as
// ./cmd/cuttle) as name into the test process's temporary folder of builds,
// and returns its path.
func build(pkg, name string) (string, error) {
	binDir.once.Do(func() { binDir.path, binDir.err = os.MkdirTemp("", "cuttle-bin-") })
	if binDir.err != nil {
		return "", binDir.err
	}
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cuttledeploy/cuttle").Output()
	if err != nil {
		return "", fmt.Errorf("finding the cuttle module: go list -m: %v", err)
	}
	path := filepath.Join(binDir.path, name)
	cmd := exec.Command("go", "build", "-o", path, pkg)
	cmd.Dir = strings.TrimSpace(string(dir))
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, msg)
	}
	return path, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that it has not returned before in this process.
func FreePort(tb testing.TB) int {
	tb.Helper()
	givenMu.Lock()
	defer givenMu.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		// The kernel may hand out a port again once it is closed: two
		// nodes of this process started together would then both be
		// given it (one node's API port, another's polling port).
		if !given[port] {
			given[port] = true
			return port
		}
	}
}

// given holds the ports FreePort returned in this process.
var (
	givenMu sync.Mutex
	given   = map[int]bool{}
)

// NodeConfig configures one cuttle server process.
type NodeConfig struct {
	Name      string
	DB        string // PostgreSQL URL; empty: embedded SQLite
	MasterKey string
	AdminKey  string
	Storage   string
	DataDir   string   // default: a fresh temporary folder
	TaskCap   *int     // nil: the server's default
	Args      []string // further flags
	// Env holds KEY=VALUE settings of the process's environment, such as
	// CUTTLE_MASTER_KEY; the test's own CUTTLE_ variables never reach it.
	Env []string
}

// Node is one cuttle server process started by the harness.
type Node struct {
	Config      NodeConfig
	Port        int
	URL         string // http://127.0.0.1:PORT
	PollingPort int    // where polling agents connect (--polling-listen)
	Client      *client.Client

	tb testing.TB
	process
}

// NewNode prepares a cuttle server process without starting it. The process
// is killed when the test ends; its log is printed if the test failed.
func NewNode(tb testing.TB, cfg NodeConfig) *Node {
	tb.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	n := &Node{Config: cfg, tb: tb,
		process: process{name: "node " + cfg.Name, logPath: filepath.Join(cfg.DataDir, "node.log"), env: cfg.Env}}
	n.choosePorts()
	tb.Cleanup(func() {
		n.Kill()
		if tb.Failed() {
			tb.Logf("log of node %s:\n%s", cfg.Name, tail(n.Log(), 60))
		}
	})
	return n
}

// StartNode starts a cuttle server and waits until its ping answers 200 or 418.
func StartNode(tb testing.TB, cfg NodeConfig) *Node {
	tb.Helper()
	n := NewNode(tb, cfg)
	// A port FreePort found free can be taken before the node binds it
	// (by another test's process, or as the local port of a connection):
	// then the node exits at once, and starts again on other ports.
	for attempt := 1; ; attempt++ {
		if err := n.Start(); err != nil {
			tb.Fatal(err)
		}
		err := n.WaitServing(30 * time.Second)
		if err == nil {
			return n
		}
		if attempt == 3 || !strings.Contains(n.Log(), "address already in use") {
			tb.Fatalf("node %s: %v\n%s", cfg.Name, err, tail(n.Log(), 40))
		}
		tb.Logf("node %s: a port was taken before it could bind it; starting it on other ports", cfg.Name)
		n.choosePorts()
	}
}

// choosePorts gives the node new free ports, and its URL and client.
func (n *Node) choosePorts() {
	n.Port, n.PollingPort = FreePort(n.tb), FreePort(n.tb)
	n.URL = "http://127.0.0.1:" + strconv.Itoa(n.Port)
	n.Client = &client.Client{BaseURL: n.URL, APIKey: n.Config.AdminKey, HTTP: &http.Client{Timeout: 5 * time.Second}}
}

// Args returns the command-line arguments of the node's server.
func (n *Node) Args() []string {
	c := n.Config
	args := []string{"server", "--listen", "127.0.0.1:" + strconv.Itoa(n.Port),
		"--polling-listen", "127.0.0.1:" + strconv.Itoa(n.PollingPort), "--data-dir", c.DataDir,
		"--node-name", c.Name, "--log-level", "debug", "--shutdown-grace", "5s"}
	if c.DB != "" {
		args = append(args, "--db", c.DB)
	}
	if c.MasterKey != "" {
		args = append(args, "--master-key", c.MasterKey)
	}
	if c.AdminKey != "" {
		args = append(args, "--admin-api-key", c.AdminKey)
	}
	if c.Storage != "" {
		args = append(args, "--storage", c.Storage)
	}
	if c.TaskCap != nil {
		args = append(args, "--task-cap", strconv.Itoa(*c.TaskCap))
	}
	return append(args, c.Args...)
}

// Start starts the process (again, after Kill or Terminate) without waiting for it to serve.
func (n *Node) Start() error { return n.start(Binary(n.tb), n.Args()...) }

// cleanEnv is the test's environment without CUTTLE_ variables, so that a
// developer's settings do not leak into the nodes.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CUTTLE_") {
			env = append(env, kv)
		}
	}
	return env
}

// PingResult is one answer of a node's ping route.
type PingResult struct {
	Status int
	Node   client.Node
	Term   int64 // the term the node leads, from its X-Cuttle-Leader-Term header; 0 if it does not lead
}

// Leading reports whether the node answered that it leads.
func (p PingResult) Leading() bool { return p.Node.Rank == cuttle.RankLeader }

// Ping calls the node's ping route.
func (n *Node) Ping() (PingResult, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(n.URL + "/api/octopusservernodes/ping")
	if err != nil {
		return PingResult{}, err
	}
	defer resp.Body.Close()
	res := PingResult{Status: resp.StatusCode}
	if t := resp.Header.Get("X-Cuttle-Leader-Term"); t != "" {
		res.Term, _ = strconv.ParseInt(t, 10, 64)
	}
	err = json.NewDecoder(resp.Body).Decode(&res.Node)
	return res, err
}

// WaitServing waits until the node has bound its ports and its ping
// answers 200 or 418, or the process exits. (A ping alone may be answered
// by another test's node that took the port FreePort found free before
// this node could bind it: this node then exits.)
func (n *Node) WaitServing(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(n.logSinceStart(), "cuttle server started") {
		if n.Exited() {
			return fmt.Errorf("node %s exited: %v", n.Config.Name, n.ExitErr())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s has not started listening within %v", n.Config.Name, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n.WaitPing(time.Until(deadline), http.StatusOK, http.StatusTeapot)
}

// WaitPing waits until ping answers one of the statuses.
func (n *Node) WaitPing(timeout time.Duration, statuses ...int) error {
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if n.Exited() {
			return fmt.Errorf("node %s exited: %v", n.Config.Name, n.ExitErr())
		}
		p, err := n.Ping()
		if err == nil {
			for _, s := range statuses {
				if p.Status == s {
					return nil
				}
			}
			last = strconv.Itoa(p.Status)
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("node %s: ping did not answer %v within %v (last: %s)", n.Config.Name, statuses, timeout, last)
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// Cluster is a set of nodes on one database, master key and storage.
type Cluster struct {
	DB        string
	MasterKey string
	AdminKey  string
	Storage   string
	Nodes     []*Node
	tb        testing.TB
	mu        sync.Mutex // guards Nodes for WatchLeaders
}

// NewCluster prepares a cluster on the PostgreSQL database at dbURL (empty:
// no shared database) without starting any node.
func NewCluster(tb testing.TB, dbURL string) *Cluster {
	return &Cluster{DB: dbURL, MasterKey: masterkey.Generate().String(), AdminKey: cuttle.NewAPIKey(), Storage: tb.TempDir(), tb: tb}
}

// StartNode starts one more node of the cluster, named name.
func (c *Cluster) StartNode(name string, args ...string) *Node {
	n := StartNode(c.tb, c.NodeConfig(name, args...))
	c.mu.Lock()
	c.Nodes = append(c.Nodes, n)
	c.mu.Unlock()
	return n
}

// NodeConfig returns the configuration of a node of this cluster.
func (c *Cluster) NodeConfig(name string, args ...string) NodeConfig {
	return NodeConfig{Name: name, DB: c.DB, MasterKey: c.MasterKey, AdminKey: c.AdminKey, Storage: c.Storage, Args: args}
}

// Leaders samples every running node's ping and returns the names of those
// that report themselves leader.
func (c *Cluster) Leaders() []string {
	var names []string
	for _, n := range c.nodes() {
		if n.Exited() {
			continue
		}
		if p, err := n.Ping(); err == nil && p.Leading() {
			names = append(names, n.Config.Name)
		}
	}
	return names
}

// WaitLeader waits until exactly one running node other than the excluded
// ones reports itself leader, and returns it.
func (c *Cluster) WaitLeader(timeout time.Duration, exclude ...*Node) (*Node, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var leaders []*Node
		for _, n := range c.nodes() {
			if n.Exited() || contains(exclude, n) {
				continue
			}
			if p, err := n.Ping(); err == nil && p.Leading() {
				leaders = append(leaders, n)
			}
		}
		if len(leaders) == 1 {
			return leaders[0], nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, fmt.Errorf("no single leader within %v (leaders now: %v)", timeout, c.Leaders())
}

func contains(nodes []*Node, n *Node) bool {
	for _, m := range nodes {
		if m == n {
			return true
		}
	}
	return false
}

// Eventually polls cond every 20 ms until it returns nil or timeout passes,
// then fails the test with cond's last error.
func Eventually(tb testing.TB, timeout time.Duration, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Context returns a context for one test step, bounded by timeout.
func Context(tb testing.TB, timeout time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	tb.Cleanup(cancel)
	return ctx
}
