package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/server"
	"github.com/cuttledeploy/cuttle/testcluster"
)

func TestMain(m *testing.M) { os.Exit(testcluster.RunWithPostgres(m)) }

// twoNodes starts two nodes in-process on one fresh PostgreSQL database and
// returns their base URLs and an administrator's API key.
func twoNodes(t *testing.T) (a, b, key string) {
	t.Helper()
	db := testcluster.SharedPostgres(t).NewDatabase(t)
	key = cuttle.NewAPIKey()
	master := masterkey.Generate().String()
	var urls []string
	for _, name := range []string{"node-a", "node-b"} {
		n, err := server.New(t.Context(), server.Config{DataDir: t.TempDir(), DB: db, Listen: "127.0.0.1:0", PollingListen: "127.0.0.1:0",
			NodeName: name, MasterKey: master, AdminAPIKey: key, ShutdownGrace: time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n.Stop(ctx)
		})
		urls = append(urls, "http://"+n.Addr())
	}
	return urls[0], urls[1], key
}

func request(t *testing.T, method, url, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Octopus-ApiKey", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

// TestConcurrentCreatesOfOneName: two nodes creating a document of the same
// name at the same instant give exactly one 201 and one 409; a PUT with a
// stale version through the other node answers 409 and changes nothing.
func TestConcurrentCreatesOfOneName(t *testing.T) {
	t.Parallel()
	a, b, key := twoNodes(t)
	_, groups := request(t, "GET", a+"/api/Spaces-1/projectgroups?name=Default%20Project%20Group", key, "")
	group := groups["Items"].([]any)[0].(map[string]any)["Id"].(string)
	extra := map[string]string{
		"projectgroups": "",
		"projects":      fmt.Sprintf(`, "LifecycleId": "Lifecycles-1", "ProjectGroupId": %q`, group),
	}
	for _, collection := range []string{"projectgroups", "projects"} {
		for round := range 10 {
			name := fmt.Sprintf("Same %s %d", collection, round)
			var (
				wg       sync.WaitGroup
				statuses [2]int
				start    = make(chan struct{})
			)
			for i, base := range []string{a, b} {
				wg.Go(func() {
					<-start
					statuses[i], _ = request(t, "POST", base+"/api/Spaces-1/"+collection, key, fmt.Sprintf(`{"Name": %q%s}`, name, extra[collection]))
				})
			}
			close(start)
			wg.Wait()
			if !(statuses[0] == http.StatusCreated && statuses[1] == http.StatusConflict) &&
				!(statuses[0] == http.StatusConflict && statuses[1] == http.StatusCreated) {
				t.Fatalf("%s round %d: statuses %v; want one 201 and one 409", collection, round, statuses)
			}
		}

		status, doc := request(t, "POST", a+"/api/Spaces-1/"+collection, key, `{"Name": "Versioned"`+extra[collection]+`}`)
		if status != http.StatusCreated {
			t.Fatalf("create: %d %v", status, doc)
		}
		id := doc["Id"].(string)
		if status, doc := request(t, "PUT", a+"/api/Spaces-1/"+collection+"/"+id, key, `{"Name": "Changed", "Version": 0`+extra[collection]+`}`); status != http.StatusOK {
			t.Fatalf("PUT at version 0: %d %v", status, doc)
		}
		if status, doc := request(t, "PUT", b+"/api/Spaces-1/"+collection+"/"+id, key, `{"Name": "Lost", "Version": 0`+extra[collection]+`}`); status != http.StatusConflict {
			t.Fatalf("PUT at the stale version through the other node: %d %v; want 409", status, doc)
		}
		if _, doc := request(t, "GET", b+"/api/Spaces-1/"+collection+"/"+id, key, ""); doc["Name"] != "Changed" || doc["Version"] != float64(1) {
			t.Fatalf("after the stale PUT: %v; want Changed at version 1", doc)
		}
	}
}
