package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// TestUserSetPassword: cuttle user set-password reads the password from
// standard input; the user then signs in with it. Not parallel: it sets
// the command's standard input.
func TestUserSetPassword(t *testing.T) {
	n := testcluster.StartNode(t, testcluster.NodeConfig{Name: "solo", AdminKey: cuttle.NewAPIKey()})
	auth := []string{"--server", n.URL, "--api-key", n.Config.AdminKey}
	if code, out, errOut := cli(t, nil, append([]string{"user", "create", "dana"}, auth...)...); code != 0 {
		t.Fatalf("user create: %d %s %s", code, out, errOut)
	}
	stdin := passwordInput
	t.Cleanup(func() { passwordInput = stdin })
	passwordInput = strings.NewReader("a password for dana\n")
	if code, out, errOut := cli(t, nil, append([]string{"user", "set-password", "dana"}, auth...)...); code != 0 {
		t.Fatalf("user set-password: %d %s %s", code, out, errOut)
	}
	resp, err := http.Post(n.URL+"/api/users/login", "application/json", strings.NewReader(`{"Username": "dana", "Password": "a password for dana"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signing in with the password set: %d", resp.StatusCode)
	}
	passwordInput = strings.NewReader("short\n")
	if code, _, errOut := cli(t, nil, append([]string{"user", "set-password", "dana"}, auth...)...); code == 0 || !strings.Contains(errOut, "at least") {
		t.Fatalf("a short password: %d %s; want a failure naming the length", code, errOut)
	}
}

// TestEventsCommand: cuttle events lists the audit log, filtered by user
// and document.
func TestEventsCommand(t *testing.T) {
	t.Parallel()
	n := testcluster.StartNode(t, testcluster.NodeConfig{Name: "solo", AdminKey: cuttle.NewAPIKey()})
	auth := []string{"--server", n.URL, "--api-key", n.Config.AdminKey}
	if code, out, errOut := cli(t, nil, append([]string{"project-group", "create", "Audited"}, auth...)...); code != 0 {
		t.Fatalf("project-group create: %d %s %s", code, out, errOut)
	}
	code, out, errOut := cli(t, nil, append([]string{"events", "--user", "admin"}, auth...)...)
	if code != 0 || !strings.Contains(out, "Created") || !strings.Contains(out, "ProjectGroups-") || !strings.Contains(out, "solo") {
		t.Fatalf("events --user admin: %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := cli(t, nil, append([]string{"events", "--document", "Projects-999"}, auth...)...); code != 0 || strings.Contains(out, "Created") {
		t.Fatalf("events of a document nothing regards: %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := cli(t, nil, append([]string{"events", "--from", "yesterday"}, auth...)...); code == 0 || !strings.Contains(errOut, "RFC") && !strings.Contains(errOut, "time such as") {
		t.Fatalf("events --from yesterday: %d %s; want a failure naming the format", code, errOut)
	}
}
