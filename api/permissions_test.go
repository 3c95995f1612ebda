package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// roleUser creates a user whose one team has the role, limited as scoped
// is (nil: unlimited), and returns an API key of theirs.
func roleUser(t *testing.T, e *env, username, role string, scoped *cuttle.ScopedUserRole) string {
	t.Helper()
	ctx := context.Background()
	key := cuttle.NewAPIKey()
	if err := e.store.Update(ctx, func(tx *collection.Tx) error {
		u := cuttle.User{Username: username, IsActive: true}
		if err := resources.CreateUser(ctx, tx, &u, false); err != nil {
			return err
		}
		roles, _, err := resources.UserRoles.List(ctx, tx, collection.Query{Name: role, Take: 1})
		if err != nil || len(roles) != 1 {
			return fmt.Errorf("the role %s: %v %v", role, roles, err)
		}
		team := cuttle.Team{Name: username + "'s team", MemberUserIds: []string{u.ID}, CanBeDeleted: true, CanChangeMembers: true}
		if err := resources.Teams.Insert(ctx, tx, &team); err != nil {
			return err
		}
		if scoped == nil {
			scoped = &cuttle.ScopedUserRole{}
		}
		scoped.TeamId, scoped.UserRoleId = team.ID, roles[0].ID
		if err := resources.ScopedUserRoles.Insert(ctx, tx, scoped); err != nil {
			return err
		}
		_, err = resources.AddAPIKey(ctx, tx, e.masterKey, u.ID, "test", key)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return key
}

// ids returns the Id of each item of a list answer (a page or an array).
func ids(t *testing.T, body []byte) []string {
	t.Helper()
	var page struct{ Items []struct{ Id string } }
	var all []struct{ Id string }
	if err := json.Unmarshal(body, &page); err != nil {
		if err := json.Unmarshal(body, &all); err != nil {
			t.Fatalf("not a list: %s", body)
		}
		page.Items = all
	}
	out := []string{}
	for _, it := range page.Items {
		out = append(out, it.Id)
	}
	slices.Sort(out)
	return out
}

// TestPermissionsPerRole: a user of each built-in role, and a project
// deployer limited to one project and one environment, call every route
// family: what their role allows succeeds, the rest answers 403 naming the
// permission, and lists hold only what they may view.
func TestPermissionsPerRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shop, test, production := deployableProject(t, e)
	other := newProjectOn(t, e, "Other")
	deployTo := func(project, env string) string {
		return `{"spaceId": "Spaces-1", "projectName": "` + project + `", "releaseVersion": "1.0.0", "environmentNames": ["` + env + `"]}`
	}
	var status int
	var body []byte
	tasksOf, shopDeployment := map[string]string{}, ""
	for name, id := range map[string]string{"Shop": shop, "Other": other} {
		if status, body = e.do("POST", "/api/Spaces-1/releases", e.adminKey, `{"ProjectId": "`+id+`", "Version": "1.0.0"}`); status != http.StatusCreated {
			t.Fatalf("release: %d %s", status, body)
		}
		if status, body = e.do("POST", "/api/Spaces-1/deployments/create/untenanted/v1", e.adminKey, deployTo(name, "Test")); status != http.StatusOK {
			t.Fatalf("deploying %s: %d %s", name, status, body)
		}
		var out struct {
			DeploymentServerTasks []struct{ DeploymentId, ServerTaskId string }
		}
		if err := json.Unmarshal(body, &out); err != nil || len(out.DeploymentServerTasks) != 1 {
			t.Fatalf("deploying %s: %s", name, body)
		}
		tasksOf[name] = out.DeploymentServerTasks[0].ServerTaskId
		if name == "Shop" {
			shopDeployment = out.DeploymentServerTasks[0].DeploymentId
		}
	}
	otherTask := tasksOf["Other"]

	keys := map[string]string{}
	for _, role := range []string{cuttle.RoleSystemAdministrator, cuttle.RoleSystemManager, cuttle.RoleProjectDeployer, cuttle.RoleProjectContributor,
		cuttle.RoleProjectViewer, cuttle.RoleEnvironmentManager, cuttle.RolePackagePublisher, cuttle.RoleCertificateManager} {
		keys[role] = roleUser(t, e, strings.ReplaceAll(strings.ToLower(role), " ", "-"), role, nil)
	}
	scoped := roleUser(t, e, "shop-tester", cuttle.RoleProjectDeployer, &cuttle.ScopedUserRole{ProjectIds: []string{shop}, EnvironmentIds: []string{test}})
	process := func(project string) string {
		_, b := e.do("GET", "/api/Spaces-1/projects/"+project+"/deploymentprocesses", e.adminKey, "")
		return string(b)
	}

	type call struct {
		who, method, path, body string
		want                    int
		perm                    string // the permission a 403 names
	}
	// Lists keep what the caller may view.
	lists := []struct {
		who, path string
		want      []string
	}{
		{"scoped", "/api/Spaces-1/projects/all", []string{shop}},
		{"scoped", "/api/Spaces-1/environments/all", []string{test}},
		{cuttle.RoleProjectViewer, "/api/Spaces-1/projects/all", sorted(shop, other)},
		{cuttle.RoleProjectViewer, "/api/Spaces-1/environments", sorted(test, production)},
	}
	for _, l := range lists {
		key := keys[l.who]
		if l.who == "scoped" {
			key = scoped
		}
		status, body := e.do("GET", l.path, key, "")
		if got := ids(t, body); status != http.StatusOK || !slices.Equal(got, l.want) {
			t.Errorf("%s: GET %s: %d %v, want %v", l.who, l.path, status, got, l.want)
		}
	}
	_, cluster := e.do("GET", "/api/cluster", e.adminKey, "")
	// The calls that deploy come first: environments made later join the
	// default lifecycle's phases.
	calls := []call{
		// A project deployer of Shop in Test: there, and nowhere else.
		{"scoped", "GET", "/api/Spaces-1/projects/" + other, "", 403, "ProjectView"},
		{"scoped", "GET", "/api/tasks/" + otherTask, "", 403, "TaskView"},
		{"scoped", "POST", "/api/Spaces-1/deployments/create/untenanted/v1", deployTo("Shop", "Production"), 403, "DeploymentCreate"},
		{"scoped", "PUT", "/api/Spaces-1/projects/" + other + "/deploymentprocesses", process(other), 403, "ProcessEdit"},
		{"scoped", "POST", "/api/Spaces-1/deployments/create/untenanted/v1", deployTo("Shop", "Test"), 200, ""},
		// System administrator: anything.
		{cuttle.RoleSystemAdministrator, "POST", "/api/Spaces-1/environments", `{"Name": "Made by an administrator"}`, 201, ""},
		{cuttle.RoleSystemAdministrator, "GET", "/api/events", "", 200, ""},
		{cuttle.RoleSystemAdministrator, "PUT", "/api/cluster", string(cluster), 200, ""},
		// System manager: the system, no projects.
		{cuttle.RoleSystemManager, "POST", "/api/teams", `{"Name": "Made by a manager"}`, 201, ""},
		{cuttle.RoleSystemManager, "GET", "/api/events", "", 200, ""},
		{cuttle.RoleSystemManager, "GET", "/api/Spaces-1/projects/all", "", 403, "ProjectView"},
		{cuttle.RoleSystemManager, "POST", "/api/userroles", `{"Name": "Custom", "GrantedSpacePermissions": ["ProjectView"]}`, 201, ""},
		// Project contributor: edits and releases, no deployments.
		{cuttle.RoleProjectContributor, "PUT", "/api/Spaces-1/projects/" + shop + "/deploymentprocesses", process(shop), 200, ""},
		{cuttle.RoleProjectContributor, "POST", "/api/Spaces-1/releases", `{"ProjectId": "` + shop + `", "Version": "1.0.1"}`, 201, ""},
		{cuttle.RoleProjectContributor, "POST", "/api/Spaces-1/deployments/create/untenanted/v1", deployTo("Shop", "Test"), 403, "DeploymentCreate"},
		{cuttle.RoleProjectContributor, "POST", "/api/Spaces-1/projects", `{"Name": "New"}`, 403, "ProjectCreate"},
		// Project viewer: reads.
		{cuttle.RoleProjectViewer, "GET", "/api/Spaces-1/projects/" + other, "", 200, ""},
		{cuttle.RoleProjectViewer, "GET", "/api/tasks/" + otherTask, "", 200, ""},
		{cuttle.RoleProjectViewer, "PUT", "/api/Spaces-1/projects/" + shop + "/deploymentprocesses", process(shop), 403, "ProcessEdit"},
		{cuttle.RoleProjectViewer, "POST", "/api/tasks/" + otherTask + "/cancel", "", 403, "TaskCancel"},
		{cuttle.RoleProjectViewer, "GET", "/api/events", "", 403, "EventView"},
		{cuttle.RoleProjectViewer, "PUT", "/api/cluster", string(cluster), 403, "ConfigureServer"},
		{cuttle.RoleProjectViewer, "POST", "/api/users", `{"Username": "nobody"}`, 403, "UserEdit"},
		{cuttle.RoleProjectViewer, "DELETE", "/api/Spaces-1/environments/" + test, "", 403, "EnvironmentDelete"},
		// Environment manager: environments and targets.
		{cuttle.RoleEnvironmentManager, "POST", "/api/Spaces-1/environments", `{"Name": "Made by a manager"}`, 201, ""},
		{cuttle.RoleEnvironmentManager, "GET", "/api/Spaces-1/machines", "", 200, ""},
		{cuttle.RoleEnvironmentManager, "POST", "/api/Spaces-1/lifecycles", `{"Name": "L"}`, 403, "LifecycleCreate"},
		// Package publisher: the feed.
		{cuttle.RolePackagePublisher, "GET", "/api/Spaces-1/feeds", "", 200, ""},
		{cuttle.RolePackagePublisher, "GET", "/api/Spaces-1/packages", "", 200, ""},
		{cuttle.RolePackagePublisher, "DELETE", "/api/Spaces-1/packages/packages-x.1.0.0", "", 403, "BuiltInFeedAdminister"},
		{cuttle.RolePackagePublisher, "GET", "/api/Spaces-1/projects/all", "", 403, "ProjectView"},
		// Certificate manager: environments to view, no projects.
		{cuttle.RoleCertificateManager, "GET", "/api/Spaces-1/environments/" + test, "", 200, ""},
		{cuttle.RoleCertificateManager, "GET", "/api/Spaces-1/projects/" + shop, "", 403, "ProjectView"},
	}
	for _, c := range calls {
		key := keys[c.who]
		if c.who == "scoped" {
			key = scoped
		}
		status, body := e.do(c.method, c.path, key, c.body)
		what := fmt.Sprintf("%s: %s %s", c.who, c.method, c.path)
		if c.want == http.StatusForbidden {
			wantError(t, what, status, body, http.StatusForbidden)
			if !strings.Contains(string(body), "the "+c.perm+" permission") {
				t.Errorf("%s: the refusal does not name %s: %s", what, c.perm, body)
			}
			continue
		}
		if status != c.want {
			t.Errorf("%s: %d %s, want %d", what, status, body, c.want)
		}
	}

	// The scoped deployer's tasks and deployments are those of Shop in Test.
	status, body = e.do("GET", "/api/tasks?take=100", scoped, "")
	var tasks struct {
		TotalResults int
		Items        []struct{ Id, Description string }
	}
	if err := json.Unmarshal(body, &tasks); err != nil || status != http.StatusOK {
		t.Fatalf("the scoped deployer's tasks: %d %s", status, body)
	}
	var deploys []string
	for _, tk := range tasks.Items {
		if strings.HasPrefix(tk.Description, "Deploy ") {
			deploys = append(deploys, tk.Description)
		}
	}
	if len(deploys) != 2 || deploys[0] != "Deploy Shop release 1.0.0 to Test" || deploys[1] != deploys[0] {
		t.Errorf("the scoped deployer's deployment tasks: %v; want the two of Shop in Test (system tasks, in no project, are listed too)", deploys)
	}
	status, body = e.do("GET", "/api/Spaces-1/deployments?take=100", scoped, "")
	var deployments struct {
		Items []struct{ EnvironmentId string }
	}
	json.Unmarshal(body, &deployments)
	if status != http.StatusOK || len(deployments.Items) != 2 || deployments.Items[0].EnvironmentId != test || deployments.Items[1].EnvironmentId != test {
		t.Errorf("the scoped deployer's deployments: %d %s", status, body)
	}
	// The dashboard shows the scoped deployer Shop in Test alone.
	status, body = e.do("GET", "/api/Spaces-1/dashboard", scoped, "")
	var dash struct {
		Projects, Environments []struct{ Id string }
		Items                  []struct{ ProjectId, EnvironmentId string }
	}
	if err := json.Unmarshal(body, &dash); err != nil || status != http.StatusOK {
		t.Fatalf("the scoped deployer's dashboard: %d %s", status, body)
	}
	if len(dash.Projects) != 1 || dash.Projects[0].Id != shop || len(dash.Environments) != 1 || dash.Environments[0].Id != test ||
		len(dash.Items) != 1 || dash.Items[0].ProjectId != shop || dash.Items[0].EnvironmentId != test {
		t.Errorf("the scoped deployer's dashboard: %s; want Shop in Test alone", body)
	}
	status, body = e.do("GET", "/api/Spaces-1/dashboard", keys[cuttle.RoleProjectViewer], "")
	if err := json.Unmarshal(body, &dash); err != nil || status != http.StatusOK || len(dash.Projects) != 2 || len(dash.Items) != 2 {
		t.Errorf("a project viewer's dashboard: %d %s; want both projects and both deployments", status, body)
	}
	// Users without UserView see themselves alone.
	status, body = e.do("GET", "/api/users/all", keys[cuttle.RoleProjectViewer], "")
	if got := ids(t, body); status != http.StatusOK || len(got) != 1 {
		t.Errorf("a project viewer's users: %d %s; want themselves", status, body)
	}
	// Answering the manual intervention of Shop in Test needs
	// InterruptionSubmit there.
	pending := waitPending(t, e, shopDeployment, tasksOf["Shop"])
	responsible := "/api/Spaces-1/interruptions/" + pending["Id"].(string) + "/responsible"
	status, body = e.do("PUT", responsible, keys[cuttle.RoleProjectViewer], "")
	if wantError(t, "a project viewer taking responsibility", status, body, http.StatusForbidden); !strings.Contains(string(body), "InterruptionSubmit") {
		t.Errorf("the refusal does not name InterruptionSubmit: %s", body)
	}
	if status, body = e.do("PUT", responsible, scoped, ""); status != http.StatusOK {
		t.Errorf("the scoped deployer taking responsibility: %d %s", status, body)
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// TestLinkedListsAnswer: the lists that resources link to answer: a
// release's deployments and a team's scoped user roles (all).
func TestLinkedListsAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shop, _, _ := deployableProject(t, e)
	status, body := e.do("POST", "/api/Spaces-1/releases", e.adminKey, `{"ProjectId": "`+shop+`", "Version": "1.0.0"}`)
	if status != http.StatusCreated {
		t.Fatalf("release: %d %s", status, body)
	}
	var rel struct{ Links map[string]string }
	if err := json.Unmarshal(body, &rel); err != nil {
		t.Fatal(err)
	}
	deployment, _ := deploy(t, e, "1.0.0", "Test")
	status, body = e.do("GET", strings.TrimSuffix(rel.Links["Deployments"], "{?skip,take}"), e.adminKey, "")
	if got := ids(t, body); status != http.StatusOK || !slices.Equal(got, []string{deployment}) {
		t.Errorf("the release's deployments: %d %s; want %s", status, body, deployment)
	}
	status, body = e.do("GET", "/api/teams?name="+strings.ReplaceAll(cuttle.AdministratorsTeam, " ", "%20"), e.adminKey, "")
	admins := ids(t, body)
	if status != http.StatusOK || len(admins) != 1 {
		t.Fatalf("the administrators: %d %s", status, body)
	}
	status, body = e.do("GET", "/api/teams/"+admins[0]+"/scopeduserroles/all", e.adminKey, "")
	if got := ids(t, body); status != http.StatusOK || len(got) != 1 || !strings.HasPrefix(got[0], "ScopedUserRoles-") {
		t.Errorf("the administrators' scoped user roles, all: %d %s", status, body)
	}
}
