package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
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
		n := startNode(t, server.Config{DB: db, NodeName: name, MasterKey: master, AdminAPIKey: key})
		urls = append(urls, "http://"+n.Addr())
	}
	return urls[0], urls[1], key
}

// startNode starts a node of cfg, on loopback ports with a fresh data
// folder and a quiet log unless cfg says otherwise, stopped when the test
// ends.
func startNode(t *testing.T, cfg server.Config) *server.Node {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.Listen, cfg.PollingListen, cfg.ShutdownGrace, cfg.Stdout = "127.0.0.1:0", "127.0.0.1:0", time.Second, io.Discard
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n, err := server.New(t.Context(), cfg)
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
	return n
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
	kinds := []struct {
		path, name, extra string // the collection's route, its name field, its other fields
	}{
		{"/api/Spaces-1/projectgroups", "Name", ""},
		{"/api/Spaces-1/projects", "Name", fmt.Sprintf(`, "LifecycleId": "Lifecycles-1", "ProjectGroupId": %q`, group)},
		{"/api/Spaces-1/environments", "Name", ""},
		{"/api/users", "Username", `, "IsActive": true`},
	}
	for _, kind := range kinds {
		body := func(name, version string) string {
			return fmt.Sprintf(`{%q: %q%s%s}`, kind.name, name, version, kind.extra)
		}
		for round := range 10 {
			name := fmt.Sprintf("Same %s %d", kind.path, round)
			var (
				wg       sync.WaitGroup
				statuses [2]int
				start    = make(chan struct{})
			)
			for i, base := range []string{a, b} {
				wg.Go(func() {
					<-start
					statuses[i], _ = request(t, "POST", base+kind.path, key, body(name, ""))
				})
			}
			close(start)
			wg.Wait()
			if !(statuses[0] == http.StatusCreated && statuses[1] == http.StatusConflict) &&
				!(statuses[0] == http.StatusConflict && statuses[1] == http.StatusCreated) {
				t.Fatalf("%s round %d: statuses %v; want one 201 and one 409", kind.path, round, statuses)
			}
		}

		status, doc := request(t, "POST", a+kind.path, key, body("Versioned", ""))
		if status != http.StatusCreated {
			t.Fatalf("create: %d %v", status, doc)
		}
		id := doc["Id"].(string)
		if status, doc := request(t, "PUT", a+kind.path+"/"+id, key, body("Changed", `, "Version": 0`)); status != http.StatusOK {
			t.Fatalf("PUT at version 0: %d %v", status, doc)
		}
		if status, doc := request(t, "PUT", b+kind.path+"/"+id, key, body("Lost", `, "Version": 0`)); status != http.StatusConflict {
			t.Fatalf("PUT at the stale version through the other node: %d %v; want 409", status, doc)
		}
		if _, doc := request(t, "GET", b+kind.path+"/"+id, key, ""); doc[kind.name] != "Changed" || doc["Version"] != float64(1) {
			t.Fatalf("after the stale PUT: %v; want Changed at version 1", doc)
		}
	}
}

// TestDeletedKeyRefusedOnEveryNode: an API key deleted through one node is
// refused by the other at once (keys are looked up in the shared database
// on every request; no node caches them), and so is the key of a user
// deactivated through the other node.
func TestDeletedKeyRefusedOnEveryNode(t *testing.T) {
	t.Parallel()
	a, b, admin := twoNodes(t)
	newKey := func(user string) (id, key string) {
		t.Helper()
		status, doc := request(t, "POST", a+"/api/users/"+user+"/apikeys", admin, `{"Purpose": "test"}`)
		if status != http.StatusCreated {
			t.Fatalf("creating a key: %d %v", status, doc)
		}
		return doc["Id"].(string), doc["ApiKey"].(string)
	}
	status, user := request(t, "POST", a+"/api/users", admin, `{"Username": "deployer", "IsActive": true}`)
	if status != http.StatusCreated {
		t.Fatalf("creating a user: %d %v", status, user)
	}
	userID := user["Id"].(string)

	id, key := newKey(userID)
	if status, _ := request(t, "GET", b+"/api/users/me", key, ""); status != http.StatusOK {
		t.Fatalf("the new key on node b: %d", status)
	}
	if status, doc := request(t, "DELETE", a+"/api/users/"+userID+"/apikeys/"+id, admin, ""); status != http.StatusOK {
		t.Fatalf("deleting the key: %d %v", status, doc)
	}
	if status, _ := request(t, "GET", b+"/api/users/me", key, ""); status != http.StatusUnauthorized {
		t.Fatalf("the deleted key on node b: %d; want 401", status)
	}

	_, key = newKey(userID)
	if status, _ := request(t, "GET", a+"/api/users/me", key, ""); status != http.StatusOK {
		t.Fatalf("the second key on node a: %d", status)
	}
	user["IsActive"] = false
	body, _ := json.Marshal(user)
	if status, doc := request(t, "PUT", b+"/api/users/"+userID, admin, string(body)); status != http.StatusOK {
		t.Fatalf("deactivating the user through node b: %d %v", status, doc)
	}
	if status, _ := request(t, "GET", a+"/api/users/me", key, ""); status != http.StatusUnauthorized {
		t.Fatalf("the key of a deactivated user on node a: %d; want 401", status)
	}
}

// TestDataIsPrivate: a data folder others may enter is narrowed to its
// owner, and the embedded database and master key are the owner's alone.
func TestDataIsPrivate(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n, err := server.New(t.Context(), server.Config{DataDir: dir, Listen: "127.0.0.1:0", PollingListen: "127.0.0.1:0", NodeName: "solo",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())
	for name, want := range map[string]os.FileMode{"": 0o700, "cuttle.db": 0o600, masterkey.FileName: 0o600} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != want {
			t.Errorf("%q has mode %v, want %v", name, info.Mode().Perm(), want)
		}
	}
}
