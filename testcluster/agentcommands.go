package testcluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// registeredRE finds the machine `cuttle agent register` registered: its
// id and name.
var registeredRE = regexp.MustCompile(`(?m)^Machine\s+(Machines-\d+) \((.*)\)\s*$`)

// AgentFromCommands adds a target as a person does who follows the
// commands they are shown (such as those of the portal's "Add a target"
// page): every command but the last runs with sh to its end, and the last,
// which runs the agent (`cuttle agent run`), is started in the background
// and killed when the test ends. `cuttle` is the test's build (Binary),
// first on PATH; the agent's home is a fresh folder, given as
// CUTTLE_AGENT_HOME; env adds settings (KEY=VALUE) the commands cannot
// know on a test machine, such as CUTTLE_ADDRESS for the polling port of
// a node. The commands' text is run as it is: a placeholder such as the
// API key is the caller's to fill in. The Agent's MachineID is the one
// the registration printed; its log is printed if the test failed. (Start
// starts it again with Args, the same home.)
func AgentFromCommands(tb testing.TB, commands string, env ...string) *Agent {
	tb.Helper()
	// A line ending with a backslash goes on on the next one.
	text := strings.TrimSpace(strings.ReplaceAll(commands, "\\\n", " "))
	lines := strings.Split(text, "\n")
	if len(lines) < 2 {
		tb.Fatalf("want commands that set an agent up and then run it, got:\n%s", commands)
	}
	setup, run := strings.Join(lines[:len(lines)-1], "\n"), strings.TrimSpace(lines[len(lines)-1])
	home := tb.TempDir()
	env = append([]string{"PATH=" + filepath.Dir(Binary(tb)) + string(os.PathListSeparator) + os.Getenv("PATH"), "CUTTLE_AGENT_HOME=" + home}, env...)
	a := &Agent{Home: home, tb: tb, process: process{name: "agent (" + run + ")", logPath: filepath.Join(home, "agent.log"), env: env}}
	tb.Cleanup(func() {
		a.Kill()
		if tb.Failed() {
			tb.Logf("log of the agent:\n%s", tail(a.Log(), 60))
		}
	})
	cmd := exec.Command("sh", "-e", "-x", "-c", setup)
	cmd.Env = append(cleanEnv(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("the commands\n%s\nfailed: %v\n%s", setup, err, out)
	}
	m := registeredRE.FindStringSubmatch(string(out))
	if m == nil {
		tb.Fatalf("the commands registered no machine:\n%s", out)
	}
	a.MachineID, a.Config.Name = m[1], m[2]
	// exec: the agent is the process started, killed at the end.
	if err := a.start("sh", "-c", "exec "+run); err != nil {
		tb.Fatal(err)
	}
	return a
}
