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
