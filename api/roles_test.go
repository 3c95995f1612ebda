package api_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	octoclient "github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/client"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/core"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/teams"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/userroles"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/users"
)

// TestRolesWithTheOfficialClient: the built-in roles are listed and cannot
// be changed; a team is given a role scoped to an environment; the
// user's permissions through the client name the team and the scope; the
// administrators hold System administrator.
func TestRolesWithTheOfficialClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, _ := url.Parse(e.srv.URL)
	c, err := octoclient.NewClient(nil, u, e.adminKey, "Spaces-1")
	if err != nil {
		t.Fatal(err)
	}
	roles, err := c.UserRoles.GetAll()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]*userroles.UserRole{}
	for _, r := range roles {
		names = append(names, r.Name)
		byName[r.Name] = r
	}
	for _, want := range []string{"System administrator", "System manager", "Project deployer", "Project contributor", "Project viewer",
		"Environment manager", "Package publisher", "Certificate manager"} {
		if byName[want] == nil || byName[want].CanBeDeleted {
			t.Errorf("the built-in role %q: %+v (all: %v)", want, byName[want], names)
		}
	}
	viewer := byName["Project viewer"]
	if !slices.Contains(viewer.GrantedSpacePermissions, "ProjectView") || slices.Contains(viewer.GrantedSpacePermissions, "DeploymentCreate") {
		t.Errorf("Project viewer grants %v", viewer.GrantedSpacePermissions)
	}
	if err := c.UserRoles.DeleteByID(viewer.GetID()); err == nil {
		t.Error("deleting a built-in role succeeded")
	}

	status, body := e.do("POST", "/api/Spaces-1/environments", e.adminKey, `{"Name": "Staging"}`)
	if status != 201 {
		t.Fatalf("environment: %d %s", status, body)
	}
	env := jsonField(t, body, "Id")
	// A user created through the API is a member of Everyone alone.
	status, body = e.do("POST", "/api/users", e.adminKey, `{"Username": "vera", "IsActive": true}`)
	if status != 201 {
		t.Fatalf("vera: %d %s", status, body)
	}
	vera := jsonField(t, body, "Id")
	team, err := c.Teams.Add(&teams.Team{Name: "Viewers", MemberUserIDs: []string{vera}, SpaceID: "Spaces-1"})
	if err != nil {
		t.Fatal(err)
	}
	scoped := userroles.NewScopedUserRole(viewer.GetID())
	scoped.TeamID, scoped.EnvironmentIDs = team.GetID(), []string{env}
	if _, err := c.ScopedUserRoles.Add(scoped); err != nil {
		t.Fatalf("ScopedUserRoles.Add: %v", err)
	}
	given, err := c.Teams.GetScopedUserRoles(*team, core.SkipTakeQuery{Take: 10})
	if err != nil || len(given.Items) != 1 || given.Items[0].UserRoleID != viewer.GetID() || !slices.Equal(given.Items[0].EnvironmentIDs, []string{env}) {
		t.Fatalf("the team's scoped roles: %+v, %v", given, err)
	}
	user, err := c.Users.GetByID(vera)
	if err != nil {
		t.Fatal(err)
	}
	perms, err := c.Users.GetPermissions(user, users.UserQuery{})
	if err != nil {
		t.Fatalf("GetPermissions: %v", err)
	}
	if len(perms.SpacePermissions.ProjectView) != 1 || !slices.Equal(perms.SpacePermissions.ProjectView[0].RestrictedToEnvironmentIds, []string{env}) ||
		len(perms.SpacePermissions.DeploymentCreate) != 0 || len(perms.SystemPermissions) != 0 {
		t.Errorf("vera's permissions: %+v", perms)
	}
	var teamNames []string
	for _, tm := range perms.Teams {
		teamNames = append(teamNames, tm.Name)
	}
	if !slices.Contains(teamNames, "Viewers") || !slices.Contains(teamNames, "Everyone") {
		t.Errorf("vera's teams: %v", teamNames)
	}
	status, body = e.do("GET", "/api/users/me/permissions", e.adminKey, "")
	if status != 200 || !strings.Contains(string(body), `"AdministerSystem"`) {
		t.Errorf("the administrator's permissions: %d %s", status, body)
	}
	// A team deleted takes its roles with it.
	if err := c.Teams.DeleteByID(team.GetID()); err != nil {
		t.Fatalf("deleting the team: %v", err)
	}
}
