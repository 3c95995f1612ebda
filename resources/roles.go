package resources

import (
	"context"
	"slices"
	"strings"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// UserRoles are the roles of permissions, the built-in ones seeded.
var UserRoles = &collection.Def[cuttle.UserRole]{
	Table: "user_roles", Prefix: "UserRoles-", Noun: "user role",
	Columns: []collection.Column[cuttle.UserRole]{name(func(r *cuttle.UserRole) string { return r.Name })},
	Order:   "id",
}

// ScopedUserRoles give teams roles, limited to projects, project groups,
// environments and tenants.
var ScopedUserRoles = &collection.Def[cuttle.ScopedUserRole]{
	Table: "scoped_user_roles", Prefix: "ScopedUserRoles-", Noun: "scoped user role",
	Columns: []collection.Column[cuttle.ScopedUserRole]{
		{Name: "team_id", Refers: Teams, Value: func(s *cuttle.ScopedUserRole) any { return s.TeamId }},
		{Name: "user_role_id", Refers: UserRoles, Value: func(s *cuttle.ScopedUserRole) any { return s.UserRoleId }},
		{Name: "project_ids", Kind: collection.IDs, Refers: Projects, Value: func(s *cuttle.ScopedUserRole) any { return s.ProjectIds }},
		{Name: "project_group_ids", Kind: collection.IDs, Refers: ProjectGroups, Value: func(s *cuttle.ScopedUserRole) any { return s.ProjectGroupIds }},
		{Name: "environment_ids", Kind: collection.IDs, Refers: Environments, Value: func(s *cuttle.ScopedUserRole) any { return s.EnvironmentIds }},
		{Name: "tenant_ids", Kind: collection.IDs, Refers: Tenants, Value: func(s *cuttle.ScopedUserRole) any { return s.TenantIds }},
	},
}

// seedRoles creates the built-in roles and gives the administrators team
// System administrator, where missing.
func seedRoles(ctx context.Context, tx *collection.Tx) error {
	for _, r := range cuttle.BuiltinRoles() {
		if err := seedNamed(ctx, tx, UserRoles, &r); err != nil {
			return err
		}
	}
	admins, err := administrators(ctx, tx)
	if err != nil {
		return err
	}
	roles, _, err := UserRoles.List(ctx, tx, collection.Query{Name: cuttle.RoleSystemAdministrator, Take: 1})
	if err != nil || len(roles) == 0 {
		return err
	}
	given, _, err := ScopedUserRoles.List(ctx, tx, collection.Query{Take: 1, Where: map[string]any{"team_id": admins.ID, "user_role_id": roles[0].ID}})
	if err != nil || len(given) > 0 {
		return err
	}
	return ScopedUserRoles.Insert(ctx, tx, &cuttle.ScopedUserRole{TeamId: admins.ID, UserRoleId: roles[0].ID,
		ProjectIds: []string{}, ProjectGroupIds: []string{}, EnvironmentIds: []string{}, TenantIds: []string{}})
}

// Grant is one permission of a user: unlimited, or limited as a scoped
// user role limits it.
type Grant struct {
	ProjectIds, ProjectGroupIds, EnvironmentIds, TenantIds []string
}

// Permissions are a user's effective permissions: system ones, and space
// ones with their limits; and the teams they come from.
type Permissions struct {
	System map[string]bool
	Space  map[string][]Grant
	Teams  []cuttle.Team
}

// PermissionsOf returns the effective permissions of a user: the grants
// of the scoped user roles of the teams they are a member of, and of
// Everyone.
func PermissionsOf(ctx context.Context, tx *collection.Tx, userID string) (Permissions, error) {
	p := Permissions{System: map[string]bool{}, Space: map[string][]Grant{}}
	teams, _, err := Teams.List(ctx, tx, collection.Query{Take: -1})
	if err != nil {
		return p, err
	}
	roles := map[string]cuttle.UserRole{}
	for _, t := range teams {
		if t.Name != cuttle.EveryoneTeam && !slices.ContainsFunc(t.MemberUserIds, func(m string) bool { return strings.EqualFold(m, userID) }) {
			continue
		}
		p.Teams = append(p.Teams, t)
		scoped, _, err := ScopedUserRoles.List(ctx, tx, collection.Query{Take: -1, Where: map[string]any{"team_id": t.ID}})
		if err != nil {
			return p, err
		}
		for _, s := range scoped {
			r, ok := roles[s.UserRoleId]
			if !ok {
				if r, err = UserRoles.Get(ctx, tx, s.UserRoleId); err != nil {
					return p, err
				}
				roles[s.UserRoleId] = r
			}
			for _, perm := range r.GrantedSystemPermissions {
				p.System[perm] = true
			}
			g := Grant{ProjectIds: s.ProjectIds, ProjectGroupIds: s.ProjectGroupIds, EnvironmentIds: s.EnvironmentIds, TenantIds: s.TenantIds}
			for _, perm := range r.GrantedSpacePermissions {
				p.Space[perm] = append(p.Space[perm], g)
			}
		}
	}
	return p, nil
}

// Scope is where a document is: its project, project group, environment
// and tenant, each "" where it has none. The zero Scope is the system's
// or the space's as a whole.
type Scope struct{ Project, ProjectGroup, Environment, Tenant string }

// covers reports whether g holds at: every dimension g limits holds at's
// value there, where at has one (a project limited to environments is
// still viewable; its deployments only in those environments).
func (g Grant) covers(at Scope) bool {
	holds := func(limit []string, v string) bool {
		return len(limit) == 0 || v == "" || slices.ContainsFunc(limit, func(id string) bool { return strings.EqualFold(id, v) })
	}
	return holds(g.ProjectIds, at.Project) && holds(g.ProjectGroupIds, at.ProjectGroup) &&
		holds(g.EnvironmentIds, at.Environment) && holds(g.TenantIds, at.Tenant)
}

// Allows reports whether p grants perm at the scope: as a system
// permission, or through a grant that covers it.
func (p Permissions) Allows(perm string, at Scope) bool {
	return p.System[perm] || slices.ContainsFunc(p.Space[perm], func(g Grant) bool { return g.covers(at) })
}

// Anywhere reports whether p grants perm in some scope.
func (p Permissions) Anywhere(perm string) bool { return p.System[perm] || len(p.Space[perm]) > 0 }

// Everywhere reports whether p grants perm in every scope (so a list needs
// no filtering).
func (p Permissions) Everywhere(perm string) bool {
	return p.Allows(perm, Scope{Project: "\x00", ProjectGroup: "\x00", Environment: "\x00", Tenant: "\x00"})
}

// ProjectScope returns the scope of a project's documents: the project and
// its group. KindNotFound for an unknown project.
func ProjectScope(ctx context.Context, tx *collection.Tx, projectID string) (Scope, error) {
	p, err := Projects.Get(ctx, tx, projectID)
	return Scope{Project: p.ID, ProjectGroup: p.ProjectGroupId}, err
}

// DeploymentScope returns the scope of a deployment: its project, group,
// environment and tenant.
func DeploymentScope(ctx context.Context, tx *collection.Tx, d *cuttle.Deployment) (Scope, error) {
	at, err := ProjectScope(ctx, tx, d.ProjectId)
	at.Environment, at.Tenant = d.EnvironmentId, d.TenantId
	return at, err
}
