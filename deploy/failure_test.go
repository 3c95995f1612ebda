package deploy_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

// deployWith deploys release 1.0.0 of the project to Test with the create
// call's further fields, and returns the deployment's and task's ids.
func deployWith(t *testing.T, cl *client.Client, project string, fields map[string]any) (deployment, task string) {
	t.Helper()
	body := map[string]any{"spaceId": "Spaces-1", "projectName": project, "releaseVersion": "1.0.0", "environmentNames": []string{"Test"}}
	for k, v := range fields {
		body[k] = v
	}
	var out struct {
		DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
	}
	do(t, cl, http.MethodPost, "/api/Spaces-1/deployments/create/untenanted/v1", body, &out)
	return out.DeploymentServerTasks[0].DeploymentId, out.DeploymentServerTasks[0].ServerTaskId
}

// submit takes responsibility for the interruption and answers it.
func submit(t *testing.T, cl *client.Client, in cuttle.Interruption, answer map[string]string) {
	t.Helper()
	path := "/api/Spaces-1/interruptions/" + url.PathEscape(in.ID)
	do(t, cl, http.MethodPut, path+"/responsible", nil, nil)
	do(t, cl, http.MethodPost, path+"/submit", answer, nil)
}

// rolling is a rolling step (window 1) over the role web: a script on each
// agent, then a script on the server for that target.
func rolling(name, onAgent, after string) step {
	return step{"Name": name, "Properties": map[string]string{"Octopus.Action.TargetRoles": "web", "Octopus.Action.MaxParallelism": "1"},
		"Actions": []any{script(name+" deploy", onAgent, false), script(name+" after", after, true)}}
}

// TestGuidedFailureOnAgents, over three agents in a rolling step: a
// target that fails once and is retried succeeds; a target that keeps
// failing and is excluded is left out of the rest of the deployment (a
// later step skips it) while the others go on; without guided failure, a
// failing script on the server after the first target stops the rollout
// before the second.
func TestGuidedFailureOnAgents(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 5)
	api := c.Nodes[0].Client
	for i := 1; i <= 3; i++ {
		testcluster.StartAgent(t, testcluster.AgentConfig{Name: fmt.Sprintf("web-%d", i), Register: c.Nodes[0], AdminKey: c.AdminKey, Poll: pollAddrs(c)})
	}
	dir := t.TempDir()
	record := func(project string) string {
		return fmt.Sprintf(`echo "#{Octopus.Step.Name}" >> %q/%s-#{Octopus.Machine.Name}`, dir, project)
	}
	ran := func(project, machine string) []string {
		b, _ := os.ReadFile(filepath.Join(dir, project+"-"+machine))
		return strings.Fields(string(b))
	}
	ctx := testcluster.Context(t, 3*time.Minute)

	t.Run("retry", func(t *testing.T) {
		once := filepath.Join(dir, "failed-once")
		flaky := record("retry") + fmt.Sprintf(`
if [ "#{Octopus.Machine.Name}" = web-2 ] && [ ! -e %q ]; then touch %q; echo "web-2 fails once"; exit 4; fi`, once, once)
		project(t, api, "Retry", rolling("Roll", flaky, "echo after #{Octopus.Machine.Name}"))
		deployment, task := deployWith(t, api, "Retry", map[string]any{"useGuidedFailure": true})
		in := pending(t, api, deployment, 60*time.Second)
		if in.Type != cuttle.InterruptionGuidedFailure || !strings.Contains(in.Title, "web-2") {
			t.Fatalf("the interruption: %+v; want a guided failure of web-2", in)
		}
		submit(t, c.Nodes[1].Client, in, map[string]string{"Guidance": "Retry"})
		done := testcluster.WaitTask(t, api, task, 60*time.Second, "Success", "Failed")
		log, _ := testcluster.TaskLog(ctx, api, task)
		if done.State != "Success" || !strings.Contains(log, "after web-3") {
			t.Fatalf("after Retry the deployment ended %s:\n%s", done.State, log)
		}
		if got := ran("retry", "web-2"); len(got) != 2 {
			t.Errorf("web-2's script ran %d times, want twice (the failure, the retry)", len(got))
		}
	})

	t.Run("exclude", func(t *testing.T) {
		broken := record("exclude") + `
if [ "#{Octopus.Machine.Name}" = web-2 ]; then echo "web-2 is broken"; exit 5; fi`
		verify := step{"Name": "Verify", "Properties": map[string]string{"Octopus.Action.TargetRoles": "web"},
			"Actions": []any{script("Verify", record("exclude"), false)}}
		project(t, api, "Exclude", rolling("Roll", broken, "echo after #{Octopus.Machine.Name}"), verify)
		deployment, task := deployWith(t, api, "Exclude", map[string]any{"useGuidedFailure": true})
		submit(t, api, pending(t, api, deployment, 60*time.Second), map[string]string{"Guidance": "Exclude", "Notes": "broken disk"})
		done := testcluster.WaitTask(t, api, task, 60*time.Second, "Success", "Failed")
		log, _ := testcluster.TaskLog(ctx, api, task)
		if done.State != "Success" || strings.Contains(log, "after web-2") || !strings.Contains(log, "after web-3") {
			t.Fatalf("after Exclude the deployment ended %s:\n%s", done.State, log)
		}
		for machine, want := range map[string]string{"web-1": "Roll Verify", "web-2": "Roll", "web-3": "Roll Verify"} {
			if got := strings.Join(ran("exclude", machine), " "); got != want {
				t.Errorf("%s ran the steps %q, want %q", machine, got, want)
			}
		}
		var d cuttle.Deployment
		do(t, api, http.MethodGet, "/api/Spaces-1/deployments/"+deployment, nil, &d)
		if ids := strings.Join(d.DeployedToMachineIds, ","); strings.Count(ids, "Machines-") != 2 {
			t.Errorf("the deployment says it deployed to %s; want two machines", ids)
		}
	})

	t.Run("failing hook stops the rollout", func(t *testing.T) {
		project(t, api, "Stop", rolling("Roll", record("stop"), `echo "the balancer refuses #{Octopus.Machine.Name}"; exit 3`))
		_, task := deployWith(t, api, "Stop", nil)
		done := testcluster.WaitTask(t, api, task, 60*time.Second, "Success", "Failed")
		log, _ := testcluster.TaskLog(ctx, api, task)
		if done.State != "Failed" || !strings.Contains(log, "the balancer refuses") {
			t.Fatalf("the deployment ended %s:\n%s", done.State, log)
		}
		started := 0
		for i := 1; i <= 3; i++ {
			started += len(ran("stop", fmt.Sprintf("web-%d", i)))
		}
		if started != 1 {
			t.Errorf("%d targets started after the first target's hook failed; want only that one", started)
		}
	})
}

// TestParallelStepOverTenAgents: a step without a window runs on ten
// agents at once: every agent's script was running at one moment (each
// started before any ended), so the step takes about the time of one.
func TestParallelStepOverTenAgents(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5)
	api := c.Nodes[0].Client
	for i := 1; i <= 10; i++ {
		testcluster.StartAgent(t, testcluster.AgentConfig{Name: fmt.Sprintf("web-%d", i), Register: c.Nodes[0], AdminKey: c.AdminKey})
	}
	dir := t.TempDir()
	body := fmt.Sprintf(`date +%%s.%%N > %q/#{Octopus.Machine.Name}.start; sleep 3; date +%%s.%%N > %q/#{Octopus.Machine.Name}.end`, dir, dir)
	project(t, api, "Wide", step{"Name": "All", "Properties": map[string]string{"Octopus.Action.TargetRoles": "web"},
		"Actions": []any{script("All", body, false)}})
	_, task := deployWith(t, api, "Wide", nil)
	done := testcluster.WaitTask(t, api, task, 60*time.Second, "Success", "Failed")
	if done.State != "Success" {
		log, _ := testcluster.TaskLog(testcluster.Context(t, 10*time.Second), api, task)
		t.Fatalf("the deployment ended %s:\n%s", done.State, log)
	}
	read := func(name string) float64 {
		b, err := os.ReadFile(filepath.Join(dir, name))
		v, perr := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		if err != nil || perr != nil {
			t.Fatalf("%s: %v %v", name, err, perr)
		}
		return v
	}
	var starts, ends []float64
	for i := 1; i <= 10; i++ {
		starts = append(starts, read(fmt.Sprintf("web-%d.start", i)))
		ends = append(ends, read(fmt.Sprintf("web-%d.end", i)))
	}
	sort.Float64s(starts)
	sort.Float64s(ends)
	t.Logf("ten 3 s scripts: the last started %.2f s after the first; all ran within %.2f s; the task took %v",
		starts[9]-starts[0], ends[9]-starts[0], done.CompletedTime.Sub(*done.StartTime).Round(time.Millisecond))
	if starts[9] >= ends[0] {
		t.Errorf("a script started %.2f s after the first ended: the step did not run its ten targets at once", starts[9]-ends[0])
	}
}

// TestManualInterventionAcrossNodes: node A runs the deployment (the other
// nodes take no tasks); its manual intervention names a responsible team:
// the admin, not a member, is refused (403); a member answers Abort
// through node C, and the deployment ends Failed with the notes in its log.
func TestManualInterventionAcrossNodes(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 0, 0)
	a, nodeC := c.Nodes[0], c.Nodes[2]
	do(t, a.Client, http.MethodPost, "/api/Spaces-1/environments", map[string]any{"Name": "Test"}, nil)
	var alice struct{ Id string }
	do(t, a.Client, http.MethodPost, "/api/users", map[string]any{"Username": "alice", "DisplayName": "Alice", "IsActive": true}, &alice)
	var key struct{ ApiKey string }
	do(t, a.Client, http.MethodPost, "/api/users/"+alice.Id+"/apikeys", map[string]any{"Purpose": "test"}, &key)
	var team struct{ Id string }
	do(t, a.Client, http.MethodPost, "/api/teams", map[string]any{"Name": "Approvers", "MemberUserIds": []string{alice.Id}}, &team)
	var roles []struct{ Id, Name string }
	do(t, a.Client, http.MethodGet, "/api/userroles/all", nil, &roles)
	for _, r := range roles {
		if r.Name == cuttle.RoleProjectDeployer { // InterruptionSubmit
			do(t, a.Client, http.MethodPost, "/api/scopeduserroles", map[string]any{"TeamId": team.Id, "UserRoleId": r.Id}, nil)
		}
	}
	approve := step{"Name": "Approve", "Actions": []any{map[string]any{"Name": "Approve", "ActionType": "Octopus.Manual",
		"Properties": map[string]string{"Octopus.Action.Manual.Instructions": "Check the first server.", "Octopus.Action.Manual.ResponsibleTeamIds": team.Id}}}}
	project(t, a.Client, "Gated", step{"Name": "Before", "Actions": []any{script("Before", "echo before", true)}}, approve,
		step{"Name": "After", "Actions": []any{script("After", "echo after", true)}})
	deployment, task := deployWith(t, a.Client, "Gated", nil)
	in := pending(t, nodeC.Client, deployment, 60*time.Second)

	path := "/api/Spaces-1/interruptions/" + url.PathEscape(in.ID)
	err := nodeC.Client.Do(testcluster.Context(t, 10*time.Second), http.MethodPut, path+"/responsible", nil, nil)
	if e, ok := err.(*client.Error); !ok || e.Status != http.StatusForbidden {
		t.Fatalf("the admin, not in the responsible team, took responsibility: %v; want 403", err)
	}
	asAlice := &client.Client{BaseURL: nodeC.URL, APIKey: key.ApiKey}
	submit(t, asAlice, in, map[string]string{"Result": "Abort", "Notes": "the first server looks wrong"})
	done := testcluster.WaitTask(t, nodeC.Client, task, 60*time.Second, "Success", "Failed")
	log, _ := testcluster.TaskLog(testcluster.Context(t, 10*time.Second), nodeC.Client, task)
	if done.State != "Failed" || done.ServerNode != a.Config.Name || !strings.Contains(log, "alice aborted the deployment. the first server looks wrong") ||
		strings.Contains(log, "echo after") || strings.Contains(log, "] after") {
		t.Fatalf("after Abort through %s the deployment ended %s on %s:\n%s", nodeC.Config.Name, done.State, done.ServerNode, log)
	}
}

// TestConnectivityPolicy: a project that excludes unhealthy targets leaves
// out a machine its last health check found Unavailable; a project that
// skips unavailable targets also leaves out, and goes on without, an agent
// that stopped since its last check (it does not take its command within
// the node's pickup timeout). Both deployments succeed on the others.
func TestConnectivityPolicy(t *testing.T) {
	t.Parallel()
	c := testcluster.NewCluster(t, testcluster.SharedPostgres(t).NewDatabase(t))
	node := c.StartNode("node-a", "--agent-pickup-timeout", "3s")
	api := node.Client
	agents := map[string]*testcluster.Agent{}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("web-%d", i)
		agents[name] = testcluster.StartAgent(t, testcluster.AgentConfig{Name: name, Register: node, AdminKey: c.AdminKey})
	}
	dir := t.TempDir()
	ctx := testcluster.Context(t, 2*time.Minute)
	// web-2 stops, and a health check finds it Unavailable.
	agents["web-2"].Kill()
	check, err := api.CreateTask(ctx, "Health", map[string]any{"MachineIds": []string{agents["web-2"].MachineID}, "TimeoutSeconds": 2})
	if err != nil {
		t.Fatal(err)
	}
	testcluster.WaitTask(t, api, check.Id, 30*time.Second, "Success", "Failed")
	// web-3 stops after it; its record still says it is healthy.
	agents["web-3"].Kill()

	for _, policy := range []map[string]any{
		{"ExcludeUnhealthyTargets": true},
		{"SkipMachineBehavior": "SkipUnavailableMachines", "TargetRoles": []string{"web"}},
	} {
		name := "Excluding"
		if policy["SkipMachineBehavior"] != nil {
			name = "Skipping"
		}
		var p struct{ Id string }
		do(t, api, http.MethodPost, "/api/Spaces-1/projects", map[string]any{"Name": name, "LifecycleId": "Lifecycles-1",
			"ProjectGroupId": "ProjectGroups-1", "ProjectConnectivityPolicy": policy}, &p)
		body := fmt.Sprintf(`echo "#{Octopus.Project.Name}" >> %q/#{Octopus.Machine.Name}`, dir)
		do(t, api, http.MethodPut, "/api/Spaces-1/projects/"+p.Id+"/deploymentprocesses", map[string]any{"Steps": []step{
			{"Name": "Deploy", "Properties": map[string]string{"Octopus.Action.TargetRoles": "web"}, "Actions": []any{script("Deploy", body, false)}}}}, nil)
		do(t, api, http.MethodPost, "/api/Spaces-1/releases/create/v1", map[string]any{"spaceId": "Spaces-1", "projectName": name, "releaseVersion": "1.0.0"}, nil)
		_, task := deployWith(t, api, name, nil)
		done := testcluster.WaitTask(t, api, task, 60*time.Second, "Success", "Failed")
		log, _ := testcluster.TaskLog(ctx, api, task)
		wantLog := []string{"web-2 is Unavailable at its last health check"}
		if name == "Skipping" {
			wantLog = append(wantLog, "web-3 is unavailable", "the project skips unavailable targets")
		}
		for _, want := range wantLog {
			if !strings.Contains(log, want) {
				t.Errorf("%s: the log lacks %q", name, want)
			}
		}
		if done.State != "Success" && name == "Skipping" {
			t.Fatalf("%s: the deployment ended %s:\n%s", name, done.State, log)
		}
		if name == "Excluding" && done.State != "Failed" {
			// web-3 still looks healthy: without skipping, its silence fails the deployment.
			t.Errorf("%s: the deployment ended %s, want Failed on web-3:\n%s", name, done.State, log)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "web-1")); !strings.Contains(string(b), name) {
			t.Errorf("%s: web-1 did not deploy", name)
		}
	}
}

// TestDeploymentCancelOnAnotherNode: a deployment that node A runs (node B
// takes no tasks) is cancelled through node B while a script runs on each
// of two agents: it ends Canceled, both agents' scripts are stopped (their
// processes gone, their last line never printed), and the step after it
// does not run. The same when node A was SIGKILLed before the cancel: the
// task ends without an owner, and so do its commands. (The scripts' lines
// are quoted so that their texts are not in their bodies.)
func TestDeploymentCancelOnAnotherNode(t *testing.T) {
	t.Parallel()
	for _, killed := range []bool{false, true} {
		t.Run(map[bool]string{false: "running", true: "its node killed"}[killed], func(t *testing.T) {
			t.Parallel()
			cancelDeployment(t, killed)
		})
	}
}

func cancelDeployment(t *testing.T, killOwner bool) {
	c := testcluster.StartFastCluster(t, nil, 5, 0)
	a, b := c.Nodes[0], c.Nodes[1]
	for i := 1; i <= 2; i++ {
		testcluster.StartAgent(t, testcluster.AgentConfig{Name: fmt.Sprintf("web-%d", i), Register: a, AdminKey: c.AdminKey, Poll: pollAddrs(c)})
	}
	dir := t.TempDir()
	long := fmt.Sprintf(`echo $$ > %[1]q/#{Octopus.Machine.Name}.shell; sleep 300 & echo $! > %[1]q/#{Octopus.Machine.Name}.child; wait; echo fin""ished`, dir)
	project(t, a.Client, "Long", step{"Name": "Long", "Properties": map[string]string{"Octopus.Action.TargetRoles": "web"},
		"Actions": []any{script("Long", long, false)}}, step{"Name": "Later", "Actions": []any{script("Later", `echo later" step ran"`, true)}})
	_, task := deployWith(t, b.Client, "Long", nil)
	var pids []int
	testcluster.Eventually(t, 60*time.Second, func() error {
		pids = pids[:0]
		for i := 1; i <= 2; i++ {
			for _, what := range []string{"shell", "child"} {
				data, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("web-%d.%s", i, what)))
				pid, perr := strconv.Atoi(strings.TrimSpace(string(data)))
				if err != nil || perr != nil {
					return fmt.Errorf("web-%d's script has not started: %v %v", i, err, perr)
				}
				pids = append(pids, pid)
			}
		}
		return nil
	})
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if killOwner {
		a.Kill()
	}
	if _, err := b.Client.CancelTask(testcluster.Context(t, 10*time.Second), task); err != nil {
		t.Fatal(err)
	}
	done := testcluster.WaitTask(t, b.Client, task, 30*time.Second, "Canceled", "Success", "Failed")
	log, _ := testcluster.TaskLog(testcluster.Context(t, 10*time.Second), b.Client, task)
	if done.State != "Canceled" || strings.Contains(log, "finished") || strings.Contains(log, "later step ran") {
		t.Fatalf("cancelled through %s, the deployment ended %s on %s:\n%s", b.Config.Name, done.State, done.ServerNode, log)
	}
	testcluster.Eventually(t, 15*time.Second, func() error {
		for _, pid := range pids {
			if testcluster.ProcessAlive(pid) {
				return fmt.Errorf("process %d of an agent's script is alive after the cancel", pid)
			}
		}
		return nil
	})
}
