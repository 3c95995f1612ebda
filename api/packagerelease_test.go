package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// upload pushes a package file with the given content through the API.
func (e *env) upload(t *testing.T, name, content string) {
	t.Helper()
	body, ctype := multipartBody(t, name, []byte(content))
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/Spaces-1/packages/raw", body)
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("X-Octopus-ApiKey", e.adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("uploading %s: %s", name, resp.Status)
	}
}

// TestReleasesChoosePackageVersions: a release of a process with a package
// step chooses the latest version in the feed, or the one packageVersion
// or packages name, within the channel's rule; a version the feed does not
// have is 400; the process template lists the package with the version
// the last release chose; a package a release uses cannot be deleted.
func TestReleasesChoosePackageVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	project := newProjectOn(t, e, "Web")
	status, body := e.do("PUT", "/api/Spaces-1/projects/"+project+"/deploymentprocesses", e.adminKey, `{"Steps": [
		{"Name": "Web", "Properties": {"Octopus.Action.TargetRoles": "web"}, "Actions": [{"Name": "Web", "ActionType": "Octopus.TentaclePackage",
			"Packages": [{"Name": "", "PackageId": "webapp", "FeedId": "feeds-builtin"}]}]},
		{"Name": "Db", "Properties": {"Octopus.Action.TargetRoles": "db"}, "Actions": [{"Name": "Db", "ActionType": "Octopus.TentaclePackage",
			"Properties": {"Octopus.Action.Package.PackageId": "dbup"}}]}]}`)
	if status != http.StatusOK {
		t.Fatalf("process: %d %s", status, body)
	}
	create := func(fields string) (int, []byte) {
		return e.do("POST", "/api/Spaces-1/releases/create/v1", e.adminKey, `{"spaceId": "Spaces-1", "projectName": "Web"`+fields+`}`)
	}
	if status, body := create(`, "releaseVersion": "0.1.0"`); status != 400 || !strings.Contains(string(body), "webapp") {
		t.Fatalf("a release before any package was pushed: %d %s; want 400 naming webapp", status, body)
	}
	for _, name := range []string{"webapp.1.0.0.zip", "webapp.1.2.0.zip", "webapp.2.0.0-beta.1.zip", "dbup.3.0.0.tar.gz", "dbup.3.1.0.tar.gz"} {
		e.upload(t, name, name)
	}
	chosen := func(version string) map[string]string {
		t.Helper()
		status, body := e.do("GET", "/api/Spaces-1/projects/"+project+"/releases/"+version, e.adminKey, "")
		if status != 200 {
			t.Fatalf("release %s: %d %s", version, status, body)
		}
		var r struct {
			SelectedPackages []struct{ ActionName, Version, PackageId string }
		}
		json.Unmarshal(body, &r)
		out := map[string]string{}
		for _, p := range r.SelectedPackages {
			out[p.ActionName] = p.PackageId + "@" + p.Version
		}
		return out
	}
	for _, c := range []struct {
		fields  string
		version string
		web, db string
	}{
		{`, "releaseVersion": "1.0.0"`, "1.0.0", "webapp@2.0.0-beta.1", "dbup@3.1.0"},
		{`, "releaseVersion": "1.0.1", "packageVersion": "1.2.0", "packages": ["Db:3.0.0"]`, "1.0.1", "webapp@1.2.0", "dbup@3.0.0"},
		{`, "releaseVersion": "1.0.2", "packages": ["webapp:1.0.0", "*:3.0.0"]`, "1.0.2", "webapp@3.0.0", "dbup@3.0.0"},
		{`, "releaseVersion": "1.0.3", "packages": ["Web:Db:1"]`, "", "", ""},
	} {
		status, body := create(c.fields)
		if c.version == "" || c.version == "1.0.2" {
			if status != 400 {
				t.Errorf("create%s: %d %s; want 400", c.fields, status, body)
			}
			continue
		}
		if status != 200 {
			t.Fatalf("create%s: %d %s", c.fields, status, body)
		}
		if got := chosen(c.version); got["Web"] != c.web || got["Db"] != c.db {
			t.Errorf("release %s chose %v; want Web %s, Db %s", c.version, got, c.web, c.db)
		}
	}

	// A channel rule: webapp below 2.0, no pre-release.
	status, body = e.do("GET", "/api/Spaces-1/projects/"+project+"/channels", e.adminKey, "")
	var channels struct{ Items []map[string]any }
	json.Unmarshal(body, &channels)
	ch := channels.Items[0]
	ch["Rules"] = []any{map[string]any{"VersionRange": "[1.0,2.0)", "Tag": "^$",
		"ActionPackages": []any{map[string]any{"DeploymentAction": "Web", "PackageReference": ""}}}}
	b, _ := json.Marshal(ch)
	if status, body := e.do("PUT", "/api/Spaces-1/channels/"+ch["Id"].(string), e.adminKey, string(b)); status != 200 {
		t.Fatalf("channel rule: %d %s", status, body)
	}
	if status, body := create(`, "releaseVersion": "1.1.0"`); status != 200 {
		t.Fatalf("a release under the rule: %d %s", status, body)
	}
	if got := chosen("1.1.0"); got["Web"] != "webapp@1.2.0" {
		t.Errorf("under the rule [1.0,2.0) the release chose %v; want webapp 1.2.0", got)
	}
	if status, body := create(`, "releaseVersion": "1.1.1", "packages": ["Web:2.0.0-beta.1"]`); status != 400 || !strings.Contains(string(body), "rule") {
		t.Errorf("a version the rule refuses: %d %s; want 400 naming the rule", status, body)
	}
	if status, body := create(`, "releaseVersion": "1.1.2", "packages": ["Web:2.0.0-beta.1"], "ignoreChannelRules": true`); status != 200 {
		t.Errorf("the same, ignoring channel rules: %d %s", status, body)
	}

	// The process template lists the packages, with the last release's choice.
	status, body = e.do("GET", "/api/Spaces-1/deploymentprocesses/deploymentprocess-"+project+"/template", e.adminKey, "")
	var tmpl struct {
		Packages []struct{ ActionName, PackageId, FeedId, VersionSelectedLastRelease string }
	}
	if json.Unmarshal(body, &tmpl); status != 200 || len(tmpl.Packages) != 2 || tmpl.Packages[0].PackageId != "webapp" ||
		tmpl.Packages[0].VersionSelectedLastRelease != "2.0.0-beta.1" || tmpl.Packages[1].FeedId != "feeds-builtin" {
		t.Errorf("the process template: %d %s", status, body)
	}

	// A package a release uses cannot be deleted; an unused one can.
	if status, body := e.do("DELETE", "/api/Spaces-1/packages/packages-webapp.1.2.0", e.adminKey, ""); status != 409 || !strings.Contains(string(body), "release") {
		t.Errorf("deleting a package in use: %d %s; want 409 naming the release", status, body)
	}
	if status, body := e.do("GET", "/api/Spaces-1/packages/packages-webapp.1.2.0", e.adminKey, ""); status != 200 {
		t.Errorf("the package refused deletion is gone: %d %s", status, body)
	}
	e.upload(t, "webapp.0.9.0.zip", "old")
	if status, body := e.do("DELETE", "/api/Spaces-1/packages/packages-webapp.0.9.0", e.adminKey, ""); status != 200 {
		t.Errorf("deleting an unused package: %d %s", status, body)
	}
}

// TestArtifactsOfAServerScript: a deployment's script on the node keeps
// files with new_octopusartifact; the artifacts are listed regarding the
// task and downloaded.
func TestArtifactsOfAServerScript(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if status, body := e.do("POST", "/api/Spaces-1/environments", e.adminKey, `{"Name": "Test"}`); status != http.StatusCreated {
		t.Fatalf("environment: %d %s", status, body)
	}
	project := newProjectOn(t, e, "Shop")
	dir := t.TempDir()
	script, _ := json.Marshal(fmt.Sprintf(`echo report > %[1]s/r.txt; new_octopusartifact %[1]s/r.txt summary.txt; new_octopusartifact %[1]s/missing.txt`, dir))
	status, body := e.do("PUT", "/api/Spaces-1/projects/"+project+"/deploymentprocesses", e.adminKey, `{"Steps": [{"Name": "Report", "Actions": [{"Name": "Report",
		"ActionType": "Octopus.Script", "Properties": {"Octopus.Action.RunOnServer": "True", "Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": `+string(script)+`}}]}]}`)
	if status != http.StatusOK {
		t.Fatalf("process: %d %s", status, body)
	}
	if status, body := e.do("POST", "/api/Spaces-1/releases/create/v1", e.adminKey, `{"spaceId": "Spaces-1", "projectName": "Shop", "releaseVersion": "1.0.0"}`); status != 200 {
		t.Fatalf("release: %d %s", status, body)
	}
	_, task := deploy(t, e, "1.0.0", "Test")
	if done := e.waitTask(t, task, "Success", "Failed"); done.State != "Success" {
		t.Fatalf("the deployment ended %s", done.State)
	}
	status, body = e.do("GET", "/api/Spaces-1/artifacts?regarding="+task, e.adminKey, "")
	var page struct {
		TotalResults int
		Items        []struct{ Id, Filename, ServerTaskId, Source string }
	}
	if json.Unmarshal(body, &page); status != 200 || page.TotalResults != 1 || page.Items[0].Filename != "summary.txt" || page.Items[0].ServerTaskId != task {
		t.Fatalf("the task's artifacts: %d %s", status, body)
	}
	status, body = e.do("GET", "/api/Spaces-1/artifacts/"+page.Items[0].Id+"/content", e.adminKey, "")
	if status != 200 || string(body) != "report\n" {
		t.Errorf("the artifact's content: %d %q", status, body)
	}
	if status, body := e.do("GET", "/api/Spaces-1/artifacts?regarding=ServerTasks-999999", e.adminKey, ""); status != 200 || !strings.Contains(string(body), `"TotalResults":0`) {
		t.Errorf("the artifacts of another task: %d %s", status, body)
	}
	if status, _ := e.do("GET", "/api/Spaces-1/artifacts/Artifacts-999999/content", e.adminKey, ""); status != 404 {
		t.Errorf("an unknown artifact's content: %d, want 404", status)
	}
	if _, err := os.Stat(filepath.Join(e.dataDir, "storage", "artifacts", task, "node-1", "summary.txt")); err != nil {
		t.Errorf("the artifact's file: %v", err)
	}
	if status, _ := e.do("DELETE", "/api/Spaces-1/artifacts/"+page.Items[0].Id, e.adminKey, ""); status != 200 {
		t.Errorf("deleting the artifact: %d", status)
	}
	if _, err := os.Stat(filepath.Join(e.dataDir, "storage", "artifacts", task, "node-1", "summary.txt")); !os.IsNotExist(err) {
		t.Errorf("the deleted artifact's file: %v", err)
	}
}
