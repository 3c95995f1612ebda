package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// nodeRunner starts a node and returns a runner of client commands against it.
func nodeRunner(t *testing.T) (*testcluster.Node, runner) {
	t.Helper()
	n := testcluster.StartNode(t, testcluster.NodeConfig{Name: "solo", AdminKey: cuttle.NewAPIKey()})
	return n, runner(func(t *testing.T, args ...string) (int, string, string) {
		return cli(t, nil, append(args, "--server", n.URL, "--api-key", n.Config.AdminKey)...)
	})
}

// writeZip writes a zip package holding one file of content.
func writeZip(t *testing.T, path, content string) {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create("index.html")
	if err == nil {
		_, err = io.WriteString(w, content)
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = os.WriteFile(path, b.Bytes(), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// writeTarGz writes a .tar.gz package holding one file of content.
func writeTarGz(t *testing.T, path, content string) {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	err := tw.WriteHeader(&tar.Header{Name: "run.sh", Mode: 0o755, Size: int64(len(content))})
	if err == nil {
		_, err = io.WriteString(tw, content)
	}
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = gz.Close()
	}
	if err == nil {
		err = os.WriteFile(path, b.Bytes(), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// fileSum returns a file's size and lower-case hex SHA-256.
func fileSum(t *testing.T, path string) (int64, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}

// TestPackageCommands pushes a zip and a tar.gz package, pushes them again
// under each overwrite mode, refuses a bad mode, reports a file name
// without a version (and still pushes the file after it), then lists the
// feed, a package's versions, and deletes: a version, then one a release
// uses (the API's 409 message).
func TestPackageCommands(t *testing.T) {
	t.Parallel()
	_, cmd := nodeRunner(t)
	dir := t.TempDir()
	app, web := filepath.Join(dir, "app.1.0.0.zip"), filepath.Join(dir, "web.2.0.0.tar.gz")
	writeZip(t, app, "<h1>app 1.0.0</h1>")
	writeTarGz(t, web, "#!/bin/sh\necho web 2.0.0\n")
	appSize, appSum := fileSum(t, app)
	webSize, webSum := fileSum(t, web)

	code, out, errOut := cmd(t, "package", "push", app, web)
	for _, want := range []string{
		fmt.Sprintf("%s: pushed app 1.0.0 (%d B, SHA-256 %s…)\n", app, appSize, appSum[:16]),
		fmt.Sprintf("%s: pushed web 2.0.0 (%d B, SHA-256 %s…)\n", web, webSize, webSum[:16]),
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("package push: exit %d\n%s%s; want %q", code, out, errOut, want)
		}
	}
	if strings.Contains(errOut, "\r") {
		t.Errorf("package push drew a progress bar on a standard error that is not a terminal: %q", errOut)
	}

	// Again: FailIfExists (the default) refuses both, and says so for each.
	code, out, errOut = cmd(t, "package", "push", app, web)
	for _, want := range []string{
		app + ": failed: The package app version 1.0.0 already exists in the built-in feed",
		web + ": failed: The package web version 2.0.0 already exists in the built-in feed",
		"[HTTP 409]", "cuttle: 2 of 2 package file(s) failed",
	} {
		if code != 1 || out != "" || !strings.Contains(errOut, want) {
			t.Fatalf("package push of versions that exist: exit %d\n%s%s; want exit 1 and %q", code, out, errOut, want)
		}
	}
	code, out, errOut = cmd(t, "package", "push", app, "--overwrite-mode", "IgnoreIfExists")
	if want := app + ": kept the existing app 1.0.0 (IgnoreIfExists)\n"; code != 0 || out != want {
		t.Fatalf("package push --overwrite-mode IgnoreIfExists: exit %d\n%s%s; want %q", code, out, errOut, want)
	}
	writeZip(t, app, "<h1>app 1.0.0, rebuilt</h1>")
	newSize, newSum := fileSum(t, app)
	var results []pushResult
	cmd.mustJSON(t, &results, "package", "push", app, "--overwrite-mode", "overwriteexisting")
	if len(results) != 1 || results[0].Outcome != "Pushed" || results[0].Package == nil ||
		results[0].Package.Hash != newSum || results[0].Package.PackageSizeBytes != newSize || results[0].Package.Id != "packages-app.1.0.0" {
		t.Fatalf("package push --overwrite-mode OverwriteExisting --output json: %+v; want app 1.0.0 replaced, SHA-256 %s", results, newSum)
	}
	code, out, errOut = cmd(t, "package", "push", app, "--overwrite-mode", "Sometimes")
	if code != 2 || out != "" || !strings.Contains(errOut, `--overwrite-mode must be FailIfExists, IgnoreIfExists or OverwriteExisting, not "Sometimes"`) {
		t.Fatalf("package push with a bad mode: exit %d\n%s%s; want exit 2 naming the modes", code, out, errOut)
	}
	if code, _, errOut = cmd(t, "package", "push"); code != 2 || !strings.Contains(errOut, "name the package files to push") {
		t.Fatalf("package push of no file: exit %d %s; want 2", code, errOut)
	}

	// A name without a version fails; the files after it are pushed.
	noVersion, next := filepath.Join(dir, "app.zip"), filepath.Join(dir, "app.1.1.0.zip")
	writeZip(t, noVersion, "no version")
	writeZip(t, next, "<h1>app 1.1.0</h1>")
	code, out, errOut = cmd(t, "package", "push", noVersion, filepath.Join(dir, "missing.1.0.0.zip"), next)
	for _, want := range []string{noVersion + ": failed: The file name app.zip has no version", "[HTTP 400]", "missing.1.0.0.zip: failed: open ", "no such file",
		"cuttle: 2 of 3 package file(s) failed"} {
		if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(out, next+": pushed app 1.1.0 (") {
			t.Fatalf("package push of a name without a version, a missing file and a good one: exit %d\n%s%s; want %q and the last pushed", code, out, errOut, want)
		}
	}

	code, out, errOut = cmd(t, "package", "list")
	if code != 0 || !regexp.MustCompile(`PACKAGE +LATEST VERSION +SIZE +PUBLISHED\napp +1\.1\.0 +\d+ B +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\nweb +2\.0\.0 +`+fmt.Sprint(webSize)+` B +`).MatchString(out) {
		t.Fatalf("package list: exit %d\n%s%s", code, out, errOut)
	}
	var listed []client.Package
	if cmd.mustJSON(t, &listed, "package", "list", "--filter", "WE"); len(listed) != 1 || listed[0].PackageId != "web" || listed[0].Hash != webSum {
		t.Fatalf("package list --filter WE --output json: %+v", listed)
	}
	if code, out, _ = cmd(t, "package", "list", "--take", "1"); code != 0 || !strings.Contains(out, "(1 of 2; --take for more)") || strings.Contains(out, "web") {
		t.Fatalf("package list --take 1: exit %d\n%s", code, out)
	}
	code, out, errOut = cmd(t, "package", "versions", "app")
	if code != 0 || !regexp.MustCompile(`VERSION +SIZE +PUBLISHED\n1\.1\.0 +\d+ B +\S+ \S+\n1\.0\.0 +`+fmt.Sprint(newSize)+` B +`).MatchString(out) {
		t.Fatalf("package versions app: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ = cmd(t, "package", "versions", "app", "--take", "1"); code != 0 || !strings.Contains(out, "(1 of 2; --take for more)") || strings.Contains(out, "1.0.0") {
		t.Fatalf("package versions app --take 1: exit %d\n%s", code, out)
	}
	cmd.fails(t, []string{`there is no package "nope" in the built-in feed`}, "package", "versions", "nope")

	code, out, errOut = cmd(t, "package", "delete", "web", "2.0.0")
	if code != 0 || out != "deleted package web 2.0.0 (packages-web.2.0.0)\n" {
		t.Fatalf("package delete web 2.0.0: exit %d\n%s%s", code, out, errOut)
	}
	cmd.fails(t, []string{`there is no package "web"`}, "package", "versions", "web")
	cmd.fails(t, []string{`There is no package "packages-web.2.0.0" in the built-in feed.`, "404"}, "package", "delete", "web", "2.0.0")
	if code, _, errOut = cmd(t, "package", "delete", "web"); code != 2 {
		t.Fatalf("package delete without a version: exit %d %s; want 2", code, errOut)
	}

	// A release that deploys app 1.1.0 keeps it from deletion.
	var p doc
	cmd.mustJSON(t, &p, "project", "create", "Shop")
	var process map[string]any
	cmd.mustJSON(t, &process, "process", "show", "--project", "Shop")
	process["Steps"] = []any{map[string]any{"Name": "Deploy app", "Properties": map[string]string{"Octopus.Action.TargetRoles": "web"},
		"Actions": []any{map[string]any{"Name": "Deploy app", "ActionType": "Octopus.TentaclePackage",
			"Properties": map[string]string{"Octopus.Action.Package.PackageId": "app", "Octopus.Action.Package.FeedId": "feeds-builtin"},
			"Packages":   []any{map[string]any{"Name": "", "PackageId": "app", "FeedId": "feeds-builtin"}}}}}}
	file := filepath.Join(dir, "process.json")
	raw, _ := json.Marshal(process)
	os.WriteFile(file, raw, 0o644)
	if code, out, errOut = cmd(t, "process", "edit", "--project", "Shop", "--file", file); code != 0 {
		t.Fatalf("process edit: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = cmd(t, "release", "create", "--project", "Shop", "--version", "1.0.0"); code != 0 {
		t.Fatalf("release create: exit %d\n%s%s", code, out, errOut)
	}
	cmd.fails(t, []string{"The package app version 1.1.0 is used by the release 1.0.0", "delete the release first", "[HTTP 409]"}, "package", "delete", "app", "1.1.0")
}

// TestPackagePushStreams pushes a 64 MiB file: the command's Go heap grows
// by much less than the file (it streams it), the feed holds the file
// whole, and pushing it again is refused before its end with the server's
// message. Not parallel: it measures the process's heap.
func TestPackagePushStreams(t *testing.T) {
	n, cmd := nodeRunner(t)
	const size = 64 << 20
	big := filepath.Join(t.TempDir(), "big.1.0.0.zip")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	w := bufio.NewWriter(io.MultiWriter(f, h))
	if _, err := io.CopyN(w, rand.NewChaCha8([32]byte{1}), size); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	sum := hex.EncodeToString(h.Sum(nil))

	// heapGrowth runs the command while sampling the heap, and returns
	// by how much it grew at most over the heap before it.
	heapGrowth := func(args ...string) (int, string, string, int64) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		base := int64(m.HeapInuse)
		var most atomic.Int64
		stop, sampled := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(sampled)
			var m runtime.MemStats
			for {
				runtime.ReadMemStats(&m)
				most.Store(max(most.Load(), int64(m.HeapInuse)))
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		code, out, errOut := cmd(t, args...)
		close(stop)
		<-sampled
		return code, out, errOut, most.Load() - base
	}
	code, out, errOut, growth := heapGrowth("package", "push", big)
	if want := big + ": pushed big 1.0.0 (64.0 MiB, SHA-256 " + sum[:16] + "…)\n"; code != 0 || out != want {
		t.Fatalf("package push of 64 MiB: exit %d\n%s%s; want %q", code, out, errOut, want)
	}
	t.Logf("pushing 64 MiB grew the heap by %s at most", testcluster.MiB(growth))
	if growth >= 16<<20 {
		t.Errorf("pushing 64 MiB grew the heap by %s; want less than 16 MiB: the command must stream the file", testcluster.MiB(growth))
	}
	var stored client.Package
	if err := n.Client.Do(testcluster.Context(t, 5*time.Second), http.MethodGet, "/api/Spaces-1/packages/packages-big.1.0.0", nil, &stored); err != nil ||
		stored.Hash != sum || stored.PackageSizeBytes != size {
		t.Fatalf("the stored package: %+v, %v; want %d bytes of SHA-256 %s", stored, err, size, sum)
	}
	// The server refuses a version that exists before it reads the body:
	// the command reports its answer, though it had more to send.
	code, out, errOut, growth = heapGrowth("package", "push", big)
	if code != 1 || out != "" || !strings.Contains(errOut, big+": failed: The package big version 1.0.0 already exists") || !strings.Contains(errOut, "[HTTP 409]") {
		t.Fatalf("package push of 64 MiB that exist: exit %d\n%s%s; want the 409 message", code, out, errOut)
	}
	if growth >= 16<<20 {
		t.Errorf("pushing 64 MiB that were refused grew the heap by %s; want less than 16 MiB", testcluster.MiB(growth))
	}
}

// TestPackageProgressBar draws a bar over a slow upload: at most about
// ten times a second, each line redrawn in place, and cleared at the end.
func TestPackageProgressBar(t *testing.T) {
	t.Parallel()
	if got, want := renderProgress("app.1.0.0.zip", 512<<10, 1<<20, time.Second), "app.1.0.0.zip [============>           ]  50% 512.0 KiB / 1.0 MiB, 512.0 KiB/s"; got != want {
		t.Errorf("renderProgress: %q, want %q", got, want)
	}
	if got := renderProgress(strings.Repeat("x", 40)+".1.0.0.zip", 0, 0, 0); !strings.HasPrefix(got, strings.Repeat("x", 31)+"… [========================] 100% 0 B / 0 B") {
		t.Errorf("renderProgress of a long name and an empty file: %q", got)
	}
	var out lockedBuffer
	const size = 1 << 20
	bar := startProgress(&out, "app.1.0.0.zip", size, progressInterval)
	r := bar.reader(io.LimitReader(zeroReader{}, size))
	start := time.Now()
	buf := make([]byte, size/16)
	for {
		if _, err := r.Read(buf); err == io.EOF {
			break
		}
		time.Sleep(70 * time.Millisecond) // about 1.1 s in all
	}
	time.Sleep(2 * progressInterval) // the bar shows the end
	bar.finish()
	took := time.Since(start)
	view := out.String()
	draws := strings.Count(view, "\r") - 1 // the last clears the line
	if most := int(took/progressInterval) + 1; draws < 5 || draws > most {
		t.Errorf("%d draws in %v; want at most one each %v", draws, took, progressInterval)
	}
	drawn, cleared := strings.CutSuffix(view, "\r\x1b[K")
	if last := drawn[strings.LastIndex(drawn, "\r")+1:]; !cleared || !strings.Contains(last, "100% 1.0 MiB / 1.0 MiB, ") {
		t.Errorf("the bar's last view is not of the whole file, or it was not cleared:\n%q", view)
	}
	if !strings.Contains(view, "app.1.0.0.zip [") || !strings.Contains(view, "/s\x1b[K") {
		t.Errorf("the bar lacks the name or the rate:\n%q", view)
	}
	// A file sent before the first interval: nothing drawn.
	var quick lockedBuffer
	startProgress(&quick, "quick.1.0.0.zip", 1, time.Hour).finish()
	if quick.String() != "" {
		t.Errorf("a bar that never drew wrote %q", quick.String())
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestArtifactCommands collects a file from an agent into a task's
// artifacts (a CollectFile task), lists them (by task, as the argument or
// --task, and all), and gets the artifact: into the current folder under
// its name, not over a file that exists unless --force, into a folder, to
// a path, and to standard output. Not parallel: it changes the current
// folder.
func TestArtifactCommands(t *testing.T) {
	c := testcluster.NewCluster(t, "")
	n := c.StartNode("solo")
	ag := testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: n, AdminKey: c.AdminKey})
	cmd := runner(func(t *testing.T, args ...string) (int, string, string) {
		return cli(t, nil, append(args, "--server", n.URL, "--api-key", c.AdminKey)...)
	})
	var content strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&content, "line %d of the application's log\n", i)
	}
	want := content.String()
	if err := os.WriteFile(filepath.Join(ag.Home, "work", "app.log"), []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	task, err := n.Client.CreateTask(testcluster.Context(t, 5*time.Second), "CollectFile", map[string]any{"Path": "app.log", "MachineIds": []string{ag.MachineID}})
	if err != nil {
		t.Fatal(err)
	}
	testcluster.WaitTask(t, n.Client, task.Id, 30*time.Second, "Success")

	var list []artifact
	cmd.mustJSON(t, &list, "artifact", "list", "--task", task.Id)
	if len(list) != 1 || list[0].Filename != "app.log" || list[0].ServerTaskId != task.Id || list[0].Source != ag.MachineID || list[0].Length != int64(len(want)) {
		t.Fatalf("artifact list --task %s --output json: %+v", task.Id, list)
	}
	a := list[0]
	row := regexp.MustCompile(`ID +FILENAME +SOURCE +LENGTH +CREATED\n` + a.Id + ` +app\.log +` + ag.MachineID + ` +` + regexp.QuoteMeta(humanSize(a.Length)) + ` +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$`)
	if code, out, errOut := cmd(t, "artifact", "list", task.Id); code != 0 || !row.MatchString(out) {
		t.Fatalf("artifact list %s: exit %d\n%s%s", task.Id, code, out, errOut)
	}
	if code, out, errOut := cmd(t, "artifact", "list"); code != 0 || !regexp.MustCompile(`ID +TASK +FILENAME.*\n`+a.Id+` +`+task.Id+` +app\.log `).MatchString(out) {
		t.Fatalf("artifact list of all: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := cmd(t, "artifact", "list", "ServerTasks-999"); code != 0 || strings.Contains(out, a.Id) {
		t.Fatalf("artifact list of a task without artifacts: exit %d\n%s", code, out)
	}
	if code, _, errOut := cmd(t, "artifact", "list", "--task", task.Id, "ServerTasks-1"); code != 2 || !strings.Contains(errOut, "not both") {
		t.Fatalf("artifact list with two tasks: exit %d %s; want 2", code, errOut)
	}

	dir := t.TempDir()
	t.Chdir(dir)
	code, out, errOut := cmd(t, "artifact", "get", a.Id)
	if code != 0 || out != fmt.Sprintf("saved %s (app.log, %s) to app.log\n", a.Id, humanSize(a.Length)) {
		t.Fatalf("artifact get %s: exit %d\n%s%s", a.Id, code, out, errOut)
	}
	got := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got("app.log") != want {
		t.Fatal("artifact get saved other content than the agent's file")
	}
	os.WriteFile("app.log", []byte("mine"), 0o644)
	cmd.fails(t, []string{"app.log exists: give --force to replace it"}, "artifact", "get", a.Id)
	if got("app.log") != "mine" {
		t.Fatal("artifact get without --force replaced a file")
	}
	var saved map[string]any
	if cmd.mustJSON(t, &saved, "artifact", "get", a.Id, "--force"); saved["Path"] != "app.log" || got("app.log") != want {
		t.Fatalf("artifact get --force: %v", saved)
	}
	os.Mkdir("logs", 0o755)
	if code, out, errOut = cmd(t, "artifact", "get", a.Id, "--output-file", "logs"); code != 0 || got(filepath.Join("logs", "app.log")) != want {
		t.Fatalf("artifact get --output-file into a folder: exit %d\n%s%s", code, out, errOut)
	}
	other := filepath.Join(dir, "logs", "web-1.log")
	if code, out, errOut = cmd(t, "artifact", "get", a.Id, "--output-file", other); code != 0 || !strings.HasSuffix(out, " to "+other+"\n") || got(other) != want {
		t.Fatalf("artifact get --output-file PATH: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = cmd(t, "artifact", "get", a.Id, "--output-file", "-"); code != 0 || out != want {
		t.Fatalf("artifact get --output-file -: exit %d, %d bytes\n%s", code, len(out), errOut)
	}
	cmd.fails(t, []string{"Artifacts-999", "404"}, "artifact", "get", "Artifacts-999")
	for _, d := range []string{dir, filepath.Join(dir, "logs")} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".part") {
				t.Errorf("a temporary file was left: %s", filepath.Join(d, e.Name()))
			}
		}
	}
}
