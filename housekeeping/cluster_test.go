package housekeeping_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

func TestMain(m *testing.M) { os.Exit(testcluster.RunWithPostgres(m)) }

func do(t *testing.T, cl *client.Client, method, path string, in, out any) {
	t.Helper()
	if err := cl.Do(testcluster.Context(t, 20*time.Second), method, path, in, out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

// push uploads an (empty) zip package to the built-in feed.
func push(t *testing.T, cl *client.Client, name string) {
	t.Helper()
	var pkg bytes.Buffer
	zw := zip.NewWriter(&pkg)
	w, _ := zw.Create("readme.txt")
	w.Write([]byte(name))
	zw.Close()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, _ := mw.CreateFormFile("file", name)
	part.Write(pkg.Bytes())
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, cl.BaseURL+"/api/Spaces-1/packages/raw", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-Octopus-ApiKey", cl.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("pushing %s: %s", name, resp.Status)
	}
}

// versions returns the versions of a project's releases, sorted.
func versions(cl *client.Client, project string) ([]string, error) {
	var page struct{ Items []struct{ Version string } }
	if err := cl.Do(context.Background(), http.MethodGet, "/api/Spaces-1/projects/"+project+"/releases?take=1000", nil, &page); err != nil {
		return nil, err
	}
	var out []string
	for _, r := range page.Items {
		out = append(out, r.Version)
	}
	sort.Strings(out)
	return out, nil
}

// TestRetentionAcrossALeaderKill: a lifecycle keeps the 3 newest releases.
// Of a project's 300 releases, retention keeps those and the release
// deployed to Test now (1.0.005), and deletes the rest with their
// deployments; of a second project's releases each choosing a version of
// a package, it keeps the 3 newest, and the feed keeps the versions they
// use and deletes the others (their files too). The leader runs the job
// (the other nodes take no tasks) and is SIGKILLed once its run has
// listed what to delete: another node, made able to run tasks, finishes
// the work under a new term, and the end is the same. The audit log's
// events past their retention go too.
func TestRetentionAcrossALeaderKill(t *testing.T) {
	t.Parallel()
	c := testcluster.NewCluster(t, testcluster.SharedPostgres(t).NewDatabase(t))
	a := c.StartNode("node-a", "--task-cap", "5", "--package-retention", "1ms", "--event-retention", "1ms")
	ctx := testcluster.Context(t, 10*time.Second)
	if _, err := a.Client.SetClusterSettings(ctx, map[string]time.Duration{
		"HeartbeatFrequencySeconds": testcluster.FastHeartbeat, "StaleTimeoutSeconds": testcluster.FastStale}); err != nil {
		t.Fatal(err)
	}
	if leader, err := c.WaitLeader(10 * time.Second); err != nil || leader != a {
		t.Fatalf("the leader is %v (%v), want node-a", leader, err)
	}
	b := c.StartNode("node-b", "--task-cap", "0", "--package-retention", "1ms", "--event-retention", "1ms")
	api := a.Client

	var lc map[string]any
	do(t, api, http.MethodGet, "/api/Spaces-1/lifecycles/Lifecycles-1", nil, &lc)
	lc["ReleaseRetentionPolicy"] = map[string]any{"QuantityToKeep": 3, "ShouldKeepForever": false, "Unit": "Items", "Strategy": "Count"}
	do(t, api, http.MethodPut, "/api/Spaces-1/lifecycles/Lifecycles-1", lc, nil)
	do(t, api, http.MethodPost, "/api/Spaces-1/environments", map[string]any{"Name": "Test"}, nil)

	var kept struct{ Id string }
	do(t, api, http.MethodPost, "/api/Spaces-1/projects", map[string]any{"Name": "Kept", "LifecycleId": "Lifecycles-1", "ProjectGroupId": "ProjectGroups-1"}, &kept)
	do(t, api, http.MethodPut, "/api/Spaces-1/projects/"+kept.Id+"/deploymentprocesses", map[string]any{"Steps": []any{map[string]any{
		"Name": "Say", "Actions": []any{map[string]any{"Name": "Say", "ActionType": "Octopus.Script", "Properties": map[string]string{
			"Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": "echo deployed", "Octopus.Action.RunOnServer": "True"}}}}}}, nil)
	const releases = 300
	for i := 1; i <= releases; i++ {
		do(t, api, http.MethodPost, "/api/Spaces-1/releases/create/v1", map[string]any{"spaceId": "Spaces-1", "projectName": "Kept", "releaseVersion": fmt.Sprintf("1.0.%03d", i)}, nil)
	}
	var out struct {
		DeploymentServerTasks []struct{ ServerTaskId string }
	}
	do(t, api, http.MethodPost, "/api/Spaces-1/deployments/create/untenanted/v1",
		map[string]any{"spaceId": "Spaces-1", "projectName": "Kept", "releaseVersion": "1.0.005", "environmentNames": []string{"Test"}}, &out)
	if done := testcluster.WaitTask(t, api, out.DeploymentServerTasks[0].ServerTaskId, 60*time.Second, "Success", "Failed"); done.State != "Success" {
		t.Fatalf("the deployment of 1.0.005 ended %s", done.State)
	}

	var pkg struct{ Id string }
	do(t, api, http.MethodPost, "/api/Spaces-1/projects", map[string]any{"Name": "Pkg", "LifecycleId": "Lifecycles-1", "ProjectGroupId": "ProjectGroups-1"}, &pkg)
	do(t, api, http.MethodPut, "/api/Spaces-1/projects/"+pkg.Id+"/deploymentprocesses", map[string]any{"Steps": []any{map[string]any{
		"Name": "Lib", "Properties": map[string]string{"Octopus.Action.TargetRoles": "web"},
		"Actions": []any{map[string]any{"Name": "Lib", "ActionType": "Octopus.TentaclePackage",
			"Packages": []any{map[string]any{"Name": "", "PackageId": "lib", "FeedId": "feeds-builtin"}}}}}}}, nil)
	for i := 0; i <= 4; i++ {
		push(t, api, fmt.Sprintf("lib.1.0.%d.zip", i))
		do(t, api, http.MethodPost, "/api/Spaces-1/releases/create/v1", map[string]any{"spaceId": "Spaces-1", "projectName": "Pkg",
			"releaseVersion": fmt.Sprintf("2.0.%d", i), "packages": []string{fmt.Sprintf("lib:1.0.%d", i)}}, nil)
	}
	push(t, api, "lib.9.9.9.zip") // used by no release

	// Retention every second; the leader queues it and runs it.
	if _, err := api.SetClusterSettings(ctx, map[string]time.Duration{"RetentionIntervalSeconds": time.Second}); err != nil {
		t.Fatal(err)
	}
	var task string
	testcluster.Eventually(t, 60*time.Second, func() error {
		var page struct {
			Items []struct{ Id, State, ServerNode string }
		}
		if err := api.Do(context.Background(), http.MethodGet, "/api/tasks?name=Retention&take=5", nil, &page); err != nil {
			return err
		}
		for _, tk := range page.Items {
			log, _ := testcluster.TaskLog(context.Background(), api, tk.Id)
			if tk.State == "Executing" && strings.Contains(log, "beyond their lifecycle's retention policy") {
				task = tk.Id
				return nil
			}
		}
		return fmt.Errorf("no retention run is deleting releases yet")
	})
	a.Kill()
	nodes, err := b.Client.Nodes(testcluster.Context(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Name == "node-b" {
			five := 5
			if _, err := b.Client.UpdateNode(testcluster.Context(t, 10*time.Second), n.Id, &five, nil); err != nil {
				t.Fatal(err)
			}
		}
	}

	want := []string{"1.0.005", fmt.Sprintf("1.0.%03d", releases-2), fmt.Sprintf("1.0.%03d", releases-1), fmt.Sprintf("1.0.%03d", releases)}
	storage := c.Storage
	testcluster.Eventually(t, 120*time.Second, func() error {
		got, err := versions(b.Client, kept.Id)
		if err != nil {
			return err
		}
		for _, v := range want {
			if !slices.Contains(got, v) {
				t.Fatalf("retention deleted the release %s, which it must keep; left: %v", v, got)
			}
		}
		if len(got) != len(want) {
			return fmt.Errorf("%d releases of Kept are left", len(got))
		}
		if got, err := versions(b.Client, pkg.Id); err != nil || !slices.Equal(got, []string{"2.0.2", "2.0.3", "2.0.4"}) {
			return fmt.Errorf("the releases of Pkg are %v (%v)", got, err)
		}
		var page struct{ Items []struct{ Version string } }
		if err := b.Client.Do(context.Background(), http.MethodGet, "/api/Spaces-1/packages?nuGetPackageId=lib&take=100", nil, &page); err != nil {
			return err
		}
		var libs []string
		for _, p := range page.Items {
			libs = append(libs, p.Version)
		}
		sort.Strings(libs)
		if !slices.Equal(libs, []string{"1.0.2", "1.0.3", "1.0.4"}) {
			return fmt.Errorf("the feed holds lib %v", libs)
		}
		var files []string
		filepath.WalkDir(filepath.Join(storage, "packages", "lib"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, filepath.Base(p))
			}
			return nil
		})
		sort.Strings(files)
		if !slices.Equal(files, []string{"lib.1.0.2.zip", "lib.1.0.3.zip", "lib.1.0.4.zip"}) {
			return fmt.Errorf("storage holds %v", files)
		}
		return nil
	})
	// The audit log's events of the project's setup are past the
	// retention (1 ms) of every run since.
	testcluster.Eventually(t, 30*time.Second, func() error {
		var events struct{ TotalResults int }
		if err := b.Client.Do(context.Background(), http.MethodGet, "/api/events?regarding="+kept.Id, nil, &events); err != nil {
			return err
		}
		if events.TotalResults > 0 {
			return fmt.Errorf("%d events regarding %s are left", events.TotalResults, kept.Id)
		}
		return nil
	})
	var deployments struct{ Items []struct{ ReleaseId string } }
	do(t, b.Client, http.MethodGet, "/api/Spaces-1/deployments?projects="+kept.Id, nil, &deployments)
	if len(deployments.Items) != 1 {
		t.Errorf("deployments of Kept after retention: %+v, want the one of 1.0.005", deployments.Items)
	}
	first, _ := testcluster.TaskLog(testcluster.Context(t, 10*time.Second), b.Client, task)
	t.Logf("the run killed with node-a (%s) logged:\n%s", task, tailLines(first, 12))
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
