package testcluster

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/client"
)

// AgentConfig configures one cuttle agent process.
type AgentConfig struct {
	Name string
	// Listening makes a listening agent on a free loopback port; otherwise
	// the agent polls.
	Listening bool
	// Register is the node whose API registers the agent (with the
	// cluster's admin key, AdminKey).
	Register *Node
	AdminKey string
	// Poll lists the host:port addresses a polling agent polls; default:
	// Register's polling port.
	Poll         []string
	Environments []string // names; created if missing; default "Test"
	Roles        []string // default "web"
	Args         []string // further flags of `cuttle agent run`
}

// Agent is one cuttle agent process started by the harness.
type Agent struct {
	Config     AgentConfig
	Home       string
	ListenPort int    // of a listening agent
	MachineID  string // Machines-N
	tb         testing.TB
	process
}

var machineIDRE = regexp.MustCompile(`Machines-\d+`)

// StartAgent configures an agent home, registers the agent through the
// API, adds its further polling addresses, and runs it. The process is
// killed when the test ends; its log is printed if the test failed.
func StartAgent(tb testing.TB, cfg AgentConfig) *Agent {
	tb.Helper()
	if len(cfg.Environments) == 0 {
		cfg.Environments = []string{"Test"}
	}
	if len(cfg.Roles) == 0 {
		cfg.Roles = []string{"web"}
	}
	home := tb.TempDir()
	a := &Agent{Config: cfg, Home: home, tb: tb, process: process{name: "agent " + cfg.Name, logPath: filepath.Join(home, "agent.log")}}
	tb.Cleanup(func() {
		a.Kill()
		if tb.Failed() {
			tb.Logf("log of agent %s:\n%s", cfg.Name, tail(a.Log(), 60))
		}
	})
	api := &client.Client{BaseURL: cfg.Register.URL, APIKey: cfg.AdminKey, HTTP: &http.Client{Timeout: 5 * time.Second}}
	for _, env := range cfg.Environments {
		err := api.Do(context.Background(), http.MethodPost, "/api/Spaces-1/environments", map[string]any{"Name": env}, nil)
		if e, ok := err.(*client.Error); err != nil && !(ok && e.Status == http.StatusConflict) {
			tb.Fatalf("creating environment %s: %v", env, err)
		}
	}
	configure := []string{"agent", "configure", "--home", home, "--name", cfg.Name}
	register := []string{"agent", "register", "--home", home, "--server", cfg.Register.URL, "--api-key", cfg.AdminKey, "--name", cfg.Name}
	if cfg.Listening {
		a.ListenPort = FreePort(tb)
		configure = append(configure, "--listen", "127.0.0.1:"+strconv.Itoa(a.ListenPort))
		register = append(register, "--public-host", "127.0.0.1")
	} else {
		configure = append(configure, "--polling")
		if len(cfg.Poll) == 0 {
			cfg.Poll = []string{"127.0.0.1:" + strconv.Itoa(cfg.Register.PollingPort)}
			a.Config.Poll = cfg.Poll
		}
		register = append(register, "--address", cfg.Poll[0])
	}
	for _, env := range cfg.Environments {
		register = append(register, "--environment", env)
	}
	for _, role := range cfg.Roles {
		register = append(register, "--role", role)
	}
	a.cli(configure...)
	out := a.cli(register...)
	if a.MachineID = machineIDRE.FindString(out); a.MachineID == "" {
		tb.Fatalf("agent register printed no machine id:\n%s", out)
	}
	if !cfg.Listening {
		for _, addr := range cfg.Poll[1:] {
			a.cli("agent", "poll-server", "--home", home, "--server", cfg.Register.URL, "--api-key", cfg.AdminKey, "--address", addr)
		}
	}
	if err := a.Start(); err != nil {
		tb.Fatal(err)
	}
	return a
}

// cli runs a cuttle command to its end and returns its output; a failure
// fails the test.
func (a *Agent) cli(args ...string) string {
	a.tb.Helper()
	cmd := exec.Command(Binary(a.tb), args...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		a.tb.Fatalf("cuttle %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Args returns the command-line arguments of `cuttle agent run`.
func (a *Agent) Args() []string {
	return append([]string{"agent", "run", "--home", a.Home, "--log-level", "debug", "--shutdown-grace", "5s"}, a.Config.Args...)
}

// Start starts the agent (again, after Kill or Terminate).
func (a *Agent) Start() error { return a.start(Binary(a.tb), a.Args()...) }

// String names the agent in messages.
func (a *Agent) String() string { return fmt.Sprintf("agent %s (%s)", a.Config.Name, a.MachineID) }
