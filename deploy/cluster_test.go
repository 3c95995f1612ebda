package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/client"
	"github.com/cuttledeploy/cuttle/testcluster"
)

func TestMain(m *testing.M) { os.Exit(testcluster.RunWithPostgres(m)) }

// pollAddrs returns every node's polling address.
func pollAddrs(c *testcluster.Cluster) []string {
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(n.PollingPort))
	}
	return addrs
}

// do calls the API and fails the test on an error.
func do(t *testing.T, cl *client.Client, method, path string, in, out any) {
	t.Helper()
	if err := cl.Do(testcluster.Context(t, 10*time.Second), method, path, in, out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

// step is a deployment step in the API's shape.
type step = map[string]any

// script is an action that runs a Bash script, on the server if server.
func script(name, body string, server bool) map[string]any {
	props := map[string]string{"Octopus.Action.Script.Syntax": "Bash", "Octopus.Action.Script.ScriptBody": body}
	if server {
		props["Octopus.Action.RunOnServer"] = "True"
	}
	return map[string]any{"Name": name, "ActionType": "Octopus.Script", "Properties": props}
}

// project creates a project with the steps as its process, and its
// release 1.0.0; it returns the project's id.
func project(t *testing.T, cl *client.Client, name string, steps ...step) string {
	t.Helper()
	return projectWith(t, cl, name, nil, steps...)
}

// projectWith creates a project with variables and the steps as its
// process, and its release 1.0.0; it returns the project's id.
func projectWith(t *testing.T, cl *client.Client, name string, vars []map[string]any, steps ...step) string {
	t.Helper()
	var p struct{ Id string }
	do(t, cl, http.MethodPost, "/api/Spaces-1/projects", map[string]any{"Name": name, "LifecycleId": "Lifecycles-1", "ProjectGroupId": "ProjectGroups-1"}, &p)
	if len(vars) > 0 {
		do(t, cl, http.MethodPut, "/api/Spaces-1/projects/"+p.Id+"/variables", map[string]any{"Variables": vars}, nil)
	}
	do(t, cl, http.MethodPut, "/api/Spaces-1/projects/"+p.Id+"/deploymentprocesses", map[string]any{"Steps": steps}, nil)
	do(t, cl, http.MethodPost, "/api/Spaces-1/releases/create/v1", map[string]any{"spaceId": "Spaces-1", "projectName": name, "releaseVersion": "1.0.0"}, nil)
	return p.Id
}

// deploy deploys release 1.0.0 of the project to Test and returns the
// deployment's and its task's ids.
func deploy(t *testing.T, cl *client.Client, project string) (deployment, task string) {
	t.Helper()
	var out struct {
		DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
	}
	do(t, cl, http.MethodPost, "/api/Spaces-1/deployments/create/untenanted/v1",
		map[string]any{"spaceId": "Spaces-1", "projectName": project, "releaseVersion": "1.0.0", "environmentNames": []string{"Test"}}, &out)
	if len(out.DeploymentServerTasks) != 1 {
		t.Fatalf("create/untenanted/v1 answered %v", out)
	}
	return out.DeploymentServerTasks[0].DeploymentId, out.DeploymentServerTasks[0].ServerTaskId
}

// pending waits until the deployment waits on one interruption, and
// returns it.
func pending(t *testing.T, cl *client.Client, deployment string, within time.Duration) cuttle.Interruption {
	t.Helper()
	var in cuttle.Interruption
	testcluster.Eventually(t, within, func() error {
		var page struct{ Items []cuttle.Interruption }
		if err := cl.Do(context.Background(), http.MethodGet, "/api/Spaces-1/interruptions?pendingOnly=true&regarding="+deployment, nil, &page); err != nil {
			return err
		}
		if len(page.Items) != 1 {
			return fmt.Errorf("%d interruptions pending", len(page.Items))
		}
		in = page.Items[0]
		return nil
	})
	return in
}

// otherThan returns a node of the cluster not named any of names.
func otherThan(c *testcluster.Cluster, names ...string) *testcluster.Node {
	for _, n := range c.Nodes {
		found := false
		for _, name := range names {
			found = found || n.Config.Name == name
		}
		if !found {
			return n
		}
	}
	return nil
}

// tickRE reads a target's lines of the rolling step: "[Roll / web-N] tick K".
var tickRE = regexp.MustCompile(`\[Roll / (web-\d)\] tick (\d+)`)

// TestDeploymentSurvivesItsNodes: a rolling deployment (window 1) over
// three agents, with a script on the server after each target that reads
// the output variable its agent's script set. The node running it is
// SIGKILLed in the middle of the second target's script: another node
// takes it over, follows the command in flight instead of sending it
// again, and goes on. The deployment then waits on a manual intervention;
// the node that parked it is SIGKILLed too, and the answer, through the
// third node, resumes it there to Success. Each agent's script ran once
// (the agents' own record), and the log has every tick of every target
// once, in order (DESIGN.md invariants 2, 6, 11).
func TestDeploymentSurvivesItsNodes(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 5, 5)
	api := c.Nodes[0].Client
	runs := t.TempDir()
	for i := 1; i <= 3; i++ {
		testcluster.StartAgent(t, testcluster.AgentConfig{Name: fmt.Sprintf("web-%d", i), Register: c.Nodes[0], AdminKey: c.AdminKey, Poll: pollAddrs(c)})
	}
	const ticks = 8
	agentScript := fmt.Sprintf(`echo run >> %q/#{Octopus.Machine.Name}
set_octopusvariable Version "v2 on #{Octopus.Machine.Name}"
for i in $(seq 1 %d); do echo "tick $i"; sleep 0.25; done`, runs, ticks)
	roll := step{"Name": "Roll", "Properties": map[string]string{"Octopus.Action.TargetRoles": "web", "Octopus.Action.MaxParallelism": "1"},
		"Actions": []any{
			script("Deploy", agentScript, false),
			script("Check", `echo "checked #{Octopus.Machine.Name}: #{Octopus.Action[Deploy].Output.Version}"`, true),
		}}
	approve := step{"Name": "Approve", "Actions": []any{map[string]any{"Name": "Approve", "ActionType": "Octopus.Manual",
		"Properties": map[string]string{"Octopus.Action.Manual.Instructions": "Look at it."}}}}
	finish := step{"Name": "Finish", "Actions": []any{script("Finish", "echo finished", true)}}
	project(t, api, "Shop", roll, approve, finish)
	deployment, task := deploy(t, api, "Shop")
	ctx := testcluster.Context(t, 3*time.Minute)

	testcluster.Eventually(t, 60*time.Second, func() error {
		log, err := testcluster.TaskLog(ctx, api, task)
		if err != nil || !strings.Contains(log, "[Roll / web-2] tick 3") {
			return fmt.Errorf("the second target's script has not reached tick 3 (%v)", err)
		}
		return nil
	})
	first := testcluster.WaitTask(t, api, task, time.Second, "Executing").ServerNode
	c.Node(first).Kill()
	killed := time.Now()
	takeover := otherThan(c, first)
	in := pending(t, takeover.Client, deployment, 60*time.Second)
	t.Logf("killed %s in the middle of web-2's script; the deployment reached the manual intervention %v later", first, time.Since(killed))

	// The deployment waits, owned by no node; kill the node that parked it.
	log, _ := testcluster.TaskLog(ctx, takeover.Client, task)
	second := ""
	for _, n := range c.Nodes {
		if n.Config.Name != first && strings.Contains(log, "Resuming the deployment of Shop release 1.0.0 to Test on node "+n.Config.Name) {
			second = n.Config.Name
		}
	}
	if second == "" {
		t.Fatalf("no node resumed the deployment after %s died:\n%s", first, log)
	}
	c.Node(second).Kill()
	last := otherThan(c, first, second)
	id := url.PathEscape(in.ID)
	do(t, last.Client, http.MethodPut, "/api/Spaces-1/interruptions/"+id+"/responsible", nil, nil)
	do(t, last.Client, http.MethodPost, "/api/Spaces-1/interruptions/"+id+"/submit", map[string]string{"Result": "Proceed", "Notes": "fine"}, nil)
	done := testcluster.WaitTask(t, last.Client, task, 60*time.Second, "Success", "Failed", "Canceled", "TimedOut")
	log, _ = testcluster.TaskLog(ctx, last.Client, task)
	if done.State != "Success" || done.ServerNode != last.Config.Name {
		t.Fatalf("the deployment ended %s on %s (%s), want Success on %s:\n%s", done.State, done.ServerNode, done.ErrorMessage, last.Config.Name, log)
	}

	seen := map[string][]int{}
	for _, m := range tickRE.FindAllStringSubmatch(log, -1) {
		k, _ := strconv.Atoi(m[2])
		seen[m[1]] = append(seen[m[1]], k)
	}
	for i := 1; i <= 3; i++ {
		machine := fmt.Sprintf("web-%d", i)
		if b, _ := os.ReadFile(filepath.Join(runs, machine)); strings.Count(string(b), "run") != 1 {
			t.Errorf("the script ran %d times on %s, want once", strings.Count(string(b), "run"), machine)
		}
		got := seen[machine]
		ok := len(got) == ticks
		for k := range got {
			ok = ok && got[k] == k+1
		}
		if !ok {
			t.Errorf("the log's ticks of %s: %v; want 1 to %d once each, in order", machine, got, ticks)
		}
		if want := fmt.Sprintf("checked %s: v2 on %s", machine, machine); !strings.Contains(log, want) {
			t.Errorf("the log lacks %q: the server's script after the target did not see its output variable", want)
		}
	}
	for _, want := range []string{"Approve: admin proceeded. fine", "finished", "Deployed Shop release 1.0.0 to Test."} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("the deployment's log:\n%s", log)
	}
	var d cuttle.Deployment
	do(t, last.Client, http.MethodGet, "/api/Spaces-1/deployments/"+deployment, nil, &d)
	if len(d.DeployedToMachineIds) != 3 {
		raw, _ := json.Marshal(d)
		t.Errorf("the deployment says it deployed to %v; want the three agents: %s", d.DeployedToMachineIds, raw)
	}
}

// TestServerActionRunsAgain: a script on the server, running when its node
// is SIGKILLed, cannot be shown to have finished: the node that takes the
// deployment over runs it again, and the log says so.
func TestServerActionRunsAgain(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 5)
	api := c.Nodes[0].Client
	do(t, api, http.MethodPost, "/api/Spaces-1/environments", map[string]any{"Name": "Test"}, nil)
	runs := filepath.Join(t.TempDir(), "runs")
	body := fmt.Sprintf(`echo "run on #{Octopus.Machine.Name}" >> %q; for i in $(seq 1 8); do echo "tick $i"; sleep 0.25; done`, runs)
	project(t, api, "Hooks", step{"Name": "Hook", "Actions": []any{script("Hook", body, true)}})
	_, task := deploy(t, api, "Hooks")
	ctx := testcluster.Context(t, 2*time.Minute)
	testcluster.Eventually(t, 30*time.Second, func() error {
		log, err := testcluster.TaskLog(ctx, api, task)
		if err != nil || !strings.Contains(log, "tick 2") {
			return fmt.Errorf("the hook has not reached tick 2 (%v)", err)
		}
		return nil
	})
	first := testcluster.WaitTask(t, api, task, time.Second, "Executing").ServerNode
	c.Node(first).Kill()
	other := otherThan(c, first)
	done := testcluster.WaitTask(t, other.Client, task, 30*time.Second, "Success", "Failed", "Canceled", "TimedOut")
	log, _ := testcluster.TaskLog(ctx, other.Client, task)
	if done.State != "Success" || done.ServerNode != other.Config.Name {
		t.Fatalf("the deployment ended %s on %s, want Success on %s:\n%s", done.State, done.ServerNode, other.Config.Name, log)
	}
	if want := "Hook was running on node " + first + ", which stopped before it finished: it runs again."; !strings.Contains(log, want) {
		t.Errorf("the log lacks %q:\n%s", want, log)
	}
	if b, _ := os.ReadFile(runs); strings.Count(string(b), "run on") != 2 {
		t.Errorf("the hook ran %d times, want twice (once on each node):\n%s", strings.Count(string(b), "run on"), b)
	}
}

// TestGuidedFailureAskedAgainAfterItsNodeDied: under guided failure, an
// action fails on web-1 while a step started with it goes on on web-2 and
// writes checkpoints; the node dies before the deployment parks (before
// the question is created). The next node does not find a wait without its
// question: it follows web-1's command again (it ran once), finds it
// failed, and asks; Ignore, and the deployment ends Success (DESIGN.md
// invariant 11).
func TestGuidedFailureAskedAgainAfterItsNodeDied(t *testing.T) {
	t.Parallel()
	c := testcluster.StartFastCluster(t, nil, 5, 5)
	api := c.Nodes[0].Client
	testcluster.StartAgent(t, testcluster.AgentConfig{Name: "web-1", Register: c.Nodes[0], AdminKey: c.AdminKey, Poll: pollAddrs(c)})
	testcluster.StartAgent(t, testcluster.AgentConfig{Name: "app-1", Register: c.Nodes[0], AdminKey: c.AdminKey, Poll: pollAddrs(c), Roles: []string{"app"}})
	dir := t.TempDir()
	fails := fmt.Sprintf(`echo ran >> %q/web-1; echo "web-1 fa""ils"; exit 4`, dir)
	step1 := step{"Name": "Web", "Properties": map[string]string{"Octopus.Action.TargetRoles": "web"}, "Actions": []any{script("Web", fails, false)}}
	step2 := step{"Name": "App", "StartTrigger": "StartWithPrevious", "Properties": map[string]string{"Octopus.Action.TargetRoles": "app"},
		"Actions": []any{script("App short", "sleep 1", false), script("App long", fmt.Sprintf(`echo started > %q/app-long; sleep 6`, dir), false)}}
	project(t, api, "Asked", step1, step2)
	deployment, task := deployWith(t, api, "Asked", map[string]any{"useGuidedFailure": true})
	ctx := testcluster.Context(t, 2*time.Minute)
	// App long has started, so App short's outcome was saved after web-1
	// failed; nothing is asked before App long ends.
	testcluster.Eventually(t, 30*time.Second, func() error {
		log, err := testcluster.TaskLog(ctx, api, task)
		if _, serr := os.Stat(filepath.Join(dir, "app-long")); err != nil || serr != nil || !strings.Contains(log, "web-1 fails") {
			return fmt.Errorf("web-1 has not failed or App long has not started (%v, %v)", err, serr)
		}
		return nil
	})
	var page struct{ Items []cuttle.Interruption }
	do(t, api, http.MethodGet, "/api/Spaces-1/interruptions?regarding="+deployment, nil, &page)
	if len(page.Items) != 0 {
		t.Fatalf("the deployment asked before App long ended: %+v", page.Items)
	}
	first := testcluster.WaitTask(t, api, task, time.Second, "Executing").ServerNode
	c.Node(first).Kill()
	other := otherThan(c, first)
	in := pending(t, other.Client, deployment, 45*time.Second)
	if in.Type != cuttle.InterruptionGuidedFailure || !strings.Contains(in.Title, "web-1") {
		t.Fatalf("the interruption: %+v; want a guided failure of web-1", in)
	}
	submit(t, other.Client, in, map[string]string{"Guidance": "Ignore"})
	done := testcluster.WaitTask(t, other.Client, task, 60*time.Second, "Success", "Failed", "Canceled")
	log, _ := testcluster.TaskLog(ctx, other.Client, task)
	if done.State != "Success" {
		t.Fatalf("after Ignore the deployment ended %s:\n%s", done.State, log)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "web-1")); strings.Count(string(b), "ran") != 1 {
		t.Errorf("web-1's script ran %d times, want once:\n%s", strings.Count(string(b), "ran"), log)
	}
}
