package deploy_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cuttledeploy/cuttle/testcluster"
)

// TestSensitiveValueStaysSealed: a deployment uses a sensitive variable on
// an agent and on the server, derives a sensitive output variable from it
// on the agent, waits for a person (so that another run resumes it), and
// reads the output variable after. Every log line shows ******** for both
// values, the scripts got the real ones, and neither value (nor the
// base64 by which a script reports an output variable) is in any row of
// any table of the database, any file of the shared storage or the nodes'
// data, or any API answer about the deployment (DESIGN.md 12).
func TestSensitiveValueStaysSealed(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 5)
	api := c.Nodes[0].Client
	testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: c.Nodes[0], AdminKey: c.AdminKey, Poll: pollAddrs(c)})
	random := make([]byte, 8)
	rand.Read(random)
	secret := "s3cret-" + hex.EncodeToString(random)
	derived := "derived-" + secret
	digest := sha256.Sum256([]byte(derived + "\n"))

	agent := step{"Name": "Agent", "Properties": map[string]string{"Octopus.Action.TargetRoles": "web"}, "Actions": []any{script("Agent", `
echo "agent sees #{DbPassword}"
echo "inline x#{DbPassword}y"
echo "from the function $(get_octopusvariable DbPassword)"
set_octopusvariable Derived "derived-#{DbPassword}" -sensitive
set_octopusvariable Plain "plain value"`, false)}}
	server := step{"Name": "Server", "Actions": []any{script("Server",
		`echo "server sees #{DbPassword} and #{Octopus.Action[Agent].Output.Derived}, #{Octopus.Action[Agent].Output.Plain}"`, true)}}
	approve := step{"Name": "Approve", "Actions": []any{map[string]any{"Name": "Approve", "ActionType": "Octopus.Manual",
		"Properties": map[string]string{"Octopus.Action.Manual.Instructions": "Go on."}}}}
	after := step{"Name": "After", "Actions": []any{script("After",
		`echo "after resuming: #{Octopus.Action[Agent].Output.Derived}"; echo "its digest $(echo "#{Octopus.Action[Agent].Output.Derived}" | sha256sum | cut -c1-64)"`, true)}}
	projectWith(t, api, "Secretive", []map[string]any{{"Name": "DbPassword", "Value": secret, "Type": "Sensitive"}}, agent, server, approve, after)
	deployment, task := deployWith(t, api, "Secretive", nil)
	submit(t, c.Nodes[1].Client, pending(t, api, deployment, 60*time.Second), map[string]string{"Result": "Proceed"})
	done := testcluster.WaitTask(t, api, task, 60*time.Second, "Success", "Failed")
	ctx := testcluster.Context(t, 30*time.Second)
	log, _ := testcluster.TaskLog(ctx, api, task)
	if done.State != "Success" {
		t.Fatalf("the deployment ended %s:\n%s", done.State, log)
	}
	for _, want := range []string{"agent sees ********", "inline x********y", "from the function ********",
		"server sees ******** and ********, plain value", "after resuming: ********", "its digest " + hex.EncodeToString(digest[:])} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q", want)
		}
	}

	leaks := [][]byte{[]byte(secret), []byte(base64.StdEncoding.EncodeToString([]byte(derived)))}
	leaked := func(b []byte) bool {
		for _, l := range leaks {
			if bytes.Contains(b, l) {
				return true
			}
		}
		return false
	}
	// Every row of every table.
	conn, err := pgx.Connect(ctx, c.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 10 {
		t.Fatalf("tables: %v, %v", tables, err)
	}
	scanned := 0
	for _, table := range tables {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT t::text FROM %s t`, pgx.Identifier{table}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range texts {
			scanned++
			if leaked([]byte(text)) {
				t.Errorf("a row of the table %s holds a sensitive value in clear: %.300s", table, text)
			}
		}
	}
	// Every file of the shared storage (task logs, ...) and of the nodes' data.
	files := 0
	dirs := []string{c.Storage}
	for _, n := range c.Nodes {
		dirs = append(dirs, n.Config.DataDir)
	}
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files++
				if b, _ := os.ReadFile(path); leaked(b) {
					t.Errorf("%s holds a sensitive value in clear", path)
				}
			}
			return nil
		})
	}
	// The API's answers about the deployment.
	for _, path := range []string{"/api/tasks/" + task, "/api/tasks/" + task + "/details",
		"/api/Spaces-1/deployments/" + deployment, "/api/Spaces-1/releases", "/api/Spaces-1/interruptions", "/api/Spaces-1/variables/all"} {
		var b bytes.Buffer
		err := api.Do(ctx, http.MethodGet, path, nil, &rawBody{&b})
		if err != nil && !strings.Contains(err.Error(), "404") {
			t.Errorf("GET %s: %v", path, err)
		}
		if leaked(b.Bytes()) {
			t.Errorf("GET %s answers a sensitive value: %.300s", path, b.String())
		}
	}
	if leaked([]byte(log)) {
		t.Errorf("the task's raw log holds a sensitive value")
	}
	t.Logf("scanned %d rows of %d tables and %d files", scanned, len(tables), files)
}

// rawBody takes an answer's body as it is.
type rawBody struct{ b *bytes.Buffer }

func (r *rawBody) UnmarshalJSON(b []byte) error {
	r.b.Write(b)
	return nil
}
