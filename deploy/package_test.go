package deploy_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// tarball returns a tar archive of files (name: content; scripts are
// executable), gzipped if gz.
func tarball(t *testing.T, files map[string][]byte, gz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for name, content := range files {
		mode := int64(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(content)
	}
	tw.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

// push uploads a package file to the built-in feed through cl's node.
func push(t *testing.T, cl *client.Client, name string, content []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, _ := mw.CreateFormFile("file", name)
	part.Write(content)
	mw.Close()
	req, _ := http.NewRequestWithContext(testcluster.Context(t, 60*time.Second), http.MethodPost, cl.BaseURL+"/api/Spaces-1/packages/raw", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-Octopus-ApiKey", cl.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("pushing %s: %s %s", name, resp.Status, b)
	}
}

// packageStep deploys the package id to the targets of role web,
// substituting variables in config.txt.
func packageStep(id string) step {
	return step{"Name": "Deploy " + id, "Properties": map[string]string{"Octopus.Action.TargetRoles": "web"},
		"Actions": []any{map[string]any{"Name": "Deploy " + id, "ActionType": "Octopus.TentaclePackage",
			"Packages": []any{map[string]any{"Name": "", "PackageId": id, "FeedId": "feeds-builtin"}},
			"Properties": map[string]string{"Octopus.Action.Package.PackageId": id, "Octopus.Action.Package.FeedId": "feeds-builtin",
				"Octopus.Action.EnabledFeatures":               "Octopus.Features.SubstituteInFiles",
				"Octopus.Action.SubstituteInFiles.TargetFiles": "config.txt"}}}}
}

// deployVersion deploys the project's release version to Test and waits
// for its end.
func deployVersion(t *testing.T, cl *client.Client, project, version string, within time.Duration) (task string, state string, log string) {
	t.Helper()
	var out struct {
		DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
	}
	do(t, cl, http.MethodPost, "/api/Spaces-1/deployments/create/untenanted/v1",
		map[string]any{"spaceId": "Spaces-1", "projectName": project, "releaseVersion": version, "environmentNames": []string{"Test"}}, &out)
	task = out.DeploymentServerTasks[0].ServerTaskId
	done := testcluster.WaitTask(t, cl, task, within, "Success", "Failed", "Canceled")
	log, _ = testcluster.TaskLog(testcluster.Context(t, 10*time.Second), cl, task)
	return task, done.State, log
}

// TestPackageStepOnFourAgents: a package pushed to the built-in feed is
// deployed to four agents: each extracts it into its own folder, runs its
// Deploy.sh with the deployment's variables and substitutes config.txt; a
// second deployment of the same version sends nothing (the agents' caches
// by SHA-256). Then a larger version is deployed and the node running the
// deployment is SIGKILLed while the agents fetch it: another node takes
// the deployment over, and it ends Success with every agent holding the
// package whole.
func TestPackageStepOnFourAgents(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 5)
	a := c.Nodes[0]
	var agents []*testcluster.Agent
	for i := 1; i <= 4; i++ {
		agents = append(agents, testcluster.StartAgent(t, testcluster.AgentConfig{Name: fmt.Sprintf("web-%d", i), Register: a, AdminKey: c.AdminKey, Poll: pollAddrs(c)}))
	}
	deploySh := []byte("#!/bin/bash\necho \"deploying $(get_octopusvariable Octopus.Action.Package.PackageVersion) for $(get_octopusvariable Greeting) on $(get_octopusvariable Octopus.Machine.Name)\"\ncat config.txt\n")
	push(t, a.Client, "webapp.1.0.0.tar.gz", tarball(t, map[string][]byte{
		"Deploy.sh": deploySh, "config.txt": []byte("greeting=#{Greeting}\nmachine=#{Octopus.Machine.Name}\n"),
	}, true))
	projectWith(t, a.Client, "Web", []map[string]any{{"Name": "Greeting", "Value": "hello"}}, packageStep("webapp"))

	_, state, log := deployVersion(t, a.Client, "Web", "1.0.0", 60*time.Second)
	if state != "Success" {
		t.Fatalf("the first deployment ended %s:\n%s", state, log)
	}
	for _, ag := range agents {
		name := ag.Config.Name
		dir := filepath.Join(ag.Home, "work", "Applications", "Test", "webapp", "1.0.0")
		got, err := os.ReadFile(filepath.Join(dir, "config.txt"))
		if err != nil || string(got) != "greeting=hello\nmachine="+name+"\n" {
			t.Errorf("%s's config.txt: %q, %v", name, got, err)
		}
		if want := "deploying 1.0.0 for hello on " + name; !strings.Contains(log, want) {
			t.Errorf("the log lacks %q", want)
		}
		if !strings.Contains(log, "Package webapp 1.0.0 sent") {
			t.Errorf("the first deployment's log does not say the package was sent:\n%s", log)
		}
	}

	// The same version again: nothing is sent, and a new folder is used.
	do(t, a.Client, http.MethodPost, "/api/Spaces-1/releases/create/v1", map[string]any{"spaceId": "Spaces-1", "projectName": "Web", "releaseVersion": "1.0.1"}, nil)
	_, state, log = deployVersion(t, a.Client, "Web", "1.0.1", 60*time.Second)
	if state != "Success" || strings.Count(log, "found in cache, nothing sent") != 4 || strings.Contains(log, "1.0.0 sent") {
		t.Fatalf("the second deployment of webapp 1.0.0 ended %s; want 4 targets finding it in their cache:\n%s", state, log)
	}
	for _, ag := range agents {
		if _, err := os.Stat(filepath.Join(ag.Home, "work", "Applications", "Test", "webapp", "1.0.0_1", "Deploy.sh")); err != nil {
			t.Errorf("%s: the second deployment's folder: %v", ag.Config.Name, err)
		}
	}

	// A larger version, and the owner killed while the agents fetch it.
	big := make([]byte, 96<<20)
	rand.Read(big)
	push(t, a.Client, "webapp.2.0.0.tar", tarball(t, map[string][]byte{"Deploy.sh": deploySh, "config.txt": []byte("#{Greeting}\n"), "blob.bin": big}, false))
	do(t, a.Client, http.MethodPost, "/api/Spaces-1/releases/create/v1", map[string]any{"spaceId": "Spaces-1", "projectName": "Web", "releaseVersion": "2.0.0"}, nil)
	var out struct {
		DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
	}
	do(t, a.Client, http.MethodPost, "/api/Spaces-1/deployments/create/untenanted/v1",
		map[string]any{"spaceId": "Spaces-1", "projectName": "Web", "releaseVersion": "2.0.0", "environmentNames": []string{"Test"}}, &out)
	task := out.DeploymentServerTasks[0].ServerTaskId
	var owner string
	testcluster.Eventually(t, 60*time.Second, func() error {
		tk, err := a.Client.Task(context.Background(), task)
		if err != nil {
			return err
		}
		log, _ := testcluster.TaskLog(context.Background(), a.Client, task)
		if tk.ServerNode == "" || !strings.Contains(log, "Fetching package webapp 2.0.0") {
			return fmt.Errorf("no agent fetches the package yet (%s on %q)", tk.State, tk.ServerNode)
		}
		owner = tk.ServerNode
		return nil
	})
	killed := c.Node(owner)
	killed.Kill()
	survivor := otherThan(c, owner)
	done := testcluster.WaitTask(t, survivor.Client, task, 120*time.Second, "Success", "Failed", "Canceled")
	log, _ = testcluster.TaskLog(testcluster.Context(t, 10*time.Second), survivor.Client, task)
	if done.State != "Success" || done.ServerNode != survivor.Config.Name {
		t.Fatalf("after its owner %s was killed the deployment ended %s on %s:\n%s", owner, done.State, done.ServerNode, log)
	}
	for _, ag := range agents {
		got, err := os.ReadFile(filepath.Join(ag.Home, "work", "Applications", "Test", "webapp", "2.0.0", "blob.bin"))
		if err != nil || !bytes.Equal(got, big) {
			t.Errorf("%s holds %d bytes of blob.bin (%v); want the %d the package has", ag.Config.Name, len(got), err, len(big))
		}
	}
	t.Logf("the owner %s was killed while the agents fetched a 96 MiB package; %s finished the deployment", owner, survivor.Config.Name)
}

// TestScriptStepReferencesAPackage: a script step on an agent that
// references a package gets it extracted (its own scripts not run) and
// reads its folder from Octopus.Action.Package[<name>].ExtractedPath.
func TestScriptStepReferencesAPackage(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5)
	a := c.Nodes[0]
	testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: a, AdminKey: c.AdminKey})
	push(t, a.Client, "tools.3.1.0.tar.gz", tarball(t, map[string][]byte{
		"Deploy.sh": []byte("echo the package's own script ran\n"), "tool.txt": []byte("tool #{Greeting}\n"),
	}, true))
	use := script("Use tools", `cat "#{Octopus.Action.Package[tools].ExtractedPath}/tool.txt"; echo "version #{Octopus.Action.Package[tools].PackageVersion}"`, false)
	use["Packages"] = []any{map[string]any{"Name": "tools", "PackageId": "tools", "FeedId": "feeds-builtin", "AcquisitionLocation": "ExecutionTarget"}}
	projectWith(t, a.Client, "Tools", []map[string]any{{"Name": "Greeting", "Value": "hello"}},
		step{"Name": "Use tools", "Properties": map[string]string{"Octopus.Action.TargetRoles": "web"}, "Actions": []any{use}})
	_, state, log := deployVersion(t, a.Client, "Tools", "1.0.0", 60*time.Second)
	if state != "Success" || !strings.Contains(log, "tool #{Greeting}") || !strings.Contains(log, "version 3.1.0") || strings.Contains(log, "own script ran") {
		t.Fatalf("the deployment ended %s; want the script to read the extracted package (not substituted, its Deploy.sh not run):\n%s", state, log)
	}
}
