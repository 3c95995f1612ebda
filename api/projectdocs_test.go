package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/channels"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/core"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/deployments"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/projects"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/variables"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
	cvariables "github.com/cuttledeploy/cuttle/variables"
)

// The lifecycle of the tests' projects: the seeded Default Lifecycle.
const testLifecycle = "Lifecycles-1"

// defaultGroupID returns the id of the Default Project Group.
func defaultGroupID(t *testing.T, e *env) string {
	t.Helper()
	g, err := officialClient(t, e).ProjectGroups.GetByName("Default Project Group")
	if err != nil {
		t.Fatalf("the Default Project Group: %v", err)
	}
	return g.ID
}

// TestProjectsOfficialClient: a project and what it owns, through the
// official client's services.
func TestProjectsOfficialClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := officialClient(t, e)
	group := defaultGroupID(t, e)
	p, err := c.Projects.Add(projects.NewProject("Web Site", testLifecycle, group))
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	if !strings.HasPrefix(p.ID, "Projects-") || p.Slug != "web-site" || p.DeploymentProcessID != "deploymentprocess-"+p.ID ||
		p.VariableSetID != "variableset-"+p.ID || p.TenantedDeploymentMode != "Untenanted" || p.DefaultGuidedFailureMode != "EnvironmentDefault" ||
		p.PersistenceSettings == nil || p.PersistenceSettings.Type() != projects.PersistenceSettingsTypeDatabase ||
		p.VersioningStrategy == nil || p.VersioningStrategy.Template != "#{Octopus.Version.LastMajor}.#{Octopus.Version.LastMinor}.#{Octopus.Version.NextPatch}" ||
		p.ConnectivityPolicy == nil || p.ConnectivityPolicy.SkipMachineBehavior != "None" || p.SpaceID != "Spaces-1" {
		t.Fatalf("Add: %+v", p)
	}
	for _, link := range []string{"Self", "Channels", "Releases", "DeploymentProcess", "DeploymentSettings", "Variables"} {
		if p.Links[link] == "" {
			t.Errorf("the project has no link %s: %v", link, p.Links)
		}
	}
	if got, err := c.Projects.GetByID(p.ID); err != nil || got.Name != "Web Site" {
		t.Fatalf("GetByID: %+v, %v", got, err)
	}
	if got, err := projects.GetByID(c, "Spaces-1", "web-site"); err != nil || got.ID != p.ID {
		t.Fatalf("GetByID of the slug: %+v, %v", got, err)
	}
	if got, err := c.Projects.GetByName("web SITE"); err != nil || got.ID != p.ID {
		t.Fatalf("GetByName: %+v, %v", got, err)
	}
	if got, err := c.Projects.GetByIdentifier("Web Site"); err != nil || got.ID != p.ID {
		t.Fatalf("GetByIdentifier of the name: %+v, %v", got, err)
	}
	if got, err := projects.GetByIdentifier(c, "Spaces-1", p.ID); err != nil || got.ID != p.ID {
		t.Fatalf("projects.GetByIdentifier of the id: %+v, %v", got, err)
	}
	if _, err := c.Projects.Add(projects.NewProject("Second", testLifecycle, group)); err != nil {
		t.Fatalf("Add of a second project: %v", err)
	}
	if all, err := c.Projects.GetAll(); err != nil || len(all) != 2 {
		t.Fatalf("GetAll: %d, %v", len(all), err)
	}
	if all, err := projects.GetAll(c, "Spaces-1"); err != nil || len(all) != 2 {
		t.Fatalf("projects.GetAll: %d, %v", len(all), err)
	}
	g, err := c.ProjectGroups.GetByID(group)
	if err != nil {
		t.Fatal(err)
	}
	if in, err := c.ProjectGroups.GetProjects(g); err != nil || len(in) != 2 {
		t.Fatalf("the group's projects: %d, %v", len(in), err)
	}
	p.Description = "the site"
	p.DefaultGuidedFailureMode = "On"
	up, err := c.Projects.Update(p)
	if err != nil || up.Description != "the site" || up.DefaultGuidedFailureMode != "On" || up.DeploymentProcessID != p.DeploymentProcessID {
		t.Fatalf("Update: %+v, %v", up, err)
	}
	up.Name = "Web Site 2"
	if up, err = projects.Update(c, up); err != nil || up.Name != "Web Site 2" || up.Slug != "web-site" {
		t.Fatalf("projects.Update: %+v, %v", up, err)
	}

	// The default channel, and another.
	chs, err := c.Projects.GetChannels(up)
	if err != nil || len(chs) != 1 || chs[0].Name != "Default" || !chs[0].IsDefault || chs[0].Type != channels.ChannelTypeLifecycle || chs[0].ProjectID != p.ID {
		t.Fatalf("GetChannels: %+v, %v", chs, err)
	}
	def := chs[0]
	if status, body := e.do("GET", "/api/Spaces-1/projects/web-site/channels/all", e.adminKey, ""); status != http.StatusOK ||
		!strings.HasPrefix(string(body), `[{"Id":"`+def.ID+`"`) {
		t.Fatalf("GET the project's channels/all: %d %s", status, body)
	}
	if status, body := e.do("GET", "/api/Spaces-1/projectgroups/"+group+"/projects/all", e.adminKey, ""); status != http.StatusOK ||
		strings.Count(string(body), `"Id":"Projects-`) != 2 {
		t.Fatalf("GET the group's projects/all: %d %s", status, body)
	}
	if got, err := c.Channels.GetByID(def.ID); err != nil || got.Name != "Default" {
		t.Fatalf("Channels.GetByID: %+v, %v", got, err)
	}
	if owner, err := c.Projects.GetProject(def); err != nil || owner.ID != p.ID {
		t.Fatalf("GetProject of the channel: %+v, %v", owner, err)
	}
	beta := channels.NewChannel("Beta", p.ID)
	beta.Rules = []channels.ChannelRule{{VersionRange: "[1.0,2.0)", Tag: "^beta"}}
	beta, err = c.Channels.Add(beta)
	if err != nil || len(beta.Rules) != 1 || beta.Rules[0].ID == "" || beta.Rules[0].VersionRange != "[1.0,2.0)" {
		t.Fatalf("Channels.Add: %+v, %v", beta, err)
	}
	beta.Description = "for the brave"
	if beta, err = c.Channels.Update(beta); err != nil || beta.Description != "for the brave" {
		t.Fatalf("Channels.Update: %+v, %v", beta, err)
	}
	if page, err := channels.GetByProjectID(c, "Spaces-1", channels.QueryByProjectID{ProjectID: p.ID}); err != nil || page.TotalResults != 2 {
		t.Fatalf("channels.GetByProjectID: %+v, %v", page, err)
	}
	if all, err := c.Channels.GetAll(); err != nil || len(all) != 3 { // and the second project's
		t.Fatalf("Channels.GetAll: %d, %v", len(all), err)
	}
	if err := c.Channels.DeleteByID(def.ID); err == nil {
		t.Fatal("deleting the default channel succeeded")
	}
	if err := channels.DeleteByID(c, "Spaces-1", beta.ID); err != nil {
		t.Fatalf("channels.DeleteByID: %v", err)
	}

	// The deployment process.
	proc, err := c.DeploymentProcesses.Get(up, "")
	if err != nil || proc.ID != p.DeploymentProcessID || proc.ProjectID != p.ID || proc.Version != 0 || proc.Links["Template"] == "" {
		t.Fatalf("DeploymentProcesses.Get: %+v, %v", proc, err)
	}
	step := deployments.NewDeploymentStep("Say hello")
	action := deployments.NewDeploymentAction("Hello", "Octopus.Script")
	action.Properties["Octopus.Action.Script.ScriptBody"] = core.NewPropertyValue("echo hello", false)
	action.Properties["Octopus.Action.Script.Syntax"] = core.NewPropertyValue("Bash", false)
	action.Properties["Octopus.Action.RunOnServer"] = core.NewPropertyValue("True", false)
	step.Actions = append(step.Actions, action)
	proc.Steps = append(proc.Steps, step)
	proc, err = deployments.UpdateDeploymentProcess(c, proc)
	if err != nil || proc.Version != 1 || len(proc.Steps) != 1 || proc.Steps[0].Name != "Say hello" || len(proc.Steps[0].Actions) != 1 {
		t.Fatalf("UpdateDeploymentProcess: %+v, %v", proc, err)
	}
	if got, err := deployments.GetDeploymentProcessByID(c, "Spaces-1", proc.ID); err != nil || got.Version != 1 ||
		got.Steps[0].Actions[0].Properties["Octopus.Action.Script.ScriptBody"].Value != "echo hello" {
		t.Fatalf("GetDeploymentProcessByID: %+v, %v", got, err)
	}
	stale := *proc
	stale.Version = 0
	stale.Steps = nil
	if _, err := deployments.UpdateDeploymentProcess(c, &stale); err == nil || !strings.Contains(err.Error(), "changed by someone else") {
		t.Errorf("UpdateDeploymentProcess with a stale version: %v; want a conflict (409)", err)
	}
	if got, _ := deployments.GetDeploymentProcessByID(c, "Spaces-1", proc.ID); got == nil || got.Version != 1 || len(got.Steps) != 1 {
		t.Errorf("after a stale update the process is %+v; want it unchanged", got)
	}

	// The variable set.
	vs, err := c.Variables.GetAll(p.ID)
	if err != nil || vs.ID != p.VariableSetID || vs.OwnerID != p.ID || vs.ScopeValues == nil || vs.Variables == nil {
		t.Fatalf("Variables.GetAll: %+v, %v", vs, err)
	}
	vs.Variables = append(vs.Variables, variables.NewVariable("Greeting"))
	vs.Variables[0].Value = "hello"
	if vs, err = c.Variables.Update(p.ID, vs); err != nil || len(vs.Variables) != 1 || vs.Version != 1 {
		t.Fatalf("Variables.Update: %+v, %v", vs, err)
	}
	if got, err := variables.GetAll(c, "Spaces-1", p.ID); err != nil || len(got.Variables) != 1 || got.Variables[0].Value != "hello" {
		t.Fatalf("variables.GetAll: %+v, %v", got, err)
	}
	secret := variables.NewVariable("Password")
	secret.Value, secret.IsSensitive, secret.Type = "hunter2-official", true, "Sensitive"
	vs.Variables = append(vs.Variables, secret)
	if vs, err = c.Variables.Update(p.ID, vs); err != nil || len(vs.Variables) != 2 {
		t.Fatalf("Variables.Update with a sensitive value: %+v, %v", vs, err)
	}
	for _, v := range vs.Variables {
		if v.Name == "Password" && (v.Value != "" || !v.IsSensitive) {
			t.Errorf("the sensitive variable as answered: %+v; want no value, sensitive", v)
		}
	}

	// A delete takes what the project owns with it.
	if err := projects.DeleteByID(c, "Spaces-1", p.ID); err != nil {
		t.Fatalf("DeleteByID: %v", err)
	}
	for _, path := range []string{"projects/" + p.ID, "channels/" + def.ID, "deploymentprocesses/" + proc.ID, "variables/" + vs.ID} {
		status, body := e.do("GET", "/api/Spaces-1/"+path, e.adminKey, "")
		wantError(t, "GET "+path+" after the project's delete", status, body, http.StatusNotFound)
	}
	if err := c.Projects.DeleteByID(p.ID); err == nil {
		t.Fatal("deleting a deleted project succeeded")
	}
}

// TestProjectBadInput: clear 4xx answers, and nothing changes.
func TestProjectBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	group := defaultGroupID(t, e)
	body := func(fields string) string {
		return fmt.Sprintf(`{"Name": "Site", "LifecycleId": %q, "ProjectGroupId": %q%s}`, testLifecycle, group, fields)
	}
	status, created := e.do("POST", "/api/Spaces-1/projects", e.adminKey, body(""))
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, created)
	}
	id := jsonField(t, created, "Id")
	for _, tc := range []struct {
		what, method, path, body string
		status                   int
	}{
		{"no Name", "POST", "/api/Spaces-1/projects", fmt.Sprintf(`{"LifecycleId": %q, "ProjectGroupId": %q}`, testLifecycle, group), 400},
		{"no LifecycleId", "POST", "/api/Spaces-1/projects", fmt.Sprintf(`{"Name": "x", "ProjectGroupId": %q}`, group), 400},
		{"no ProjectGroupId", "POST", "/api/Spaces-1/projects", fmt.Sprintf(`{"Name": "x", "LifecycleId": %q}`, testLifecycle), 400},
		{"unknown group", "POST", "/api/Spaces-1/projects", fmt.Sprintf(`{"Name": "x", "LifecycleId": %q, "ProjectGroupId": "ProjectGroups-99"}`, testLifecycle), 400},
		{"group id of another type", "POST", "/api/Spaces-1/projects", fmt.Sprintf(`{"Name": "x", "LifecycleId": %q, "ProjectGroupId": "Environments-1"}`, testLifecycle), 400},
		{"lifecycle id of another type", "POST", "/api/Spaces-1/projects", fmt.Sprintf(`{"Name": "x", "LifecycleId": "Environments-1", "ProjectGroupId": %q}`, group), 400},
		{"unknown lifecycle", "POST", "/api/Spaces-1/projects", fmt.Sprintf(`{"Name": "x", "LifecycleId": "Lifecycles-99", "ProjectGroupId": %q}`, group), 400},
		{"duplicate name", "POST", "/api/Spaces-1/projects", strings.Replace(body(""), "Site", "SITE", 1), 409},
		{"guided failure mode", "POST", "/api/Spaces-1/projects", strings.Replace(body(`, "DefaultGuidedFailureMode": "Maybe"`), "Site", "x", 1), 400},
		{"tenanted", "POST", "/api/Spaces-1/projects", strings.Replace(body(`, "TenantedDeploymentMode": "Tenanted"`), "Site", "x", 1), 400},
		{"version controlled", "POST", "/api/Spaces-1/projects", strings.Replace(body(`, "PersistenceSettings": {"Type": "VersionControlled"}`), "Site", "x", 1), 400},
		{"wrong type", "POST", "/api/Spaces-1/projects", strings.Replace(body(`, "IsDisabled": "yes"`), "Site", "x", 1), 400},
		{"get another type's id", "GET", "/api/Spaces-1/projects/ProjectGroups-1", ``, 404},
		{"get an unknown project", "GET", "/api/Spaces-1/projects/Projects-99", ``, 404},
		{"channels of an unknown project", "GET", "/api/Spaces-1/projects/Projects-99/channels", ``, 404},
		{"projects of an unknown group", "GET", "/api/Spaces-1/projectgroups/ProjectGroups-99/projects", ``, 404},
		{"process of an unknown project", "GET", "/api/Spaces-1/projects/Projects-99/deploymentprocesses", ``, 404},
		{"unknown process", "GET", "/api/Spaces-1/deploymentprocesses/deploymentprocess-Projects-99", ``, 404},
		{"unknown variable set", "GET", "/api/Spaces-1/variables/variableset-Projects-99", ``, 404},
		{"rename to nothing", "PUT", "/api/Spaces-1/projects/" + id, strings.Replace(body(""), "Site", "", 1), 400},
		{"another project's id in the body", "PUT", "/api/Spaces-1/projects/" + id, body(`, "Id": "Projects-77"`), 400},
		{"delete the group in use", "DELETE", "/api/Spaces-1/projectgroups/" + group, ``, 409},
		{"delete the lifecycle in use", "DELETE", "/api/Spaces-1/lifecycles/" + testLifecycle, ``, 409},
		{"create a process", "POST", "/api/Spaces-1/deploymentprocesses", `{"ProjectId": "` + id + `"}`, 400},
		{"delete a process", "DELETE", "/api/Spaces-1/deploymentprocesses/deploymentprocess-" + id, ``, 400},
		{"create a variable set", "POST", "/api/Spaces-1/variables", `{"OwnerId": "` + id + `"}`, 400},
		{"delete a variable set", "DELETE", "/api/Spaces-1/variables/variableset-" + id, ``, 400},
		{"move a process", "PUT", "/api/Spaces-1/deploymentprocesses/deploymentprocess-" + id, `{"ProjectId": "Projects-77", "Steps": []}`, 400},
		{"a process step of an unknown action type", "PUT", "/api/Spaces-1/deploymentprocesses/deploymentprocess-" + id,
			`{"Steps": [{"Name": "Web", "Actions": [{"Name": "a", "ActionType": "Octopus.AzureWebApp"}]}]}`, 400},
		{"a process step with neither roles nor the server", "PUT", "/api/Spaces-1/deploymentprocesses/deploymentprocess-" + id,
			`{"Steps": [{"Name": "Web", "Actions": [{"Name": "a", "ActionType": "Octopus.Script", "Properties": {"Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": "true"}}]}]}`, 400},
		{"a process step with a window of 0", "PUT", "/api/Spaces-1/deploymentprocesses/deploymentprocess-" + id,
			`{"Steps": [{"Name": "Web", "Properties": {"Octopus.Action.TargetRoles": "web", "Octopus.Action.MaxParallelism": "0"}, "Actions": [{"Name": "a", "ActionType": "Octopus.Manual"}]}]}`, 400},
		{"process steps of one name", "PUT", "/api/Spaces-1/deploymentprocesses/deploymentprocess-" + id, `{"Steps": [` + manualStep("Web") + `,` + manualStep("web") + `]}`, 400},
		{"a process property that is a number", "PUT", "/api/Spaces-1/deploymentprocesses/deploymentprocess-" + id,
			`{"Steps": [{"Name": "Web", "Properties": {"Octopus.Action.MaxParallelism": 2}, "Actions": [{"Name": "a", "ActionType": "Octopus.Manual"}]}]}`, 400},
		{"channel without a project", "POST", "/api/Spaces-1/channels", `{"Name": "Beta"}`, 400},
		{"channel of an unknown project", "POST", "/api/Spaces-1/channels", `{"Name": "Beta", "ProjectId": "Projects-99"}`, 400},
		{"channel of another type", "POST", "/api/Spaces-1/channels", `{"Name": "Beta", "ProjectId": "` + id + `", "Type": "EphemeralEnvironment"}`, 400},
		{"channel with a bad lifecycle", "POST", "/api/Spaces-1/channels", `{"Name": "Beta", "ProjectId": "` + id + `", "LifecycleId": "Projects-1"}`, 400},
		{"channel with an unknown lifecycle", "POST", "/api/Spaces-1/channels", `{"Name": "Beta", "ProjectId": "` + id + `", "LifecycleId": "Lifecycles-99"}`, 400},
		{"channel name taken in the project", "POST", "/api/Spaces-1/channels", `{"Name": "default", "ProjectId": "` + id + `"}`, 409},
	} {
		status, answer := e.do(tc.method, tc.path, e.adminKey, tc.body)
		wantError(t, tc.what, status, answer, tc.status)
	}
	if _, all := e.do("GET", "/api/Spaces-1/projects/all", e.adminKey, ""); strings.Count(string(all), `"Id":"Projects-`) != 1 {
		t.Errorf("after the refusals, the projects are %s", all)
	}
	if _, all := e.do("GET", "/api/Spaces-1/channels/all", e.adminKey, ""); strings.Count(string(all), `"Id":"Channels-`) != 1 {
		t.Errorf("after the refusals, the channels are %s", all)
	}
}

// TestChannelDefault: the default channel of a project cannot be deleted,
// and making another the default takes over; names are unique per project.
func TestChannelDefault(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := officialClient(t, e)
	group := defaultGroupID(t, e)
	a, err := c.Projects.Add(projects.NewProject("A", testLifecycle, group))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Projects.Add(projects.NewProject("B", testLifecycle, group))
	if err != nil {
		t.Fatal(err)
	}
	chs, err := c.Projects.GetChannels(a)
	if err != nil || len(chs) != 1 {
		t.Fatalf("GetChannels: %v, %v", chs, err)
	}
	def := chs[0]
	status, body := e.do("DELETE", "/api/Spaces-1/channels/"+def.ID, e.adminKey, "")
	wantError(t, "deleting the default channel", status, body, http.StatusConflict)
	def.IsDefault = false
	if _, err := c.Channels.Update(def); err == nil {
		t.Error("un-defaulting the default channel succeeded")
	}
	// A channel named like another project's: fine.
	if _, err := c.Channels.Add(channels.NewChannel("Default", b.ID)); err == nil {
		t.Error("a second Default channel of B was accepted")
	}
	other := channels.NewChannel("Release", a.ID)
	other.IsDefault = true
	other, err = c.Channels.Add(other)
	if err != nil || !other.IsDefault {
		t.Fatalf("adding a new default channel: %+v, %v", other, err)
	}
	if old, err := c.Channels.GetByID(def.ID); err != nil || old.IsDefault {
		t.Fatalf("the old default: %+v, %v", old, err)
	}
	if err := c.Channels.DeleteByID(def.ID); err != nil {
		t.Fatalf("deleting the old default: %v", err)
	}
	if _, err := c.Channels.Add(channels.NewChannel("release", b.ID)); err != nil {
		t.Errorf("a channel of B named like one of A's: %v", err)
	}
	status, body = e.do("PUT", "/api/Spaces-1/channels/"+other.ID, e.adminKey, fmt.Sprintf(`{"Name": "Release", "ProjectId": %q, "IsDefault": true}`, b.ID))
	wantError(t, "moving a channel to another project", status, body, http.StatusBadRequest)
}

// TestProcessStaleVersion: a PUT of a process at a stale version answers
// 409 and changes nothing; the routes under the project serve the same.
func TestProcessStaleVersion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, body := e.do("POST", "/api/Spaces-1/projects", e.adminKey,
		fmt.Sprintf(`{"Name": "P", "LifecycleId": %q, "ProjectGroupId": %q}`, testLifecycle, defaultGroupID(t, e)))
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	id := jsonField(t, body, "Id")
	under := "/api/Spaces-1/projects/" + id + "/deploymentprocesses"
	status, body = e.do("GET", under, e.adminKey, "")
	if status != http.StatusOK || jsonField(t, body, "Id") != "deploymentprocess-"+id || !strings.Contains(string(body), `"Steps":[]`) {
		t.Fatalf("GET %s: %d %s", under, status, body)
	}
	self := "/api/Spaces-1/deploymentprocesses/deploymentprocess-" + id
	if status, body := e.do("PUT", self, e.adminKey, `{"Version": 0, "Steps": [`+manualStep("one")+`]}`); status != http.StatusOK {
		t.Fatalf("PUT at version 0: %d %s", status, body)
	}
	status, body = e.do("PUT", under, e.adminKey, `{"Version": 0, "Steps": [`+manualStep("two")+`]}`)
	wantError(t, "PUT at the stale version 0", status, body, http.StatusConflict)
	if _, body := e.do("GET", self, e.adminKey, ""); !strings.Contains(string(body), `"Name":"one"`) || !strings.Contains(string(body), `"Version":1`) {
		t.Fatalf("after a stale PUT: %s", body)
	}
	// The variable set, likewise.
	vars := "/api/Spaces-1/projects/" + id + "/variables"
	if status, body := e.do("PUT", vars, e.adminKey, `{"Version": 0, "Variables": [{"Name": "A", "Value": "1"}]}`); status != http.StatusOK ||
		!strings.Contains(string(body), `"OwnerId":"`+id+`"`) || !strings.Contains(string(body), `"Environments":[]`) {
		t.Fatalf("PUT %s: %d %s", vars, status, body)
	}
	status, body = e.do("PUT", vars, e.adminKey, `{"Version": 0, "Variables": []}`)
	wantError(t, "PUT of the variables at a stale version", status, body, http.StatusConflict)
}

// TestProjectCreateFailsHalfWay: when the unit of work of a create fails
// after the project and its channel are inserted (the process's id is
// taken), nothing is left and nobody is notified.
func TestProjectCreateFailsHalfWay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	// The next project is Projects-1 (a fresh database); take its process's id.
	status, body := e.do("PUT", "/api/Spaces-1/deploymentprocesses/deploymentprocess-Projects-1", e.adminKey, `{}`)
	wantError(t, "PUT of a process that does not exist", status, body, http.StatusNotFound)
	takeProcessID(t, e, "deploymentprocess-Projects-1")
	notes, err := e.store.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	status, body = e.do("POST", "/api/Spaces-1/projects", e.adminKey,
		fmt.Sprintf(`{"Name": "Half", "LifecycleId": %q, "ProjectGroupId": %q}`, testLifecycle, defaultGroupID(t, e)))
	wantError(t, "a create whose process cannot be inserted", status, body, http.StatusConflict)
	for _, path := range []string{"/api/Spaces-1/projects/Projects-1", "/api/Spaces-1/channels/Channels-1", "/api/Spaces-1/projects/half"} {
		status, body := e.do("GET", path, e.adminKey, "")
		wantError(t, "GET "+path+" after the failed create", status, body, http.StatusNotFound)
	}
	if _, body := e.do("GET", "/api/Spaces-1/projects", e.adminKey, ""); !strings.Contains(string(body), `"TotalResults":0`) {
		t.Errorf("projects after the failed create: %s", body)
	}
	timeout := time.After(300 * time.Millisecond)
	for {
		select {
		case n := <-notes:
			if n.Channel == store.ChannelDocuments { // the node's own work notifies on other channels
				t.Errorf("the failed create notified %+v", n)
			}
		case <-timeout:
			return
		}
	}
}

// takeProcessID stores a deployment process of id and no project, so that
// the project it is the id of cannot be created.
func takeProcessID(t *testing.T, e *env, id string) {
	t.Helper()
	err := e.store.Update(t.Context(), func(tx *collection.Tx) error {
		return resources.DeploymentProcesses.Insert(t.Context(), tx, &cuttle.DeploymentProcess{
			Resource: cuttle.Resource{ID: id, SpaceID: "Spaces-1"}, Steps: []cuttle.DeploymentStep{}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// manualStep returns the JSON of a step of one manual intervention, named
// after the step.
func manualStep(name string) string {
	return fmt.Sprintf(`{"Name": %q, "Actions": [{"Name": %q, "ActionType": "Octopus.Manual"}]}`, name, name+" approval")
}

// TestSensitiveVariables: a sensitive value is answered as null, kept when
// a PUT sends back null or "", stored sealed (no file of the node's data
// folder holds it in clear), and opens to itself with the master key.
func TestSensitiveVariables(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, body := e.do("POST", "/api/Spaces-1/projects", e.adminKey,
		fmt.Sprintf(`{"Name": "P", "LifecycleId": %q, "ProjectGroupId": %q}`, testLifecycle, defaultGroupID(t, e)))
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	id := jsonField(t, body, "Id")
	vars := "/api/Spaces-1/projects/" + id + "/variables"
	const secret = "hunter2-very-secret"
	status, body = e.do("PUT", vars, e.adminKey, `{"Variables": [
		{"Name": "Password", "Value": "`+secret+`", "Type": "Sensitive", "IsSensitive": false},
		{"Name": "Plain", "Value": "visible"}]}`)
	if status != http.StatusOK || strings.Contains(string(body), secret) || strings.Contains(string(body), "Secrets") {
		t.Fatalf("PUT of a sensitive variable: %d %s", status, body)
	}
	var set struct {
		Version   int
		Variables []struct {
			Id, Name string
			Value    *string
		}
	}
	_, body = e.do("GET", vars, e.adminKey, "")
	if err := json.Unmarshal(body, &set); err != nil || len(set.Variables) != 2 || set.Variables[0].Value != nil ||
		set.Variables[1].Value == nil || *set.Variables[1].Value != "visible" || set.Variables[0].Id == "" {
		t.Fatalf("GET: %s", body)
	}
	// Sent back as answered (null), then as "": the secret stays.
	for _, again := range []string{`null`, `""`} {
		status, body = e.do("PUT", vars, e.adminKey, fmt.Sprintf(`{"Variables": [{"Id": %q, "Name": "Password", "Value": %s, "Type": "Sensitive"}]}`,
			set.Variables[0].Id, again))
		if status != http.StatusOK {
			t.Fatalf("PUT back with %s: %d %s", again, status, body)
		}
	}
	opened := openVariables(t, e, cuttle.VariableSetID(id))
	if len(opened) != 1 || opened[0].Value == nil || *opened[0].Value != secret {
		t.Errorf("the stored variables opened: %+v; want the secret kept", opened)
	}
	// A new sensitive variable needs a value.
	status, body = e.do("PUT", vars, e.adminKey, `{"Variables": [{"Name": "Token", "Type": "Sensitive"}]}`)
	wantError(t, "a sensitive variable without a value", status, body, http.StatusBadRequest)
	// No file of the node's data holds the secret in clear.
	filepath.WalkDir(e.dataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the sensitive value in clear", path)
			}
		}
		return nil
	})
}

// openVariables reads a variable set from the node's store and opens its
// sensitive values with the master key.
func openVariables(t *testing.T, e *env, id string) []cvariables.Variable {
	t.Helper()
	var set cuttle.VariableSet
	if err := e.store.Read(t.Context(), func(tx *collection.Tx) error {
		var err error
		set, err = resources.VariableSets.Get(t.Context(), tx, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	vs, err := resources.OpenVariables(e.masterKey, set)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}
