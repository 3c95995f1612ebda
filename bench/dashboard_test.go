package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/server"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// The dashboard benchmark (issue 12): GET /api/Spaces-1/dashboard of a
// space of 200 projects and 5 environments with a history of about 3,300
// deployments, each a real deployment run by the node's task system.

const (
	dashProjects = 200
	dashGroups   = 4
	// dashWorkers is how many projects are deployed at once while the
	// history is made (and the node's task cap during it).
	dashWorkers = 16
)

// dashEnvironments are the environments, in their order (the default
// lifecycle's phases).
var dashEnvironments = []string{"Development", "Test", "Staging", "Production", "Disaster Recovery"}

// dashScript is the process's one step, run on the node: it fails in
// Staging for a release whose version ends in -bad, and succeeds otherwise.
const dashScript = `case "#{Octopus.Release.Number}/#{Octopus.Environment.Name}" in
*-bad/Staging) echo "failing on purpose"; exit 1;;
esac
echo "deployed #{Octopus.Release.Number} to #{Octopus.Environment.Name}"`

// dashHistory is what populating made, to check the dashboard against.
type dashHistory struct {
	releases            int // deployed to every environment
	deployments, failed int
	took                time.Duration
	note                string
}

// BenchmarkDashboard200x5 measures GET /api/Spaces-1/dashboard with an
// administrator's API key over a space of 200 projects (in 4 project
// groups) and 5 environments, on one `cuttle server` process per engine
// (PostgreSQL, then the embedded SQLite). The history is made through the
// node's API as a user makes it: for each project releases 1.0.1 to 1.0.3,
// each deployed to the five environments in the lifecycle's order (3,000
// deployments, three per project and environment), then one more release
// for three projects in four: 1.0.4 to Development and Test, 1.0.4-bad to
// Development, Test and a Staging where its script fails (so that the
// dashboard has PreviousItems), or 1.0.4 to Development alone: 3,300
// deployments, each run by the task system (a Bash script on the node) and
// waited for. Its making is not measured. $BENCH_DASH_RELEASES=N makes N
// releases deployed everywhere instead of 3 (a longer history).
//
// One op is one GET, on a kept-alive connection over loopback; the node
// has no server-time header, so the time is the client's, from sending the
// request to the body's last byte. It reports the median and the p99
// (nearest rank) in milliseconds, the node's CPU time per request, and the
// body's size, identity and gzipped (the node does not compress: the
// gzip size is what a compressing proxy would send), and how busy the
// machine's cores were meanwhile (percent of one core: 200 is both), to
// tell a quiet run from one that shared the machine.
func BenchmarkDashboard200x5(b *testing.B) {
	for _, engine := range []string{"postgres", "sqlite"} {
		b.Run("engine="+engine, func(b *testing.B) {
			node := dashNode(b, engine)
			h := populateDashboard(b, node)
			if node.db != "" {
				// The planner's statistics, as autovacuum would gather
				// them within a minute of so many inserts.
				if _, err := openPool(b, node.db).Exec(context.Background(), "ANALYZE"); err != nil {
					b.Fatal(err)
				}
			}
			h.note = fmt.Sprintf("%d deployments (%d failed) made in %.1f s (%.0f/s)", h.deployments, h.failed,
				h.took.Seconds(), float64(h.deployments)/h.took.Seconds())
			// Let what the history's making left running (its task logs,
			// autovacuum) settle.
			time.Sleep(5 * time.Second)
			b.Run("dashboard", func(b *testing.B) { timeDashboard(b, node, h) })
		})
	}
}

// dashTarget is the node BenchmarkDashboard200x5 measures.
type dashTarget struct {
	url, key string
	pid      int    // its process
	db       string // its PostgreSQL database, "" for SQLite
}

// dashNode starts the node of the engine: a `cuttle server` process, or,
// with $BENCH_DASH_INPROCESS set, a node in this process (server.New), so
// that go test's -cpuprofile covers the handler (the node's CPU time per
// request then includes the client's).
func dashNode(b *testing.B, engine string) dashTarget {
	b.Helper()
	if os.Getenv("BENCH_DASH_INPROCESS") != "" {
		ctx := context.Background()
		t := dashTarget{key: cuttle.NewAPIKey(), pid: os.Getpid()}
		cfg := server.Config{DataDir: b.TempDir(), Listen: "127.0.0.1:0", PollingListen: "127.0.0.1:0", NodeName: "bench",
			AdminAPIKey: t.key, TaskCap: new(dashWorkers), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard}
		if engine == "postgres" {
			cfg.DB = testcluster.SharedPostgres(b).NewDatabase(b)
			t.db = cfg.DB
		}
		n, err := server.New(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := n.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			stop, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			n.Stop(stop)
		})
		t.url = "http://" + n.Addr()
		time.Sleep(2 * time.Second)
		return t
	}
	var c *testcluster.Cluster
	if engine == "postgres" {
		c = newTaskCluster(b, 1, "--task-cap", fmt.Sprint(dashWorkers))
	} else {
		c = testcluster.NewCluster(b, "")
		c.StartNode("a", "--task-cap", fmt.Sprint(dashWorkers))
		b.Cleanup(func() { keepLog(b, "a.log", c.Nodes[0].Log()) })
	}
	steadyLeader(b, c)
	// The leader's scheduled jobs of its first sweep end first.
	time.Sleep(2 * time.Second)
	n := c.Nodes[0]
	return dashTarget{url: n.URL, key: n.Config.AdminKey, pid: n.Pid(), db: c.DB}
}

// dashReleases is how many releases of each project are deployed to
// every environment: 3, or $BENCH_DASH_RELEASES (a longer history).
func dashReleases(b *testing.B) int {
	b.Helper()
	s := os.Getenv("BENCH_DASH_RELEASES")
	if s == "" {
		return 3
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("BENCH_DASH_RELEASES=%q is not a number above 0", s)
	}
	return n
}

// populateDashboard makes the environments, project groups, projects and
// deployments that BenchmarkDashboard200x5 describes, through the node's
// API, dashWorkers projects at a time.
func populateDashboard(b *testing.B, node dashTarget) dashHistory {
	b.Helper()
	ctx := context.Background()
	releases := dashReleases(b)
	cl := &client.Client{BaseURL: node.url, APIKey: node.key, HTTP: &http.Client{Timeout: time.Minute}}
	t0 := time.Now()
	for i, name := range dashEnvironments {
		if err := cl.Do(ctx, http.MethodPost, "/api/Spaces-1/environments", map[string]any{"Name": name, "SortOrder": i + 1}, nil); err != nil {
			b.Fatalf("creating the environment %s: %v", name, err)
		}
	}
	groups := make([]string, dashGroups)
	for i := range groups {
		var g struct{ Id string }
		if err := cl.Do(ctx, http.MethodPost, "/api/Spaces-1/projectgroups", map[string]any{"Name": fmt.Sprintf("Group %d", i+1)}, &g); err != nil {
			b.Fatalf("creating a project group: %v", err)
		}
		groups[i] = g.Id
	}
	var (
		next                atomic.Int64
		deployments, failed atomic.Int64
		wg                  sync.WaitGroup
		mu                  sync.Mutex
		firstErr            error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	for range dashWorkers {
		wg.Go(func() {
			for p := int(next.Add(1) - 1); p < dashProjects; p = int(next.Add(1) - 1) {
				mu.Lock()
				stop := firstErr != nil
				mu.Unlock()
				if stop {
					return
				}
				n, f, err := dashProject(ctx, cl, p, releases, groups[p%dashGroups])
				deployments.Add(int64(n))
				failed.Add(int64(f))
				if err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return dashHistory{releases: releases, deployments: int(deployments.Load()), failed: int(failed.Load()), took: time.Since(t0)}
}

// dashProject makes project p in the group and its history, and returns
// how many deployments it made and how many of them failed.
func dashProject(ctx context.Context, cl *client.Client, p, releases int, group string) (deployments, failed int, err error) {
	name := fmt.Sprintf("Service %03d", p+1)
	var proj struct{ Id string }
	if err := cl.Do(ctx, http.MethodPost, "/api/Spaces-1/projects",
		map[string]any{"Name": name, "LifecycleId": "Lifecycles-1", "ProjectGroupId": group}, &proj); err != nil {
		return 0, 0, fmt.Errorf("creating the project %s: %w", name, err)
	}
	if err := cl.Do(ctx, http.MethodPut, "/api/Spaces-1/projects/"+proj.Id+"/deploymentprocesses",
		map[string]any{"Steps": []any{scriptStep("Deploy", "", 0, dashScript)}}, nil); err != nil {
		return 0, 0, fmt.Errorf("setting the process of %s: %w", name, err)
	}
	type release struct {
		version string
		envs    int // deployed to the first envs environments
	}
	var plan []release
	for i := range releases {
		plan = append(plan, release{fmt.Sprintf("1.0.%d", i+1), 5})
	}
	last := fmt.Sprintf("1.0.%d", releases+1)
	switch p % 4 {
	case 0:
		plan = append(plan, release{last, 2})
	case 1:
		plan = append(plan, release{last + "-bad", 3}) // fails in Staging
	case 2:
		plan = append(plan, release{last, 1})
	}
	for _, rel := range plan {
		if err := cl.Do(ctx, http.MethodPost, "/api/Spaces-1/releases/create/v1",
			map[string]any{"spaceId": "Spaces-1", "projectName": name, "releaseVersion": rel.version}, nil); err != nil {
			return deployments, failed, fmt.Errorf("creating release %s of %s: %w", rel.version, name, err)
		}
		for _, env := range dashEnvironments[:rel.envs] {
			var out struct {
				DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
			}
			if err := cl.Do(ctx, http.MethodPost, "/api/Spaces-1/deployments/create/untenanted/v1",
				map[string]any{"spaceId": "Spaces-1", "projectName": name, "releaseVersion": rel.version, "environmentNames": []string{env}}, &out); err != nil {
				return deployments, failed, fmt.Errorf("deploying %s %s to %s: %w", name, rel.version, env, err)
			}
			if len(out.DeploymentServerTasks) != 1 {
				return deployments, failed, fmt.Errorf("deploying %s %s to %s: the answer %+v", name, rel.version, env, out)
			}
			deployments++
			state, err := waitTaskEnded(ctx, cl, out.DeploymentServerTasks[0].ServerTaskId)
			if err != nil {
				return deployments, failed, err
			}
			want := "Success"
			if strings.HasSuffix(rel.version, "-bad") && env == "Staging" {
				want = "Failed"
			}
			if state != want {
				return deployments, failed, fmt.Errorf("the deployment of %s %s to %s ended %s, want %s", name, rel.version, env, state, want)
			}
			if state == "Failed" {
				failed++
			}
		}
	}
	return deployments, failed, nil
}

// waitTaskEnded polls a task every 20 ms until it has ended, and returns
// its final state.
func waitTaskEnded(ctx context.Context, cl *client.Client, id string) (string, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var t struct {
			State       string
			IsCompleted bool
		}
		if err := cl.Do(ctx, http.MethodGet, "/api/tasks/"+id, nil, &t); err != nil {
			return "", err
		}
		if t.IsCompleted {
			return t.State, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the task %s has not ended after 2 minutes: %s", id, t.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dashboard is what timeDashboard checks of an answer.
type dashboard struct {
	Projects      []struct{ Id, ProjectGroupId string }
	Environments  []struct{ Id, Name string }
	Items         []dashboardItem
	PreviousItems []dashboardItem
}

type dashboardItem struct {
	ProjectId, EnvironmentId, ReleaseVersion, State string
	IsCurrent, IsPrevious, IsCompleted              bool
}

// checkDashboard fails unless the answer shows what populateDashboard
// made: every project and environment, one item per pair, the release
// each shows, and the previous items of the failed deployments.
func checkDashboard(b *testing.B, body []byte, h dashHistory) {
	b.Helper()
	var d dashboard
	if err := json.Unmarshal(body, &d); err != nil {
		b.Fatalf("the dashboard: %v", err)
	}
	if len(d.Projects) != dashProjects || len(d.Environments) != len(dashEnvironments) ||
		len(d.Items) != dashProjects*len(dashEnvironments) || len(d.PreviousItems) != h.failed {
		b.Fatalf("the dashboard has %d projects, %d environments, %d items and %d previous items; want %d, %d, %d, %d",
			len(d.Projects), len(d.Environments), len(d.Items), len(d.PreviousItems),
			dashProjects, len(dashEnvironments), dashProjects*len(dashEnvironments), h.failed)
	}
	versions := map[string]int{}
	for _, it := range d.Items {
		if !it.IsCompleted || it.IsCurrent != (it.State == "Success") {
			b.Fatalf("an item of the dashboard: %+v", it)
		}
		versions[it.ReleaseVersion+"/"+it.State]++
	}
	for _, it := range d.PreviousItems {
		if !it.IsPrevious || it.State != "Success" || it.ReleaseVersion != fmt.Sprintf("1.0.%d", h.releases) {
			b.Fatalf("a previous item of the dashboard: %+v", it)
		}
	}
	// Per four projects: the extra release (1.0.4) in two environments,
	// 1.0.4-bad in three (failed in one), 1.0.4 in one; the last full
	// release (1.0.3) in the other 14 of 20.
	q := dashProjects / 4
	full, extra := fmt.Sprintf("1.0.%d", h.releases), fmt.Sprintf("1.0.%d", h.releases+1)
	want := map[string]int{extra + "/Success": 3 * q, extra + "-bad/Success": 2 * q, extra + "-bad/Failed": q, full + "/Success": 14 * q}
	for k, n := range want {
		if versions[k] != n {
			b.Fatalf("the dashboard shows %v (release/state: items), want %v", versions, want)
		}
	}
}

// timeDashboard GETs the dashboard once per op and reports the median and
// p99 time, the node's CPU time per request and the body's size.
func timeDashboard(b *testing.B, node dashTarget, h dashHistory) {
	b.Helper()
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	defer hc.CloseIdleConnections()
	get := func(gzipped bool) (body []byte, header http.Header, took time.Duration) {
		req, _ := http.NewRequest(http.MethodGet, node.url+"/api/Spaces-1/dashboard", nil)
		req.Header.Set("X-Octopus-ApiKey", node.key)
		if gzipped {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, err = io.ReadAll(resp.Body)
		took = time.Since(t0)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET the dashboard: %d %v %.200s", resp.StatusCode, err, body)
		}
		return body, resp.Header, took
	}
	// Warm up: the connection, the node's and the database's caches.
	var body []byte
	for range 5 {
		body, _, _ = get(false)
	}
	checkDashboard(b, body, h)
	_, hdr, _ := get(true)
	encoding := hdr.Get("Content-Encoding")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()

	var took samples
	cpu0, err := procCPU(node.pid)
	if err != nil {
		b.Fatal(err)
	}
	busy0, err := machineBusy()
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	for b.Loop() {
		var d time.Duration
		body, _, d = get(false)
		took = append(took, d)
	}
	b.StopTimer()
	wall := time.Since(t0)
	cpu1, err := procCPU(node.pid)
	if err != nil {
		b.Fatal(err)
	}
	busy1, err := machineBusy()
	if err != nil {
		b.Fatal(err)
	}
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	b.Logf("%s; %d requests, ms in run order: %s; Content-Encoding when gzip is asked: %q; load %s", h.note, len(took), msList(took), encoding, loadAverage())
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(took.median()), "median_ms")
	b.ReportMetric(ms(percentile(sorted, 99)), "p99_ms")
	b.ReportMetric(ms(sorted[len(sorted)-1]), "worst_ms")
	b.ReportMetric(ms(cpu1-cpu0)/float64(len(took)), "node_cpu_ms/op")
	b.ReportMetric(float64(len(body)), "body_bytes")
	b.ReportMetric(float64(gz.Len()), "gzip_bytes")
	b.ReportMetric(100*float64(busy1-busy0)/float64(wall), "machine_busy_%")
}

// msList formats durations in milliseconds, one decimal.
func msList(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.1f", ms(d))
	}
	return strings.Join(parts, " ")
}
