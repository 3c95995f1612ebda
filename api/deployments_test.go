package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/deployments"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/interruptions"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/releases"
	octotasks "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/tasks"
)

// deployableProject creates the environments Test (first) and Production,
// and a project with a sensitive variable and a process of three steps on
// the server: a script that prints variables and sets an output variable,
// a manual intervention, and a script that reads the output variable. It
// returns the project's id and the environments' ids.
func deployableProject(t *testing.T, e *env) (project, test, production string) {
	t.Helper()
	for i, name := range []string{"Test", "Production"} {
		status, body := e.do("POST", "/api/Spaces-1/environments", e.adminKey, fmt.Sprintf(`{"Name": %q, "SortOrder": %d}`, name, i+1))
		if status != http.StatusCreated {
			t.Fatalf("creating %s: %d %s", name, status, body)
		}
		if i == 0 {
			test = jsonField(t, body, "Id")
		} else {
			production = jsonField(t, body, "Id")
		}
	}
	project = newProjectOn(t, e, "Shop")
	status, body := e.do("PUT", "/api/Spaces-1/projects/"+project+"/variables", e.adminKey, `{"Variables": [
		{"Name": "Greeting", "Value": "hello"},
		{"Name": "Password", "Value": "s3cr3t-value", "Type": "Sensitive"}]}`)
	if status != http.StatusOK {
		t.Fatalf("variables: %d %s", status, body)
	}
	script := func(step, action, body string) string {
		b, _ := json.Marshal(body)
		return fmt.Sprintf(`{"Name": %q, "Actions": [{"Name": %q, "ActionType": "Octopus.Script", "Properties": {
			"Octopus.Action.RunOnServer": "True", "Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": %s}}]}`, step, action, b)
	}
	steps := strings.Join([]string{
		script("Prepare", "Say", `echo "greeting #{Greeting} in #{Octopus.Environment.Name}"; echo "password is #{Password}"; set_octopusvariable Color blue`),
		`{"Name": "Approve", "Actions": [{"Name": "Check", "ActionType": "Octopus.Manual", "Properties": {"Octopus.Action.Manual.Instructions": "Look at it."}}]}`,
		script("Finish", "Tell", `echo "color was #{Octopus.Action[Say].Output.Color}"; echo "read: $(get_octopusvariable Greeting)"`),
	}, ",")
	status, body = e.do("PUT", "/api/Spaces-1/projects/"+project+"/deploymentprocesses", e.adminKey, `{"Steps": [`+steps+`]}`)
	if status != http.StatusOK {
		t.Fatalf("process: %d %s", status, body)
	}
	return project, test, production
}

// deploy deploys the project's release to an environment through
// create/untenanted/v1 and returns the deployment's and the task's ids.
func deploy(t *testing.T, e *env, version, environment string) (deployment, task string) {
	t.Helper()
	status, body := e.do("POST", "/api/Spaces-1/deployments/create/untenanted/v1", e.adminKey,
		fmt.Sprintf(`{"spaceId": "Spaces-1", "projectName": "Shop", "releaseVersion": %q, "environmentNames": [%q]}`, version, environment))
	if status != http.StatusOK {
		t.Fatalf("deploying to %s: %d %s", environment, status, body)
	}
	var out struct {
		DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
	}
	if err := json.Unmarshal(body, &out); err != nil || len(out.DeploymentServerTasks) != 1 {
		t.Fatalf("the answer: %s", body)
	}
	return out.DeploymentServerTasks[0].DeploymentId, out.DeploymentServerTasks[0].ServerTaskId
}

// waitPending waits until the deployment waits on an interruption, and
// returns it.
func waitPending(t *testing.T, e *env, deployment, task string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var page struct{ Items []map[string]any }
		_, body := e.do("GET", "/api/Spaces-1/interruptions?pendingOnly=true&regarding="+deployment, e.adminKey, "")
		json.Unmarshal(body, &page)
		var tk struct {
			State                   string
			HasPendingInterruptions bool
		}
		_, tb := e.do("GET", "/api/tasks/"+task, e.adminKey, "")
		json.Unmarshal(tb, &tk)
		if len(page.Items) == 1 && tk.HasPendingInterruptions && tk.State == "Executing" {
			return page.Items[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deployment does not wait on an interruption: %s; task %s", body, tb)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeploymentWaitsForAPerson: a deployment runs its server-side script
// with its variables (the sensitive one masked in the log), waits parked on
// a manual intervention, and, once a person takes responsibility and
// proceeds, resumes and reads the output variable of the first step. The
// lifecycle holds Production back until Test succeeded. Abort fails the
// deployment with the approver's notes.
func TestDeploymentWaitsForAPerson(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, test, _ := deployableProject(t, e)
	status, body := e.do("POST", "/api/Spaces-1/releases/create/v1", e.adminKey, `{"spaceId": "Spaces-1", "projectName": "Shop"}`)
	if status != http.StatusOK {
		t.Fatalf("release: %d %s", status, body)
	}
	status, body = e.do("POST", "/api/Spaces-1/deployments/create/untenanted/v1", e.adminKey,
		`{"spaceId": "Spaces-1", "projectName": "Shop", "releaseVersion": "0.0.1", "environmentNames": ["Production"]}`)
	wantError(t, "a deployment to Production before Test", status, body, http.StatusBadRequest)
	if !strings.Contains(string(body), "Test") {
		t.Errorf("the refusal does not name the phase to pass first: %s", body)
	}

	deployment, task := deploy(t, e, "0.0.1", "Test")
	in := waitPending(t, e, deployment, task)
	inState := func(states string) string {
		t.Helper()
		status, body := e.do("GET", "/api/Spaces-1/deployments?taskState="+states, e.adminKey, "")
		var page struct{ Items []struct{ Id string } }
		if status != http.StatusOK || json.Unmarshal(body, &page) != nil {
			t.Fatalf("deployments?taskState=%s: %d %s", states, status, body)
		}
		var ids []string
		for _, d := range page.Items {
			ids = append(ids, d.Id)
		}
		return strings.Join(ids, ",")
	}
	if got := inState("Executing"); got != deployment {
		t.Errorf("deployments?taskState=Executing while it waits: %q, want %s", got, deployment)
	}
	id, _ := in["Id"].(string)
	submit := "/api/Spaces-1/interruptions/" + id + "/submit"
	status, body = e.do("POST", submit, e.adminKey, `{"Result": "Proceed", "Notes": "looks fine"}`)
	wantError(t, "a submit without responsibility", status, body, http.StatusBadRequest)
	if status, body := e.do("PUT", "/api/Spaces-1/interruptions/"+id+"/responsible", e.adminKey, ""); status != http.StatusOK {
		t.Fatalf("taking responsibility: %d %s", status, body)
	}
	status, body = e.do("POST", submit, e.adminKey, `{"Result": "Maybe"}`)
	wantError(t, "an answer the form does not offer", status, body, http.StatusBadRequest)
	if status, body := e.do("POST", submit, e.adminKey, `{"Result": "Proceed", "Notes": "looks fine"}`); status != http.StatusOK {
		t.Fatalf("proceeding: %d %s", status, body)
	}
	done := e.waitTask(t, task, "Success", "Failed")
	_, raw := e.do("GET", "/api/tasks/"+task+"/raw", e.adminKey, "")
	log := string(raw)
	if done.State != "Success" {
		t.Fatalf("the deployment ended %s: %s\n%s", done.State, done.ErrorMessage, log)
	}
	for _, want := range []string{"greeting hello in Test", "password is ********", "color was blue", "read: hello", "proceeded. looks fine"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "s3cr3t-value") {
		t.Errorf("the log shows the sensitive value:\n%s", log)
	}
	_, body = e.do("GET", "/api/Spaces-1/deployments/"+deployment, e.adminKey, "")
	if jsonField(t, body, "State") != "Success" {
		t.Errorf("the deployment document: %s", body)
	}
	checkActivity(t, e, task, "Prepare: Success [the server: Success [Say: Success]] Approve: Success [the server: Success [Check: Success]] "+
		"Finish: Success [the server: Success [Tell: Success]]", "greeting hello in Test")

	// Production now; Abort fails it.
	deployment, task = deploy(t, e, "0.0.1", "Production")
	in = waitPending(t, e, deployment, task)
	id, _ = in["Id"].(string)
	e.do("PUT", "/api/Spaces-1/interruptions/"+id+"/responsible", e.adminKey, "")
	if status, body := e.do("POST", "/api/Spaces-1/interruptions/"+id+"/submit", e.adminKey, `{"Result": "Abort", "Notes": "not today"}`); status != http.StatusOK {
		t.Fatalf("aborting: %d %s", status, body)
	}
	done = e.waitTask(t, task, "Success", "Failed")
	_, raw = e.do("GET", "/api/tasks/"+task+"/raw", e.adminKey, "")
	if done.State != "Failed" || !strings.Contains(string(raw), "not today") || strings.Contains(string(raw), "color was") {
		t.Errorf("an aborted deployment: %s\n%s", done.State, raw)
	}
	checkActivity(t, e, task, "Prepare: Success [the server: Success [Say: Success]] Approve: Failed [the server: Failed [Check: Failed]] "+
		"Finish: Skipped [the server: Skipped [Tell: Skipped]]", "greeting hello in Production")

	if got := inState("Success"); got != "Deployments-1" || inState("Failed") != "Deployments-2" || inState("Executing,Queued") != "" ||
		inState("Success,Failed") != "Deployments-2,Deployments-1" {
		t.Errorf("deployments?taskState=Success: %q; Failed: %q; Executing,Queued: %q", got, inState("Failed"), inState("Executing,Queued"))
	}
	status, body = e.do("GET", "/api/Spaces-1/deployments?taskState=Done", e.adminKey, "")
	wantError(t, "taskState=Done", status, body, http.StatusBadRequest)

	// The dashboard: the latest deployment to each environment.
	status, body = e.do("GET", "/api/Spaces-1/dashboard", e.adminKey, "")
	var dash struct {
		Projects, Environments []struct{ Id, Name string }
		Items, PreviousItems   []struct {
			ProjectId, EnvironmentId, ReleaseVersion, State string
			IsCurrent, IsCompleted                          bool
		}
	}
	if status != http.StatusOK || json.Unmarshal(body, &dash) != nil || len(dash.Projects) != 1 || len(dash.Environments) != 2 ||
		len(dash.Items) != 2 || len(dash.PreviousItems) != 0 {
		t.Fatalf("the dashboard: %d %s", status, body)
	}
	for _, item := range dash.Items {
		want := map[bool]string{true: "Success", false: "Failed"}[item.EnvironmentId == test]
		if item.State != want || item.IsCurrent != (want == "Success") || !item.IsCompleted || item.ReleaseVersion != "0.0.1" {
			t.Errorf("the dashboard's item for %s: %+v; want %s", item.EnvironmentId, item, want)
		}
	}
}

// activity is an element of a task's details.
type activity struct {
	Name, Status   string
	Started, Ended *time.Time
	Children       []activity
	LogElements    []struct{ MessageText string }
}

// checkActivity reads the task's details and checks its activity tree:
// the deployment's steps, their targets and actions, as "step: status
// [target: status [action: status]]", each ended element with its start
// and end; and the line has its target's element.
func checkActivity(t *testing.T, e *env, task, want, line string) {
	t.Helper()
	status, body := e.do("GET", "/api/tasks/"+task+"/details", e.adminKey, "")
	var details struct{ ActivityLogs []activity }
	if status != http.StatusOK || json.Unmarshal(body, &details) != nil || len(details.ActivityLogs) != 1 {
		t.Fatalf("details: %d %s", status, body)
	}
	var got []string
	var walk func(a activity) string
	found := false
	walk = func(a activity) string {
		if a.Status != "Skipped" && (a.Started == nil || a.Ended == nil || a.Ended.Before(*a.Started)) {
			t.Errorf("the element %s (%s) started %v and ended %v", a.Name, a.Status, a.Started, a.Ended)
		}
		for _, l := range a.LogElements {
			found = found || (len(a.Children) > 0 && strings.Contains(l.MessageText, line))
		}
		s := a.Name + ": " + a.Status
		if len(a.Children) > 0 {
			var cs []string
			for _, c := range a.Children {
				cs = append(cs, walk(c))
			}
			s += " [" + strings.Join(cs, " ") + "]"
		}
		return s
	}
	for _, step := range details.ActivityLogs[0].Children {
		got = append(got, walk(step))
	}
	if strings.Join(got, " ") != want {
		t.Errorf("the activity tree:\n%s\nwant\n%s", strings.Join(got, " "), want)
	}
	if !found {
		t.Errorf("no target's element holds the line %q: %s", line, body)
	}
}

// answer takes responsibility for the deployment's pending interruption
// and submits body.
func answer(t *testing.T, e *env, deployment, task, body string) map[string]any {
	t.Helper()
	in := waitPending(t, e, deployment, task)
	id, _ := in["Id"].(string)
	if status, b := e.do("PUT", "/api/Spaces-1/interruptions/"+id+"/responsible", e.adminKey, ""); status != http.StatusOK {
		t.Fatalf("taking responsibility: %d %s", status, b)
	}
	if status, b := e.do("POST", "/api/Spaces-1/interruptions/"+id+"/submit", e.adminKey, body); status != http.StatusOK {
		t.Fatalf("submitting %s: %d %s", body, status, b)
	}
	return in
}

// TestGuidedFailure: a failed action under guided failure waits for a
// person, who may retry it (it runs again and succeeds), ignore its
// failure (the deployment goes on), or fail the deployment; Exclude is not
// offered for the server, nor Ignore for a required action.
func TestGuidedFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, body := e.do("POST", "/api/Spaces-1/environments", e.adminKey, `{"Name": "Test"}`)
	if status != http.StatusCreated {
		t.Fatalf("environment: %d %s", status, body)
	}
	newProjectOn(t, e, "Shop")
	marker := filepath.Join(t.TempDir(), "tried")
	flaky, _ := json.Marshal(fmt.Sprintf(`if [ -e %q ]; then echo second try; else touch %q; echo first try fails; exit 3; fi`, marker, marker))
	steps := fmt.Sprintf(`{"Steps": [
		{"Name": "Flaky", "Actions": [{"Name": "Flaky", "ActionType": "Octopus.Script", "Properties": {"Octopus.Action.RunOnServer": "True", "Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": %s}}]},
		{"Name": "Broken", "Actions": [{"Name": "Broken", "ActionType": "Octopus.Script", "Properties": {"Octopus.Action.RunOnServer": "True", "Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": "exit 1"}}]},
		{"Name": "After", "Actions": [{"Name": "After", "ActionType": "Octopus.Script", "Properties": {"Octopus.Action.RunOnServer": "True", "Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": "echo after the ignored failure"}}]},
		{"Name": "Required", "Actions": [{"Name": "Required", "ActionType": "Octopus.Script", "IsRequired": true, "Properties": {"Octopus.Action.RunOnServer": "True", "Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": "exit 2"}}]}]}`, flaky)
	if status, body := e.do("PUT", "/api/Spaces-1/projects/Shop/deploymentprocesses", e.adminKey, steps); status != http.StatusOK {
		t.Fatalf("process: %d %s", status, body)
	}
	if status, body := e.do("POST", "/api/Spaces-1/releases/create/v1", e.adminKey, `{"spaceId": "Spaces-1", "projectName": "Shop"}`); status != http.StatusOK {
		t.Fatalf("release: %d %s", status, body)
	}
	status, body = e.do("POST", "/api/Spaces-1/deployments/create/untenanted/v1", e.adminKey,
		`{"spaceId": "Spaces-1", "projectName": "Shop", "releaseVersion": "0.0.1", "environmentNames": ["Test"], "useGuidedFailure": true}`)
	if status != http.StatusOK {
		t.Fatalf("deploying: %d %s", status, body)
	}
	var out struct {
		DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
	}
	json.Unmarshal(body, &out)
	deployment, task := out.DeploymentServerTasks[0].DeploymentId, out.DeploymentServerTasks[0].ServerTaskId

	offered := func(in map[string]any) string {
		b, _ := json.Marshal(in["Form"])
		return string(b)
	}
	// Exclude is not offered for the server: refused, and the interruption still waits.
	first := waitPending(t, e, deployment, task)
	firstID, _ := first["Id"].(string)
	e.do("PUT", "/api/Spaces-1/interruptions/"+firstID+"/responsible", e.adminKey, "")
	status, body = e.do("POST", "/api/Spaces-1/interruptions/"+firstID+"/submit", e.adminKey, `{"Guidance": "Exclude"}`)
	wantError(t, "a Guidance the form does not offer", status, body, http.StatusBadRequest)
	in := answer(t, e, deployment, task, `{"Guidance": "Retry", "Notes": "once more"}`)
	if in["Id"] != firstID {
		t.Errorf("after a refused answer the pending interruption is %v, want %s still", in["Id"], firstID)
	}
	if f := offered(in); !strings.Contains(f, `"Retry"`) || !strings.Contains(f, `"Ignore"`) || strings.Contains(f, `"Exclude"`) {
		t.Errorf("the guidances offered for a server action: %s; want Retry and Ignore, not Exclude", f)
	}
	answer(t, e, deployment, task, `{"Guidance": "Ignore", "Notes": "known"}`)
	in = answer(t, e, deployment, task, `{"Guidance": "Fail", "Notes": "give up"}`)
	if f := offered(in); strings.Contains(f, `"Ignore"`) {
		t.Errorf("Ignore is offered for a required action: %s", f)
	}
	done := e.waitTask(t, task, "Success", "Failed")
	_, raw := e.do("GET", "/api/tasks/"+task+"/raw", e.adminKey, "")
	log := string(raw)
	if done.State != "Failed" {
		t.Errorf("the deployment ended %s, want Failed", done.State)
	}
	for _, want := range []string{"first try fails", "asked to retry. once more", "second try", "chose to ignore the failure. known",
		"after the ignored failure", "chose to fail the deployment. give up"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
}

// TestDeploymentOfficialClient: the official client deploys a release
// (CreateDeploymentUntenantedV1), finds the interruption, takes
// responsibility and submits through its interruption service, and reads
// the task and the deployment.
func TestDeploymentOfficialClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := officialClient(t, e)
	deployableProject(t, e)
	rel, err := releases.CreateReleaseV1(c, releases.NewCreateReleaseCommandV1("Spaces-1", "Shop"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := deployments.NewCreateDeploymentUntenantedCommandV1("Spaces-1", "Shop")
	cmd.ReleaseVersion, cmd.EnvironmentNames = rel.ReleaseVersion, []string{"Test"}
	created, err := deployments.CreateDeploymentUntenantedV1(c, cmd)
	if err != nil || len(created.DeploymentServerTasks) != 1 {
		t.Fatalf("CreateDeploymentUntenantedV1: %+v, %v", created, err)
	}
	d, task := created.DeploymentServerTasks[0].DeploymentID, created.DeploymentServerTasks[0].ServerTaskID
	waitPending(t, e, d, task)
	if got := stepStatuses(t, c, task); got != "Prepare Success, Approve Running, Finish Pending" {
		t.Errorf("tasks.GetDetails while the deployment waits: the steps are %s", got)
	}
	all, err := c.Interruptions.GetAll()
	if err != nil || len(all) != 1 || !all[0].IsPending || all[0].TaskID != task || !all[0].CanTakeResponsibility {
		t.Fatalf("Interruptions.GetAll: %+v, %v", all, err)
	}
	in := all[0]
	if _, err := c.Interruptions.TakeResponsibility(in); err != nil {
		t.Fatalf("TakeResponsibility: %v", err)
	}
	if u, err := c.Interruptions.GetResponsibility(in); err != nil || u.Username != "admin" {
		t.Errorf("GetResponsibility: %+v, %v", u, err)
	}
	req := interruptions.NewInterruptionSubmitRequest()
	req.Result, req.Notes = interruptions.ManualInterverventionApprove, "ok"
	if got, err := c.Interruptions.Submit(in, req); err != nil || got.IsPending {
		t.Fatalf("Submit: %+v, %v", got, err)
	}
	if done := e.waitTask(t, task, "Success", "Failed"); done.State != "Success" {
		t.Fatalf("the deployment ended %s: %s", done.State, done.ErrorMessage)
	}
	release, err := c.Releases.GetByID(rel.ReleaseID)
	if err != nil {
		t.Fatal(err)
	}
	progression, err := c.Deployments.GetProgression(release)
	if err != nil || len(progression.Phases) != 2 || progression.Phases[0].Progress != "Complete" || progression.Phases[1].Progress != "Current" ||
		len(progression.NextDeployments) != 1 {
		t.Errorf("GetProgression: %+v, %v; want Test complete, Production current and next", progression, err)
	}
	project, _ := c.Projects.GetByID(release.ProjectID)
	if status, body := e.do("GET", "/api/Spaces-1/deploymentprocesses/"+project.DeploymentProcessID+"/template", e.adminKey, ""); status != http.StatusOK ||
		jsonField(t, body, "NextVersionIncrement") != "0.0.2" {
		t.Errorf("the process template: %d %s", status, body)
	}
	got, err := c.Deployments.GetByID(d)
	if err != nil || got.ReleaseID != rel.ReleaseID || got.TaskID != task || got.EnvironmentID == "" {
		t.Errorf("Deployments.GetByID: %+v, %v", got, err)
	}
	details, err := octotasks.GetDetails(c, "Spaces-1", task)
	if err != nil || details.Task.State != "Success" || details.Task.HasPendingInterruptions || len(details.ActivityLogs) != 1 {
		t.Errorf("tasks.GetDetails: %+v, %v", details, err)
	}
	if got := stepStatuses(t, c, task); got != "Prepare Success, Approve Success, Finish Success" {
		t.Errorf("tasks.GetDetails after the deployment: the steps are %s", got)
	}
}

// stepStatuses reads the task's details through the official client and
// returns its steps' names and statuses.
func stepStatuses(t *testing.T, c *octoclient.Client, task string) string {
	t.Helper()
	details, err := octotasks.GetDetails(c, "Spaces-1", task)
	if err != nil || len(details.ActivityLogs) != 1 {
		t.Fatalf("tasks.GetDetails: %+v, %v", details, err)
	}
	var out []string
	for _, step := range details.ActivityLogs[0].Children {
		out = append(out, step.Name+" "+step.Status)
	}
	return strings.Join(out, ", ")
}

// TestScheduledDeployment: a deployment to run at a later time (runAt)
// waits queued until then; one whose noRunAfter is not after its runAt,
// or whose runAt is not a time, is refused with 400.
func TestScheduledDeployment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if status, body := e.do("POST", "/api/Spaces-1/environments", e.adminKey, `{"Name": "Test"}`); status != http.StatusCreated {
		t.Fatalf("environment: %d %s", status, body)
	}
	project := newProjectOn(t, e, "Later")
	status, body := e.do("PUT", "/api/Spaces-1/projects/"+project+"/deploymentprocesses", e.adminKey, `{"Steps": [{"Name": "Say", "Actions": [
		{"Name": "Say", "ActionType": "Octopus.Script", "Properties": {"Octopus.Action.RunOnServer": "True",
		"Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": "echo on schedule"}}]}]}`)
	if status != http.StatusOK {
		t.Fatalf("process: %d %s", status, body)
	}
	if status, body := e.do("POST", "/api/Spaces-1/releases/create/v1", e.adminKey, `{"spaceId": "Spaces-1", "projectName": "Later"}`); status != http.StatusOK {
		t.Fatalf("release: %d %s", status, body)
	}
	create := func(runAt, noRunAfter string) (int, []byte) {
		return e.do("POST", "/api/Spaces-1/deployments/create/untenanted/v1", e.adminKey, fmt.Sprintf(`{"spaceId": "Spaces-1",
			"projectName": "Later", "releaseVersion": "0.0.1", "environmentNames": ["Test"], "runAt": %q, "noRunAfter": %q}`, runAt, noRunAfter))
	}
	runAt := time.Now().Add(1500 * time.Millisecond).UTC().Truncate(time.Millisecond)
	status, body = create(runAt.Format(time.RFC3339), runAt.Add(-time.Minute).Format(time.RFC3339))
	wantError(t, "noRunAfter before runAt", status, body, http.StatusBadRequest)
	status, body = create("tomorrow", "")
	wantError(t, "runAt that is not a time", status, body, http.StatusBadRequest)

	status, body = create(runAt.Format(time.RFC3339Nano), runAt.Add(time.Hour).Format(time.RFC3339))
	if status != http.StatusOK {
		t.Fatalf("a scheduled deployment: %d %s", status, body)
	}
	var out struct {
		DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
	}
	json.Unmarshal(body, &out)
	task := out.DeploymentServerTasks[0].ServerTaskId
	var queued struct {
		State     string
		QueueTime time.Time
	}
	_, body = e.do("GET", "/api/tasks/"+task, e.adminKey, "")
	if json.Unmarshal(body, &queued); queued.State != "Queued" || !queued.QueueTime.Equal(runAt) {
		t.Errorf("the scheduled deployment's task: %s; want Queued until %v", body, runAt)
	}
	done := e.waitTask(t, task, "Success", "Failed")
	if done.State != "Success" || done.StartTime == nil || done.StartTime.Before(runAt) {
		t.Errorf("the scheduled deployment ended %s, started %v; want Success, not before %v", done.State, done.StartTime, runAt)
	}
}

// TestManualInterventionBlocking: while a deployment waits on a manual
// intervention, the next deployment of the project to the environment
// runs (it reaches its own intervention), unless the intervention blocks
// concurrent deployments: then the next waits queued until it is answered.
func TestManualInterventionBlocking(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if status, body := e.do("POST", "/api/Spaces-1/environments", e.adminKey, `{"Name": "Test"}`); status != http.StatusCreated {
		t.Fatalf("environment: %d %s", status, body)
	}
	for _, block := range []bool{false, true} {
		name := fmt.Sprintf("Gate%v", block)
		project := newProjectOn(t, e, name)
		status, body := e.do("PUT", "/api/Spaces-1/projects/"+project+"/deploymentprocesses", e.adminKey, fmt.Sprintf(`{"Steps": [
			{"Name": "Check", "Actions": [{"Name": "Check", "ActionType": "Octopus.Manual", "Properties": {
				"Octopus.Action.Manual.Instructions": "Look.", "Octopus.Action.Manual.BlockConcurrentDeployments": "%v"}}]}]}`, block))
		if status != http.StatusOK {
			t.Fatalf("process: %d %s", status, body)
		}
		deploy := func(version string) (string, string) {
			if status, body := e.do("POST", "/api/Spaces-1/releases/create/v1", e.adminKey,
				fmt.Sprintf(`{"spaceId": "Spaces-1", "projectName": %q, "releaseVersion": %q}`, name, version)); status != http.StatusOK {
				t.Fatalf("release %s: %d %s", version, status, body)
			}
			status, body := e.do("POST", "/api/Spaces-1/deployments/create/untenanted/v1", e.adminKey,
				fmt.Sprintf(`{"spaceId": "Spaces-1", "projectName": %q, "releaseVersion": %q, "environmentNames": ["Test"]}`, name, version))
			var out struct {
				DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
			}
			if status != http.StatusOK || json.Unmarshal(body, &out) != nil {
				t.Fatalf("deploying %s: %d %s", version, status, body)
			}
			return out.DeploymentServerTasks[0].DeploymentId, out.DeploymentServerTasks[0].ServerTaskId
		}
		first, firstTask := deploy("1.0.0")
		waitPending(t, e, first, firstTask)
		second, secondTask := deploy("1.0.1")
		if !block {
			waitPending(t, e, second, secondTask) // it ran while the first waited
			continue
		}
		time.Sleep(time.Second) // a claim would have taken it by now
		var tk struct{ State string }
		_, b := e.do("GET", "/api/tasks/"+secondTask, e.adminKey, "")
		if json.Unmarshal(b, &tk); tk.State != "Queued" {
			t.Fatalf("the second deployment's task is %s while a blocking intervention waits; want Queued", tk.State)
		}
		answer(t, e, first, firstTask, `{"Result": "Proceed"}`)
		if done := e.waitTask(t, firstTask, "Success", "Failed"); done.State != "Success" {
			t.Fatalf("the first deployment ended %s", done.State)
		}
		waitPending(t, e, second, secondTask) // it runs once the first has ended
	}
}
