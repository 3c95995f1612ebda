package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/testcluster"
	"sigs.k8s.io/yaml"
)

// TestDeployCommands takes a project from nothing to deployed with the
// commands alone: variables (a sensitive one read from standard input),
// the process edited from what show prints, a release, and deploy --wait,
// which stops at a manual intervention until interruption submit answers
// it. A failing deployment makes deploy --wait exit 1. Not parallel: it
// replaces os.Stdin.
func TestDeployCommands(t *testing.T) {
	n := testcluster.StartNode(t, testcluster.NodeConfig{Name: "solo", AdminKey: cuttle.NewAPIKey()})
	cmd := runner(func(t *testing.T, args ...string) (int, string, string) {
		return cli(t, nil, append(args, "--server", n.URL, "--api-key", n.Config.AdminKey)...)
	})
	ctx := testcluster.Context(t, 60*time.Second)
	if err := n.Client.Do(ctx, http.MethodPost, "/api/Spaces-1/environments", map[string]any{"Name": "Test"}, nil); err != nil {
		t.Fatal(err)
	}
	var p doc
	cmd.mustJSON(t, &p, "project", "create", "Web")

	if code, out, errOut := cmd(t, "variable", "set", "--project", "Web", "Greeting", "hello"); code != 0 {
		t.Fatalf("variable set: exit %d\n%s%s", code, out, errOut)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s3cr3t-value\n"), 0o600)
	in, err := os.Open(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	saved := os.Stdin
	os.Stdin = in
	code, out, errOut := cmd(t, "variable", "set", "--project", "Web", "Password", "--sensitive")
	os.Stdin = saved
	if code != 0 {
		t.Fatalf("variable set --sensitive: exit %d\n%s%s", code, out, errOut)
	}
	cmd.fails(t, []string{`the project has no variable "Nope"`}, "variable", "delete", "--project", "Web", "Nope")
	code, out, _ = cmd(t, "variable", "list", "--project", "Web")
	if code != 0 || !strings.Contains(out, "hello") || strings.Contains(out, "s3cr3t") || !strings.Contains(out, "********") {
		t.Fatalf("variable list: exit %d\n%s; want hello shown and the password masked", code, out)
	}

	var process map[string]any
	cmd.mustJSON(t, &process, "process", "show", "--project", "Web")
	script := func(step, body string) map[string]any {
		return map[string]any{"Name": step, "Actions": []any{map[string]any{"Name": step, "ActionType": "Octopus.Script", "Properties": map[string]string{
			"Octopus.Action.RunOnServer": "True", "Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": body}}}}
	}
	process["Steps"] = []any{
		script("Say", `echo "greeting #{Greeting}, password #{Password}"; [ "#{Octopus.Release.Number}" != 1.0.1 ]`),
		map[string]any{"Name": "Approve", "Actions": []any{map[string]any{"Name": "Approve", "ActionType": "Octopus.Manual",
			"Properties": map[string]string{"Octopus.Action.Manual.Instructions": "Look at it."}}}},
		script("Finish", `echo finished`),
	}
	file := filepath.Join(t.TempDir(), "process.json")
	raw, _ := json.Marshal(process)
	os.WriteFile(file, raw, 0o644)
	code, out, errOut = cmd(t, "process", "edit", "--project", "Web", "--file", file)
	if code != 0 || !strings.Contains(out, "2. Approve") || !strings.Contains(out, "the server") {
		t.Fatalf("process edit: exit %d\n%s%s", code, out, errOut)
	}
	cmd.fails(t, []string{"409"}, "process", "edit", "--project", "Web", "--file", file) // its Version is no longer the stored one
	// The same process as YAML, from what show prints.
	var shown json.RawMessage
	cmd.mustJSON(t, &shown, "process", "show", "--project", "Web")
	asYAML, err := yaml.JSONToYAML(shown)
	if err != nil {
		t.Fatal(err)
	}
	yamlFile := filepath.Join(t.TempDir(), "process.yaml")
	os.WriteFile(yamlFile, asYAML, 0o644)
	if code, out, errOut = cmd(t, "process", "edit", "--project", "Web", "--file", yamlFile); code != 0 || !strings.Contains(out, "(version 2)") {
		t.Fatalf("process edit of a YAML file: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = cmd(t, "release", "create", "--project", "Web", "--version", "1.0.0")
	if code != 0 || !strings.Contains(out, "1.0.0") {
		t.Fatalf("release create: exit %d\n%s%s", code, out, errOut)
	}
	// deploy --wait, its stderr read as it runs: it tells how to answer.
	var deployOut, deployErr lockedBuffer
	deployed := make(chan int, 1)
	go func() {
		deployed <- run(append([]string{"deploy", "--project", "Web", "--release", "1.0.0", "--environment", "Test", "--wait"},
			"--server", n.URL, "--api-key", n.Config.AdminKey), &deployOut, &deployErr)
	}()
	var pending []cuttle.Interruption
	testcluster.Eventually(t, 20*time.Second, func() error {
		pending = nil
		cmd.mustJSON(t, &pending, "interruption", "list")
		if len(pending) != 1 || !strings.Contains(deployErr.String(), "answer with: cuttle interruption submit "+pending[0].ID+" --result Proceed|Abort") {
			return errorString("deploy --wait has not told of a pending interruption: " + deployErr.String())
		}
		return nil
	})
	code, out, errOut = cmd(t, "interruption", "submit", pending[0].ID, "--result", "Maybe")
	if code != 1 || !strings.Contains(errOut, "400") {
		t.Fatalf("interruption submit of an answer not offered: exit %d\n%s%s; want 400", code, out, errOut)
	}
	if code, out, errOut = cmd(t, "interruption", "submit", pending[0].ID, "--result", "Proceed", "--notes", "fine"); code != 0 {
		t.Fatalf("interruption submit: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case code = <-deployed:
	case <-time.After(30 * time.Second):
		t.Fatal("deploy --wait did not end after the interruption was answered")
	}
	if out, errOut := deployOut.String(), deployErr.String(); code != 0 || !strings.Contains(out, "greeting hello, password ********") ||
		strings.Contains(out, "s3cr3t") || !strings.Contains(out, "finished") || !strings.Contains(errOut, "ended Success") {
		t.Fatalf("deploy --wait: exit %d\n%s%s", code, out, errOut)
	}

	// A release whose first script fails: deploy --wait says so and exits 1.
	if code, out, errOut = cmd(t, "release", "create", "--project", "Web", "--version", "1.0.1"); code != 0 {
		t.Fatalf("release create 1.0.1: exit %d\n%s%s", code, out, errOut)
	}
	cmd.fails(t, []string{"ended Failed", "a deployment ended Failed"},
		"deploy", "--project", "Web", "--release", "1.0.1", "--environment", "Test", "--wait", "--guided-failure=false")

	// The live view, as a terminal shows it: the steps redrawn in place,
	// the interruption to answer under them.
	if code, out, errOut = cmd(t, "release", "create", "--project", "Web", "--version", "1.0.2"); code != 0 {
		t.Fatalf("release create 1.0.2: exit %d\n%s%s", code, out, errOut)
	}
	var liveOut, liveErr lockedBuffer
	go func() {
		deployed <- run([]string{"deploy", "--project", "Web", "--release", "1.0.2", "--environment", "Test", "--wait", "--progress", "live",
			"--server", n.URL, "--api-key", n.Config.AdminKey}, &liveOut, &liveErr)
	}()
	testcluster.Eventually(t, 20*time.Second, func() error {
		pending = nil
		cmd.mustJSON(t, &pending, "interruption", "list")
		if len(pending) != 1 || !strings.Contains(liveOut.String(), "waiting for a person: Approve ("+pending[0].ID+")") {
			return errorString("the live view does not show the pending interruption: " + liveOut.String())
		}
		return nil
	})
	if code, out, errOut = cmd(t, "interruption", "submit", pending[0].ID, "--result", "Proceed"); code != 0 {
		t.Fatalf("interruption submit: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case code = <-deployed:
	case <-time.After(30 * time.Second):
		t.Fatal("deploy --wait --progress live did not end after the interruption was answered")
	}
	view := liveOut.String()
	last := view[strings.LastIndex(view, "\x1b[J")+len("\x1b[J"):]
	for _, want := range []string{"Success", "✓ Say", "✓ Approve", "✓ Finish"} {
		if code != 0 || !strings.Contains(last, want) || strings.Contains(last, "waiting") || strings.Contains(view, "greeting") {
			t.Fatalf("deploy --progress live: exit %d; its last view lacks %q (or it printed the log):\n%s\n%s", code, want, last, liveErr.String())
		}
	}
}

// lockedBuffer is a bytes.Buffer one goroutine writes while another reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
