package housekeeping_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// settledRun waits until the leader's first run of a job (queued as the
// cluster starts) has ended, and returns its task number: a test changes
// what the job acts on only then, and reads the runs after it.
func settledRun(t *testing.T, cl *client.Client, job string) int {
	t.Helper()
	n := 0
	testcluster.Eventually(t, 30*time.Second, func() error {
		var page struct{ Items []struct{ Id, State string } }
		if err := cl.Do(context.Background(), http.MethodGet, "/api/tasks?name="+job+"&take=1", nil, &page); err != nil {
			return err
		}
		if len(page.Items) == 0 || (page.Items[0].State != "Success" && page.Items[0].State != "Failed") {
			return fmt.Errorf("the first %s run has not ended", job)
		}
		n = taskNumber(page.Items[0].Id)
		return nil
	})
	return n
}

func taskNumber(id string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(id, "ServerTasks-"))
	return n
}

// lastRun returns the log of a task of a scheduled job newer than task
// number after, once it succeeded and its log contains want.
func lastRun(t *testing.T, cl *client.Client, job string, after int, want string, within time.Duration) string {
	t.Helper()
	var log string
	testcluster.Eventually(t, within, func() error {
		var page struct{ Items []struct{ Id, State string } }
		if err := cl.Do(context.Background(), http.MethodGet, "/api/tasks?name="+job+"&take=3", nil, &page); err != nil {
			return err
		}
		for _, tk := range page.Items {
			if tk.State != "Success" || taskNumber(tk.Id) <= after {
				continue
			}
			l, err := testcluster.TaskLog(context.Background(), cl, tk.Id)
			if err == nil && strings.Contains(l, want) {
				log = l
				return nil
			}
		}
		return fmt.Errorf("no %s run has logged %q yet", job, want)
	})
	return log
}

// TestReindexMakesTheFeedAgreeWithStorage: re-indexing deletes the
// document of a package whose file is gone, makes an old orphan the file
// of its version, deletes an old orphan of a version that has its file,
// and leaves a fresh orphan alone (it may be an upload in flight).
func TestReindexMakesTheFeedAgreeWithStorage(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5)
	api := c.Nodes[0].Client
	push(t, api, "kept.1.0.0.zip")
	push(t, api, "gone.1.0.0.zip")
	before := settledRun(t, api, "PackageReindex")
	root := filepath.Join(c.Storage, "packages")
	files := func(pkg string) []string {
		var out []string
		filepath.Walk(filepath.Join(root, pkg), func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				rel, _ := filepath.Rel(root, p)
				out = append(out, filepath.ToSlash(rel))
			}
			return nil
		})
		sort.Strings(out)
		return out
	}
	gone := files("gone")
	if len(gone) != 1 {
		t.Fatalf("gone's files: %v", gone)
	}
	os.Remove(filepath.Join(root, gone[0]))
	old := time.Now().Add(-2 * time.Hour)
	orphan := func(rel, content string, mtime time.Time) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o750)
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	orphan("found/lost1/found.2.0.0.zip", "found", old)
	orphan("kept/lost2/kept.1.0.0.zip", "duplicate", old)
	orphan("fresh/lost3/fresh.1.0.0.zip", "fresh", time.Now())
	if _, err := api.SetClusterSettings(testcluster.Context(t, 5*time.Second), map[string]time.Duration{"PackageReindexIntervalSeconds": time.Second}); err != nil {
		t.Fatal(err)
	}
	log := lastRun(t, api, "PackageReindex", before, "Re-indexed", 60*time.Second)
	for _, want := range []string{"The file of gone 1.0.0", "is now the file of found 2.0.0", "kept/lost2/kept.1.0.0.zip: another file is its version's", "fresh/lost3/fresh.1.0.0.zip", "left alone"} {
		if !strings.Contains(log, want) {
			t.Errorf("the re-index log lacks %q:\n%s", want, log)
		}
	}
	var page struct {
		Items []struct{ PackageId, Version string }
	}
	do(t, api, http.MethodGet, "/api/Spaces-1/packages?take=100", nil, &page)
	var ids []string
	for _, p := range page.Items {
		ids = append(ids, p.PackageId+"@"+p.Version)
	}
	sort.Strings(ids)
	if !slices.Equal(ids, []string{"found@2.0.0", "kept@1.0.0"}) {
		t.Errorf("the feed after re-indexing: %v", ids)
	}
	if got := files("kept"); len(got) != 1 || strings.Contains(got[0], "lost2") {
		t.Errorf("kept's files after re-indexing: %v", got)
	}
	if got := files("fresh"); len(got) != 1 {
		t.Errorf("the fresh orphan was touched: %v", got)
	}
}

// TestPackageCacheCleanupAsksTheAgents: after a deployment of a package,
// the agent's cached file is made old; the PackageCacheCleanup job asks
// the agent to apply the retention policy, and the file is deleted.
func TestPackageCacheCleanupAsksTheAgents(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5)
	api := c.Nodes[0].Client
	agent := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: c.Nodes[0], AdminKey: c.AdminKey})
	push(t, api, "lib.1.0.0.zip")
	var p struct{ Id string }
	do(t, api, http.MethodPost, "/api/Spaces-1/projects", map[string]any{"Name": "Lib", "LifecycleId": "Lifecycles-1", "ProjectGroupId": "ProjectGroups-1"}, &p)
	do(t, api, http.MethodPut, "/api/Spaces-1/projects/"+p.Id+"/deploymentprocesses", map[string]any{"Steps": []any{map[string]any{
		"Name": "Lib", "Properties": map[string]string{"Octopus.Action.TargetRoles": "web"},
		"Actions": []any{map[string]any{"Name": "Lib", "ActionType": "Octopus.TentaclePackage",
			"Packages": []any{map[string]any{"Name": "", "PackageId": "lib", "FeedId": "feeds-builtin"}}}}}}}, nil)
	do(t, api, http.MethodPost, "/api/Spaces-1/releases/create/v1", map[string]any{"spaceId": "Spaces-1", "projectName": "Lib", "releaseVersion": "1.0.0"}, nil)
	var out struct {
		DeploymentServerTasks []struct{ ServerTaskId string }
	}
	do(t, api, http.MethodPost, "/api/Spaces-1/deployments/create/untenanted/v1",
		map[string]any{"spaceId": "Spaces-1", "projectName": "Lib", "releaseVersion": "1.0.0", "environmentNames": []string{"Test"}}, &out)
	if done := testcluster.WaitTask(t, api, out.DeploymentServerTasks[0].ServerTaskId, 60*time.Second, "Success", "Failed"); done.State != "Success" {
		log, _ := testcluster.TaskLog(context.Background(), api, out.DeploymentServerTasks[0].ServerTaskId)
		t.Fatalf("the deployment ended %s:\n%s", done.State, log)
	}
	cached, _ := filepath.Glob(filepath.Join(agent.Home, "packages", "*.zip"))
	if len(cached) != 1 {
		t.Fatalf("the agent's cache holds %v", cached)
	}
	before := settledRun(t, api, "PackageCacheCleanup")
	old := time.Now().Add(-40 * 24 * time.Hour)
	os.Chtimes(cached[0], old, old)
	if _, err := api.SetClusterSettings(testcluster.Context(t, 5*time.Second), map[string]time.Duration{"PackageCacheCleanupIntervalSeconds": time.Second}); err != nil {
		t.Fatal(err)
	}
	log := lastRun(t, api, "PackageCacheCleanup", before, "web-1 deleted 1 cached packages", 60*time.Second)
	if _, err := os.Stat(cached[0]); !os.IsNotExist(err) {
		t.Errorf("the old cached package is still there (%v); the job logged:\n%s", err, log)
	}
}
