package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/deployments"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/releases"
)

// newProjectOn creates a project through the API and returns its id.
func newProjectOn(t *testing.T, e *env, name string) string {
	t.Helper()
	status, body := e.do("POST", "/api/Spaces-1/projects", e.adminKey,
		fmt.Sprintf(`{"Name": %q, "LifecycleId": %q, "ProjectGroupId": %q}`, name, testLifecycle, defaultGroupID(t, e)))
	if status != http.StatusCreated {
		t.Fatalf("creating the project %s: %d %s", name, status, body)
	}
	return jsonField(t, body, "Id")
}

// TestReleasesOfficialClient: releases created as the official client
// creates them (create/v1: by project name, the version from the
// project's template or given, ignoreIfAlreadyExists), read by id, listed
// by project and channel, found by version; the release's process snapshot
// stays as the process was.
func TestReleasesOfficialClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := officialClient(t, e)
	id := newProjectOn(t, e, "Web Shop")

	first, err := releases.CreateReleaseV1(c, releases.NewCreateReleaseCommandV1("Spaces-1", "Web Shop"))
	if err != nil || first.ReleaseVersion != "0.0.1" || first.ReleaseID == "" {
		t.Fatalf("CreateReleaseV1 by name: %+v, %v; want version 0.0.1", first, err)
	}
	cmd := releases.NewCreateReleaseCommandV1("Spaces-1", id)
	cmd.ReleaseVersion, cmd.ChannelIDOrName, cmd.ReleaseNotes = "2.0.0-rc.1", "Default", "the second"
	second, err := releases.CreateReleaseV1(c, cmd)
	if err != nil || second.ReleaseVersion != "2.0.0-rc.1" {
		t.Fatalf("CreateReleaseV1 of a version: %+v, %v", second, err)
	}
	if _, err := releases.CreateReleaseV1(c, cmd); err == nil {
		t.Error("a second release of one version was created")
	}
	cmd.IgnoreIfAlreadyExists = true
	if again, err := releases.CreateReleaseV1(c, cmd); err != nil || again.ReleaseID != second.ReleaseID {
		t.Errorf("ignoreIfAlreadyExists: %+v, %v; want %s", again, err, second.ReleaseID)
	}
	third, err := releases.CreateReleaseV1(c, releases.NewCreateReleaseCommandV1("Spaces-1", "web shop"))
	if err != nil || third.ReleaseVersion != "2.0.1" {
		t.Errorf("the next release after 2.0.0-rc.1: %+v, %v; want 2.0.1", third, err)
	}

	got, err := c.Releases.GetByID(second.ReleaseID)
	if err != nil || got.Version != "2.0.0-rc.1" || got.ProjectID != id || got.ChannelID == "" || got.ReleaseNotes != "the second" ||
		got.Assembled.IsZero() || got.ProjectDeploymentProcessSnapshotID == "" || got.Links["Self"] == "" {
		t.Fatalf("Releases.GetByID: %+v, %v", got, err)
	}
	project, err := c.Projects.GetByID(id)
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.Projects.GetReleases(project)
	if err != nil || len(all) != 3 || all[0].Version != "2.0.1" {
		t.Errorf("Projects.GetReleases: %d releases, %v; want 3, newest first", len(all), err)
	}
	inChannel, err := releases.GetReleasesInProjectChannel(c, "Spaces-1", id, got.ChannelID)
	if err != nil || len(inChannel) != 3 {
		t.Errorf("GetReleasesInProjectChannel: %d, %v", len(inChannel), err)
	}
	if status, body := e.do("GET", "/api/Spaces-1/projects/"+id+"/releases/2.0.0-RC.1", e.adminKey, ""); status != http.StatusOK ||
		jsonField(t, body, "Id") != second.ReleaseID {
		t.Errorf("the release by version: %d %s", status, body)
	}

	// The process changes; the release's snapshot does not.
	proc, err := c.DeploymentProcesses.GetByID(project.DeploymentProcessID)
	if err != nil {
		t.Fatal(err)
	}
	step := deployments.NewDeploymentStep("Approve")
	step.Actions = append(step.Actions, deployments.NewDeploymentAction("Check", "Octopus.Manual"))
	proc.Steps = append(proc.Steps, step)
	if _, err := deployments.UpdateDeploymentProcess(c, proc); err != nil {
		t.Fatal(err)
	}
	snap, err := deployments.GetDeploymentProcessByID(c, "Spaces-1", got.ProjectDeploymentProcessSnapshotID)
	if err != nil || len(snap.Steps) != 0 {
		t.Errorf("the release's process snapshot after the process changed: %+v, %v; want no steps", snap, err)
	}
	fourth, err := releases.CreateReleaseV1(c, releases.NewCreateReleaseCommandV1("Spaces-1", id))
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := c.Releases.GetByID(fourth.ReleaseID)
	if snap, err := deployments.GetDeploymentProcessByID(c, "Spaces-1", rel.ProjectDeploymentProcessSnapshotID); err != nil || len(snap.Steps) != 1 {
		t.Errorf("a later release's snapshot: %+v, %v; want the new step", snap, err)
	}

	// A release's notes change; what it deploys does not.
	status, body := e.do("PUT", "/api/Spaces-1/releases/"+first.ReleaseID, e.adminKey,
		`{"Version": "9.9.9", "ReleaseNotes": "edited", "ProjectDeploymentProcessSnapshotId": "DeploymentProcessSnapshots-999"}`)
	if status != http.StatusOK || jsonField(t, body, "Version") != "0.0.1" || jsonField(t, body, "ReleaseNotes") != "edited" ||
		jsonField(t, body, "ProjectDeploymentProcessSnapshotId") == "DeploymentProcessSnapshots-999" {
		t.Errorf("PUT of a release: %d %s", status, body)
	}

	// Deleting the project deletes its releases.
	if status, body := e.do("DELETE", "/api/Spaces-1/projects/"+id, e.adminKey, ""); status != http.StatusOK {
		t.Fatalf("deleting the project: %d %s", status, body)
	}
	if status, _ := e.do("GET", "/api/Spaces-1/releases/"+first.ReleaseID, e.adminKey, ""); status != http.StatusNotFound {
		t.Errorf("a release of a deleted project: %d, want 404", status)
	}
}

// TestReleaseBadInput: clear 4xx, nothing created.
func TestReleaseBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := newProjectOn(t, e, "P")
	for _, tc := range []struct {
		what, method, path, body string
		status                   int
	}{
		{"a release of a missing project", "POST", "/api/Spaces-1/releases/create/v1", `{"spaceId": "Spaces-1", "projectName": "Nope"}`, 404},
		{"no project", "POST", "/api/Spaces-1/releases/create/v1", `{"spaceId": "Spaces-1"}`, 400},
		{"another space", "POST", "/api/Spaces-1/releases/create/v1", `{"spaceId": "Spaces-2", "projectName": "P"}`, 400},
		{"not a version", "POST", "/api/Spaces-1/releases/create/v1", `{"spaceId": "Spaces-1", "projectName": "P", "releaseVersion": "latest"}`, 400},
		{"an unknown channel", "POST", "/api/Spaces-1/releases/create/v1", `{"spaceId": "Spaces-1", "projectName": "P", "channelName": "Beta"}`, 400},
		{"packages", "POST", "/api/Spaces-1/releases/create/v1", `{"spaceId": "Spaces-1", "projectName": "P", "packages": ["web:1.0.0"]}`, 400},
		{"classic create without a project", "POST", "/api/Spaces-1/releases", `{"Version": "1.0.0"}`, 400},
		{"classic create of an unknown project", "POST", "/api/Spaces-1/releases", `{"Version": "1.0.0", "ProjectId": "Projects-99"}`, 400},
		{"classic create in another project's channel", "POST", "/api/Spaces-1/releases", `{"Version": "1.0.0", "ProjectId": "` + id + `", "ChannelId": "Channels-99"}`, 400},
		{"an unknown release", "GET", "/api/Spaces-1/releases/Releases-99", ``, 404},
		{"an unknown version", "GET", "/api/Spaces-1/projects/" + id + "/releases/9.9.9", ``, 404},
	} {
		status, answer := e.do(tc.method, tc.path, e.adminKey, tc.body)
		wantError(t, tc.what, status, answer, tc.status)
	}
	status, body := e.do("POST", "/api/Spaces-1/releases", e.adminKey, `{"Version": "1.0.0", "ProjectId": "`+id+`"}`)
	if status != http.StatusCreated {
		t.Fatalf("a classic create: %d %s", status, body)
	}
	status, body = e.do("POST", "/api/Spaces-1/releases/create/v1", e.adminKey, `{"spaceId": "Spaces-1", "projectName": "P", "releaseVersion": "1.0.0"}`)
	wantError(t, "a version taken", status, body, http.StatusConflict)
	if _, all := e.do("GET", "/api/Spaces-1/releases/all", e.adminKey, ""); strings.Count(string(all), `"Id":"Releases-`) != 1 {
		t.Errorf("after the refusals, the releases are %s", all)
	}
}
