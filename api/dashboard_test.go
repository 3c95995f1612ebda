package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// TestDashboard: the dashboard answers, for each project and environment,
// its latest deployment (IsCurrent when its task succeeded) and, when that
// one did not succeed, the latest before it whose own State is Success
// (PreviousItems); exactly what reading every deployment newest first
// finds (dashboardReference). Real deployments of two projects (one
// failing in Test after two good releases, one that never succeeded in
// Test), and deployments stored directly for a third: one whose task is
// gone (its own State shows) and one whose own State is Success while its
// task is still queued (not current, so the success before it is shown).
func TestDashboard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	envs := map[string]string{}
	for i, name := range []string{"Test", "Production"} {
		status, body := e.do("POST", "/api/Spaces-1/environments", e.adminKey, fmt.Sprintf(`{"Name": %q, "SortOrder": %d}`, name, i+1))
		if status != http.StatusCreated {
			t.Fatalf("creating %s: %d %s", name, status, body)
		}
		envs[name] = jsonField(t, body, "Id")
	}
	script, _ := json.Marshal(`case "#{Octopus.Release.Number}" in *-bad) echo failing; exit 1;; esac; echo fine`)
	projects := map[string]string{}
	for _, name := range []string{"Alpha", "Beta", "Gamma"} {
		projects[name] = newProjectOn(t, e, name)
		status, body := e.do("PUT", "/api/Spaces-1/projects/"+projects[name]+"/deploymentprocesses", e.adminKey, fmt.Sprintf(`{"Steps": [
			{"Name": "Run", "Actions": [{"Name": "Run", "ActionType": "Octopus.Script", "Properties": {
			"Octopus.Action.RunOnServer": "True", "Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": %s}}]}]}`, script))
		if status != http.StatusOK {
			t.Fatalf("the process of %s: %d %s", name, status, body)
		}
	}
	releases := map[string]string{} // project/version to id
	release := func(project, version string) {
		t.Helper()
		status, body := e.do("POST", "/api/Spaces-1/releases/create/v1", e.adminKey,
			fmt.Sprintf(`{"spaceId": "Spaces-1", "projectName": %q, "releaseVersion": %q}`, project, version))
		if status != http.StatusOK {
			t.Fatalf("release %s %s: %d %s", project, version, status, body)
		}
		releases[project+"/"+version] = jsonField(t, body, "ReleaseId")
	}
	deployTo := func(project, version, env, want string) {
		t.Helper()
		status, body := e.do("POST", "/api/Spaces-1/deployments/create/untenanted/v1", e.adminKey,
			fmt.Sprintf(`{"spaceId": "Spaces-1", "projectName": %q, "releaseVersion": %q, "environmentNames": [%q]}`, project, version, env))
		var out struct {
			DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
		}
		if status != http.StatusOK || json.Unmarshal(body, &out) != nil || len(out.DeploymentServerTasks) != 1 {
			t.Fatalf("deploying %s %s to %s: %d %s", project, version, env, status, body)
		}
		if got := e.waitTask(t, out.DeploymentServerTasks[0].ServerTaskId, "Success", "Failed"); got.State != want {
			t.Fatalf("the deployment of %s %s to %s ended %s, want %s", project, version, env, got.State, want)
		}
	}
	for _, v := range []string{"1.0.0", "1.0.1"} {
		release("Alpha", v)
		deployTo("Alpha", v, "Test", "Success")
		deployTo("Alpha", v, "Production", "Success")
	}
	release("Alpha", "1.0.2-bad")
	deployTo("Alpha", "1.0.2-bad", "Test", "Failed")
	release("Beta", "1.0.0-bad")
	deployTo("Beta", "1.0.0-bad", "Test", "Failed")

	// Gamma's deployments are stored directly.
	for _, v := range []string{"1.0.0", "1.0.1"} {
		release("Gamma", v)
	}
	queued, err := e.store.CreateTask(ctx, cuttle.NewTask{SpaceID: "Spaces-1", Name: "Deploy", NotBefore: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	gone := cuttle.FormatID(cuttle.TaskIDPrefix, queued.ID+1000)
	for _, d := range []struct{ version, env, task string }{
		{"1.0.0", "Test", gone},
		{"1.0.0", "Production", gone},
		{"1.0.1", "Test", cuttle.FormatID(cuttle.TaskIDPrefix, queued.ID)},
	} {
		if err := e.store.Update(ctx, func(tx *collection.Tx) error {
			return resources.Deployments.Insert(ctx, tx, &cuttle.Deployment{Resource: cuttle.Resource{SpaceID: "Spaces-1"},
				ReleaseId: releases["Gamma/"+d.version], EnvironmentId: envs[d.env], ProjectId: projects["Gamma"], TaskId: d.task,
				State: cuttle.TaskSuccess, Created: time.Now().UTC(), SkipActions: []string{}, SpecificMachineIds: []string{},
				ExcludedMachineIds: []string{}, DeployedToMachineIds: []string{}, FormValues: map[string]string{}})
		}); err != nil {
			t.Fatal(err)
		}
	}

	status, body := e.do("GET", "/api/Spaces-1/dashboard", e.adminKey, "")
	var got struct {
		Projects, Environments []map[string]any
		Items, PreviousItems   []map[string]any
	}
	if status != http.StatusOK || json.Unmarshal(body, &got) != nil || len(got.Projects) != 3 || len(got.Environments) != 2 {
		t.Fatalf("the dashboard: %d %s", status, body)
	}
	items, previous := dashboardReference(t, e)
	if !reflect.DeepEqual(got.Items, items) || !reflect.DeepEqual(got.PreviousItems, previous) {
		t.Errorf("the dashboard's items:\n%v\nprevious:\n%v\nwant\n%v\nprevious:\n%v", got.Items, got.PreviousItems, items, previous)
	}
	// What that is: Alpha's 1.0.2-bad failed in Test (1.0.1 before it),
	// Alpha 1.0.1 in Production, Beta's failure in Test (nothing before
	// it), Gamma 1.0.1 queued in Test (1.0.0 before it) and 1.0.0 in
	// Production, shown as it recorded itself (its task is gone).
	show := func(list []map[string]any) []string {
		var out []string
		for _, it := range list {
			out = append(out, fmt.Sprintf("%s %s %s %v/%v", it["ProjectId"], it["ReleaseVersion"], it["State"], it["IsCurrent"], it["IsPrevious"]))
		}
		return out
	}
	a, b, g := projects["Alpha"], projects["Beta"], projects["Gamma"]
	wantItems := []string{g + " 1.0.1 Queued false/false", g + " 1.0.0 Success true/false", b + " 1.0.0-bad Failed false/false",
		a + " 1.0.2-bad Failed false/false", a + " 1.0.1 Success true/false"}
	wantPrevious := []string{g + " 1.0.0 Success false/true", a + " 1.0.1 Success false/true"}
	if !reflect.DeepEqual(show(got.Items), wantItems) || !reflect.DeepEqual(show(got.PreviousItems), wantPrevious) {
		t.Errorf("the dashboard shows %q and previous %q; want %q and %q", show(got.Items), show(got.PreviousItems), wantItems, wantPrevious)
	}
}

// dashboardReference computes the dashboard's Items and PreviousItems
// through the API the way the first dashboard did: every deployment newest
// first, the first of each project and environment an item (current if its
// task succeeded), and, where that was not current, the next one whose own
// State is Success a previous item.
func dashboardReference(t *testing.T, e *env) (items, previous []map[string]any) {
	t.Helper()
	var page struct{ Items []cuttle.Deployment }
	status, body := e.do("GET", "/api/Spaces-1/deployments?take=100000", e.adminKey, "")
	if status != http.StatusOK || json.Unmarshal(body, &page) != nil {
		t.Fatalf("the deployments: %d %s", status, body)
	}
	type pair struct{ project, env string }
	latest, done := map[pair]bool{}, map[pair]bool{}
	items, previous = []map[string]any{}, []map[string]any{}
	for _, d := range page.Items {
		k := pair{d.ProjectId, d.EnvironmentId}
		if latest[k] && (done[k] || d.State != cuttle.TaskSuccess) {
			continue
		}
		_, rel := e.do("GET", "/api/Spaces-1/releases/"+d.ReleaseId, e.adminKey, "")
		created, _ := json.Marshal(d.Created)
		item := map[string]any{"ProjectId": d.ProjectId, "EnvironmentId": d.EnvironmentId, "ReleaseId": d.ReleaseId,
			"ReleaseVersion": jsonField(t, rel, "Version"), "DeploymentId": d.ID, "TaskId": d.TaskId, "ChannelId": d.ChannelId,
			"State": string(d.State), "HasPendingInterruptions": false, "HasWarningsOrErrors": false, "IsCompleted": false,
			"IsCurrent": false, "IsPrevious": false, "ErrorMessage": "", "Duration": "", "Created": unquote(created),
			"QueueTime": nil, "StartTime": nil, "CompletedTime": nil}
		if status, task := e.do("GET", "/api/tasks/"+d.TaskId, e.adminKey, ""); status == http.StatusOK {
			var tm map[string]any
			json.Unmarshal(task, &tm)
			for _, f := range []string{"State", "HasPendingInterruptions", "HasWarningsOrErrors", "IsCompleted", "ErrorMessage", "Duration", "QueueTime", "StartTime", "CompletedTime"} {
				item[f] = tm[f]
			}
		}
		if !latest[k] {
			latest[k] = true
			item["IsCurrent"] = item["State"] == "Success"
			done[k] = item["IsCurrent"] == true
			items = append(items, item)
			continue
		}
		item["IsPrevious"], done[k] = true, true
		previous = append(previous, item)
	}
	return items, previous
}

func unquote(b []byte) string {
	var s string
	json.Unmarshal(b, &s)
	return s
}
