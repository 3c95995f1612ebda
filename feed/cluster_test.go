package feed_test

// Tests of the built-in package repository across real cuttle server
// processes on one PostgreSQL database: a 1 GiB upload streamed through one
// node in bounded memory and downloaded through another, concurrent uploads
// of one version through two nodes in each overwrite mode, and a cluster
// whose shared storage is an object store (feed/feed.go, DESIGN.md "Shared
// storage"). Every test runs by default, in CI too.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

func TestMain(m *testing.M) { os.Exit(testcluster.RunWithPostgres(m)) }

const (
	// memorySampleInterval is how often TestUploadOfOneGiB... reads the
	// uploading node's resident memory.
	memorySampleInterval = 100 * time.Millisecond
	// maxUploadGrowth bounds how much an upload may grow the resident
	// memory of the node it streams through.
	maxUploadGrowth = 64 << 20
	// settle is how long storage may take to reach its final state after
	// the answers (it needs none: the losing upload deletes its file before
	// it answers).
	settle = 5 * time.Second
)

// contentOf returns the SHA-256 (hex) of the content PseudoRandom yields
// for seed and size.
func contentOf(t *testing.T, seed uint64, size int64) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, testcluster.PseudoRandom(seed, size)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// download streams the raw file of package version id (such as
// packages-app.1.0.0) through cl, hashing it, and returns its SHA-256 (hex)
// and size; it fails the test unless the answer is 200.
func download(t *testing.T, ctx context.Context, cl *client.Client, id string) (string, int64) {
	t.Helper()
	h := sha256.New()
	a, err := testcluster.Download(ctx, cl, "/api/Spaces-1/packages/"+id+"/raw", "", h)
	if err != nil {
		t.Fatalf("downloading %s through %s: %v", id, cl.BaseURL, err)
	}
	if a.Status != http.StatusOK {
		t.Fatalf("downloading %s through %s: %d %s", id, cl.BaseURL, a.Status, a.Body)
	}
	return hex.EncodeToString(h.Sum(nil)), a.Bytes
}

// packageVersions lists the versions of packageID through cl
// (GET /api/Spaces-1/packages?nuGetPackageId=...).
func packageVersions(t *testing.T, ctx context.Context, cl *client.Client, packageID string) []client.Package {
	t.Helper()
	var page struct {
		TotalResults int
		Items        []client.Package
	}
	if err := cl.Do(ctx, http.MethodGet, "/api/Spaces-1/packages?"+url.Values{"nuGetPackageId": {packageID}}.Encode(), nil, &page); err != nil {
		t.Fatalf("listing the versions of %s: %v", packageID, err)
	}
	return page.Items
}

// filesUnder returns every file under root (temporary files included), as
// slash-separated paths relative to root; none if root does not exist.
func filesUnder(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone meanwhile, or no such folder
			}
			return err
		}
		if !d.IsDir() {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	return files, err
}

// memoryWatch samples a process's resident memory every
// memorySampleInterval and keeps the most it saw.
type memoryWatch struct {
	stop chan struct{}
	done chan struct{}
	most int64
	n    int
}

func watchMemory(pid int) *memoryWatch {
	w := &memoryWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(memorySampleInterval)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			if m, err := testcluster.ReadMemory(pid); err == nil {
				w.most = max(w.most, m.RSS)
				w.n++
			}
		}
	}()
	return w
}

// Stop stops the sampling and returns the most resident memory sampled and
// the number of samples.
func (w *memoryWatch) Stop() (int64, int) {
	close(w.stop)
	<-w.done
	return w.most, w.n
}

// cpuTime returns the CPU time (user and system) the process pid has used,
// from /proc/<pid>/stat; 0 if it cannot be read.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the parenthesised command name start at the
	// state, the third; utime and stime are the 14th and 15th, in ticks
	// of USER_HZ (100 a second).
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	user, _ := strconv.ParseInt(fields[11], 10, 64)
	sys, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(user+sys) * 10 * time.Millisecond
}

func mibPerSecond(bytes int64, d time.Duration) string {
	return fmt.Sprintf("%.0f MiB/s", float64(bytes)/(1<<20)/d.Seconds())
}

// TestUploadOfOneGiBThroughOneNodeDownloadThroughAnother: a 1 GiB package
// uploaded through node-a as the official client sends it (chunked
// multipart/form-data) streams to shared storage: node-a's resident memory
// grows by less than 64 MiB; node-b, on the same storage, serves the whole
// file and a range of it.
func TestUploadOfOneGiBThroughOneNodeDownloadThroughAnother(t *testing.T) {
	t.Parallel()
	const (
		size = 1 << 30
		seed = 1
		name = "big.1.0.0.zip"
	)
	c := testcluster.NewCluster(t, testcluster.SharedPostgres(t).NewDatabase(t))
	a, b := c.StartNode("node-a"), c.StartNode("node-b")
	pid := a.Pid()
	before, err := testcluster.ReadMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	// A node that buffered the file would pass this and be killed, failing
	// the upload, before it exhausts the machine.
	a.Sample(t, before.RSS+512<<20)
	if err := testcluster.ResetPeakMemory(pid); err != nil {
		t.Fatal(err)
	}
	if before, err = testcluster.ReadMemory(pid); err != nil {
		t.Fatal(err)
	}

	ctx := testcluster.Context(t, 5*time.Minute)
	h := sha256.New()
	watch := watchMemory(pid)
	cpu := cpuTime(pid)
	began := time.Now()
	up, err := testcluster.UploadPackage(ctx, a.Client, name, "FailIfExists", io.TeeReader(testcluster.PseudoRandom(seed, size), h))
	took := time.Since(began)
	most, samples := watch.Stop()
	cpu = cpuTime(pid) - cpu
	if err != nil {
		t.Fatalf("uploading %s through node-a after %v: %v", name, took, err)
	}
	after, err := testcluster.ReadMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	sampledGrowth, peakGrowth := most-before.RSS, after.Peak-before.RSS
	t.Logf("uploaded 1 GiB through node-a in %v (%s; node-a used %v of CPU); node-a's resident memory: %s before, growth %s at most over %d samples every %v, %s at its peak (VmHWM)",
		took.Round(time.Millisecond), mibPerSecond(size, took), cpu, testcluster.MiB(before.RSS), testcluster.MiB(sampledGrowth), samples, memorySampleInterval, testcluster.MiB(peakGrowth))
	if up.Status != http.StatusCreated || up.Package.Hash != sum || up.Package.PackageSizeBytes != size ||
		up.Package.PackageId != "big" || up.Package.Version != "1.0.0" {
		t.Fatalf("the upload answered %d %+v (%s), want 201 with Hash %s and PackageSizeBytes %d", up.Status, up.Package, up.Body, sum, size)
	}
	if growth := max(sampledGrowth, peakGrowth); growth >= maxUploadGrowth {
		t.Errorf("node-a's resident memory grew by %s while it took the upload, want less than %s", testcluster.MiB(growth), testcluster.MiB(maxUploadGrowth))
	}
	files, err := filesUnder(filepath.Join(c.Storage, "packages", "big"))
	if err != nil || len(files) != 1 || filepath.Base(files[0]) != name {
		t.Errorf("the shared storage holds %q under packages/big (%v), want one file %s", files, err, name)
	}

	cpu = cpuTime(b.Pid())
	began = time.Now()
	got, n := download(t, ctx, b.Client, "packages-big.1.0.0")
	took = time.Since(began)
	t.Logf("downloaded 1 GiB through node-b in %v (%s; node-b used %v of CPU)", took.Round(time.Millisecond), mibPerSecond(n, took), cpuTime(b.Pid())-cpu)
	if got != sum || n != size {
		t.Errorf("node-b served %d bytes of SHA-256 %s, want %d bytes of %s", n, got, int64(size), sum)
	}

	var part bytes.Buffer
	ra, err := testcluster.Download(ctx, b.Client, "/api/Spaces-1/packages/packages-big.1.0.0/raw", "bytes=1000-1999", &part)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 2000)
	io.ReadFull(testcluster.PseudoRandom(seed, size), want)
	if ra.Status != http.StatusPartialContent || ra.Header.Get("Content-Range") != "bytes 1000-1999/"+strconv.Itoa(size) || !bytes.Equal(part.Bytes(), want[1000:]) {
		t.Errorf("the range bytes=1000-1999 through node-b: %d, Content-Range %q, %d bytes (equal to the file's: %v) %s",
			ra.Status, ra.Header.Get("Content-Range"), part.Len(), bytes.Equal(part.Bytes(), want[1000:]), ra.Body)
	}
}

// TestConcurrentUploadsOfOneVersionThroughTwoNodes: two uploads of one
// version with different contents, started at the same instant through
// node-a and node-b, end as the overwrite mode says, with one document and
// its file alone in shared storage. Each mode runs five times, each on a
// fresh version, which is then deleted.
func TestConcurrentUploadsOfOneVersionThroughTwoNodes(t *testing.T) {
	t.Parallel()
	c := testcluster.NewCluster(t, testcluster.SharedPostgres(t).NewDatabase(t))
	nodes := []*testcluster.Node{c.StartNode("node-a"), c.StartNode("node-b")}
	round := 0
	for _, mode := range []string{"FailIfExists", "IgnoreIfExists", "OverwriteExisting"} {
		ok := t.Run(mode, func(t *testing.T) {
			for range 5 {
				round++
				raceUploads(t, c, nodes, mode, round)
				if t.Failed() {
					return // the storage the next round checks is not clean
				}
			}
		})
		if !ok {
			return
		}
	}
}

// raceUploads uploads race.1.0.<round>.zip through both nodes at once in
// mode, checks the outcome, and deletes the version.
func raceUploads(t *testing.T, c *testcluster.Cluster, nodes []*testcluster.Node, mode string, round int) {
	t.Helper()
	const size = 2 << 20
	version := fmt.Sprintf("1.0.%d", round)
	name := "race." + version + ".zip"
	ctx := testcluster.Context(t, 2*time.Minute)
	type result struct {
		node  string
		seed  uint64
		sum   string // of the content it sent
		ans   testcluster.UploadAnswer
		err   error
		took  time.Duration
		start time.Time
	}
	results := make([]result, len(nodes))
	for i, n := range nodes {
		seed := uint64(round*10 + i)
		results[i] = result{node: n.Config.Name, seed: seed, sum: contentOf(t, seed, size)}
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			r := &results[i]
			<-start
			r.start = time.Now()
			r.ans, r.err = testcluster.UploadPackage(ctx, n.Client, name, mode, testcluster.PseudoRandom(r.seed, size))
			r.took = time.Since(r.start)
		})
	}
	close(start)
	wg.Wait()
	var statuses []int
	describe := ""
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("round %d: the upload through %s: %v", round, r.node, r.err)
		}
		statuses = append(statuses, r.ans.Status)
		describe += fmt.Sprintf("\n  %s: %d after %v, Hash %s (sent %s) %s", r.node, r.ans.Status, r.took.Round(time.Millisecond), r.ans.Package.Hash, r.sum, strings.TrimSpace(r.ans.Body))
	}
	slices.Sort(statuses)
	t.Logf("round %d, %s:%s", round, name, describe)
	wantStatuses := map[string][]int{
		"FailIfExists":      {http.StatusCreated, http.StatusConflict},
		"IgnoreIfExists":    {http.StatusOK, http.StatusCreated},
		"OverwriteExisting": {http.StatusCreated, http.StatusCreated},
	}[mode]
	if !slices.Equal(statuses, wantStatuses) {
		t.Fatalf("round %d, %s: the answers are %v, want %v:%s", round, mode, statuses, wantStatuses, describe)
	}
	var created, ignored []result
	for _, r := range results {
		switch r.ans.Status {
		case http.StatusCreated:
			created = append(created, r)
			if r.ans.Package.Hash != r.sum || r.ans.Package.PackageSizeBytes != size || r.ans.Package.Version != version {
				t.Errorf("round %d: the 201 through %s is %+v, want the Hash of what it sent, %s, and %d bytes", round, r.node, r.ans.Package, r.sum, size)
			}
		case http.StatusOK:
			ignored = append(ignored, r)
		}
	}
	for _, r := range ignored {
		if r.ans.Package.Hash != created[0].sum {
			t.Errorf("round %d: the 200 through %s has Hash %s, want the 201's, %s", round, r.node, r.ans.Package.Hash, created[0].sum)
		}
	}

	// The document: one version, whose Hash is a 201's (the one, or
	// either of the two overwrites), and whose file has that Hash.
	listed := packageVersions(t, ctx, nodes[0].Client, "race")
	if len(listed) != 1 || listed[0].Version != version {
		t.Fatalf("round %d: the feed lists %+v, want race %s alone", round, listed, version)
	}
	doc := listed[0]
	if !slices.ContainsFunc(created, func(r result) bool { return r.sum == doc.Hash }) {
		t.Errorf("round %d: the document's Hash is %s, none of the 201s':%s", round, doc.Hash, describe)
	}
	for _, n := range nodes {
		got, served := download(t, ctx, n.Client, "packages-race."+version)
		if got != doc.Hash || served != size {
			t.Errorf("round %d: %s serves %d bytes of SHA-256 %s, want the document's %s", round, n.Config.Name, served, got, doc.Hash)
		}
	}

	// Storage: the document's file alone, no temporary file left.
	dir := filepath.Join(c.Storage, "packages", "race")
	var files []string
	deadline := time.Now().Add(settle)
	for {
		var err error
		if files, err = filesUnder(dir); err != nil {
			t.Fatal(err)
		}
		if len(files) == 1 && filepath.Base(files[0]) == name || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(files) != 1 || filepath.Base(files[0]) != name {
		t.Errorf("round %d, %s: %v after the answers, packages/race/ in the shared storage holds %q, want one file %s",
			round, mode, settle, files, name)
	}

	if err := nodes[1].Client.Do(ctx, http.MethodDelete, "/api/Spaces-1/packages/packages-race."+version, nil, nil); err != nil {
		t.Fatalf("round %d: deleting race %s: %v", round, version, err)
	}
	testcluster.Eventually(t, settle, func() error {
		if files, err := filesUnder(dir); err != nil || len(files) > 0 {
			return fmt.Errorf("after deleting race %s, packages/race/ holds %q (%v)", version, files, err)
		}
		return nil
	})
}

// TestClusterOnObjectStore: two nodes whose shared storage is an S3
// object store (versitygw), given its credentials through the
// environment. A package uploaded through node-a downloads whole through
// node-b; a task's log written by the node that runs it reads whole
// through the other; the files are objects of the bucket under the
// storage's prefix, and no node wrote a local storage folder. (Artifacts
// come from agents only: the API cannot create one, so none is made here.)
func TestClusterOnObjectStore(t *testing.T) {
	t.Parallel()
	o := testcluster.StartObjectStore(t)
	db := testcluster.SharedPostgres(t).NewDatabase(t)
	c := testcluster.NewCluster(t, db)
	start := func(name string) *testcluster.Node {
		cfg := c.NodeConfig(name, "--s3-endpoint", o.Endpoint)
		cfg.Storage = o.URL("cuttle")
		cfg.Env = []string{"CUTTLE_S3_ACCESS_KEY=" + o.AccessKey, "CUTTLE_S3_SECRET_KEY=" + o.SecretKey}
		return testcluster.StartNode(t, cfg)
	}
	a, b := start("node-a"), start("node-b")
	nodes := []*testcluster.Node{a, b}
	ctx := testcluster.Context(t, 2*time.Minute)

	// A package of several parts of a multipart upload (blob.PartSize).
	const size = 40 << 20
	sum := contentOf(t, 7, size)
	up, err := testcluster.UploadPackage(ctx, a.Client, "objects.2.0.0.zip", "FailIfExists", testcluster.PseudoRandom(7, size))
	if err != nil {
		t.Fatal(err)
	}
	if up.Status != http.StatusCreated || up.Package.Hash != sum || up.Package.PackageSizeBytes != size {
		t.Fatalf("the upload through node-a answered %d %+v (%s), want 201 with Hash %s", up.Status, up.Package, up.Body, sum)
	}
	if got, n := download(t, ctx, b.Client, "packages-objects.2.0.0"); got != sum || n != size {
		t.Errorf("node-b served %d bytes of SHA-256 %s, want %d bytes of %s", n, got, int64(size), sum)
	}

	// A task's log, read through the node that did not run it.
	tk, err := a.Client.CreateTask(ctx, "AdHocScript", map[string]any{
		"ScriptBody": `for i in $(seq 1 50); do echo "line $i of 50"; done`, "Syntax": "Bash"})
	if err != nil {
		t.Fatal(err)
	}
	tk = testcluster.WaitTask(t, a.Client, tk.Id, time.Minute, "Success", "Failed", "Canceled", "TimedOut")
	other := a
	if tk.ServerNode == a.Config.Name {
		other = b
	}
	log, err := testcluster.TaskLog(ctx, other.Client, tk.Id)
	if err != nil {
		t.Fatal(err)
	}
	if tk.State != "Success" {
		t.Fatalf("task %s ended %s on %s (%s):\n%s", tk.Id, tk.State, tk.ServerNode, tk.ErrorMessage, log)
	}
	var numbers []int
	for _, m := range regexp.MustCompile(`line (\d+) of 50`).FindAllStringSubmatch(log, -1) {
		i, _ := strconv.Atoi(m[1])
		numbers = append(numbers, i)
	}
	want := make([]int, 50)
	for i := range want {
		want[i] = i + 1
	}
	if !slices.Equal(numbers, want) {
		t.Errorf("the log of %s (run on %s) read through %s has the lines %v, want 1 to 50 in order:\n%s", tk.Id, tk.ServerNode, other.Config.Name, numbers, log)
	}

	// A package step on an agent: the package comes out of the object
	// store, and its Deploy.sh keeps an artifact, which goes into it.
	testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: a, AdminKey: c.AdminKey,
		Poll: []string{"127.0.0.1:" + strconv.Itoa(a.PollingPort), "127.0.0.1:" + strconv.Itoa(b.PollingPort)}})
	site := tarGz(t, map[string]string{"Deploy.sh": "echo built > report.txt\nnew_octopusartifact report.txt report.txt\n"})
	if up, err := testcluster.UploadPackage(ctx, a.Client, "site.1.0.0.tar.gz", "FailIfExists", bytes.NewReader(site)); err != nil || up.Status != http.StatusCreated {
		t.Fatalf("uploading site: %v %+v", err, up)
	}
	var project struct{ Id string }
	call(t, a.Client, http.MethodPost, "/api/Spaces-1/projects", map[string]any{"Name": "Site", "LifecycleId": "Lifecycles-1", "ProjectGroupId": "ProjectGroups-1"}, &project)
	call(t, a.Client, http.MethodPut, "/api/Spaces-1/projects/"+project.Id+"/deploymentprocesses", map[string]any{"Steps": []any{map[string]any{
		"Name": "Site", "Properties": map[string]string{"Octopus.Action.TargetRoles": "web"},
		"Actions": []any{map[string]any{"Name": "Site", "ActionType": "Octopus.TentaclePackage",
			"Packages": []any{map[string]any{"Name": "", "PackageId": "site", "FeedId": "feeds-builtin"}}}}}}}, nil)
	call(t, a.Client, http.MethodPost, "/api/Spaces-1/releases/create/v1", map[string]any{"spaceId": "Spaces-1", "projectName": "Site", "releaseVersion": "1.0.0"}, nil)
	var deployed struct {
		DeploymentServerTasks []struct{ ServerTaskId string }
	}
	call(t, b.Client, http.MethodPost, "/api/Spaces-1/deployments/create/untenanted/v1",
		map[string]any{"spaceId": "Spaces-1", "projectName": "Site", "releaseVersion": "1.0.0", "environmentNames": []string{"Test"}}, &deployed)
	deployTask := deployed.DeploymentServerTasks[0].ServerTaskId
	if done := testcluster.WaitTask(t, b.Client, deployTask, time.Minute, "Success", "Failed"); done.State != "Success" {
		log, _ := testcluster.TaskLog(ctx, b.Client, deployTask)
		t.Fatalf("the deployment ended %s:\n%s", done.State, log)
	}
	var artifacts struct {
		Items []struct{ Id, Filename string }
	}
	call(t, a.Client, http.MethodGet, "/api/Spaces-1/artifacts?regarding="+deployTask, nil, &artifacts)
	if len(artifacts.Items) != 1 || artifacts.Items[0].Filename != "report.txt" {
		t.Fatalf("the deployment's artifacts: %+v", artifacts.Items)
	}
	var content bytes.Buffer
	if ans, err := testcluster.Download(ctx, a.Client, "/api/Spaces-1/artifacts/"+artifacts.Items[0].Id+"/content", "", &content); err != nil || ans.Status != 200 || content.String() != "built\n" {
		t.Errorf("the artifact's content: %v %+v %q", err, ans, content.String())
	}

	// The bucket holds the files under the storage's prefix.
	bucket, err := blob.NewS3(ctx, o.URL(""), o.Settings())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := bucket.List(ctx, "", func(info blob.Info) error {
		keys = append(keys, fmt.Sprintf("%s (%d bytes)", info.Key, info.Size))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the bucket holds %q", keys)
	pkg := regexp.MustCompile(`^cuttle/packages/objects/[^/]+/objects\.2\.0\.0\.zip \(` + strconv.Itoa(size) + ` bytes\)$`)
	taskLog := regexp.MustCompile(`^cuttle/tasklogs/` + strconv.FormatInt(testcluster.TaskNumber(t, tk.Id), 10) + `/`)
	artifact := regexp.MustCompile(`^cuttle/artifacts/` + deployTask + `/Machines-\d+/report\.txt \(6 bytes\)$`)
	if !slices.ContainsFunc(keys, pkg.MatchString) || !slices.ContainsFunc(keys, taskLog.MatchString) || !slices.ContainsFunc(keys, artifact.MatchString) {
		t.Errorf("the bucket holds %q, want the package under cuttle/packages/objects/, the task's log under cuttle/tasklogs/ and the artifact under cuttle/artifacts/", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "cuttle/packages/") && !strings.HasPrefix(k, "cuttle/tasklogs/") && !strings.HasPrefix(k, "cuttle/artifacts/") {
			t.Errorf("the bucket holds %s, outside the storage's folders (cuttle/packages/, artifacts/, tasklogs/)", k)
		}
	}

	// Nothing on the nodes' local disks, and no secret in their logs.
	for _, n := range nodes {
		if files, err := filesUnder(filepath.Join(n.Config.DataDir, "storage")); err != nil || len(files) > 0 {
			t.Errorf("%s wrote %q (%v) to its local storage folder", n.Config.Name, files, err)
		}
		if strings.Contains(n.Log(), o.SecretKey) {
			t.Errorf("the log of %s holds the object store's secret key", n.Config.Name)
		}
	}
}

// call calls the API and fails the test on an error.
func call(t *testing.T, cl *client.Client, method, path string, in, out any) {
	t.Helper()
	if err := cl.Do(testcluster.Context(t, 20*time.Second), method, path, in, out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

// tarGz returns a tar.gz archive of files; .sh files are executable.
func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		mode := int64(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(content))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}
