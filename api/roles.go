package api

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// roleRoutes serves user roles, scoped user roles, a team's scoped user
// roles and a user's effective permissions, as the official client reads
// them (docs/design.md, "Permissions").
func (s *Server) roleRoutes() {
	serveDocs(s, docs[cuttle.UserRole]{def: resources.UserRoles, path: "userroles", link: "UserRoles", itemType: "UserRole",
		perms: perms{view: "UserRoleView", create: "UserRoleEdit", edit: "UserRoleEdit", remove: "UserRoleEdit"},
		check: func(ctx context.Context, tx *collection.Tx, r, old *cuttle.UserRole) error {
			if old != nil && !old.CanBeDeleted {
				return cuttle.Errorf(cuttle.KindConflict, "%s is a built-in role: it cannot be changed.", old.Name)
			}
			r.CanBeDeleted = true
			for _, list := range []struct {
				granted, known []string
				kind           string
			}{{r.GrantedSpacePermissions, cuttle.SpacePermissions, "space"}, {r.GrantedSystemPermissions, cuttle.SystemPermissions, "system"}} {
				for _, p := range list.granted {
					if !slices.Contains(list.known, p) {
						return cuttle.Errorf(cuttle.KindInvalid, "%q is not a %s permission cuttle knows.", p, list.kind)
					}
				}
			}
			r.GrantedSpacePermissions, r.GrantedSystemPermissions = nonNil(r.GrantedSpacePermissions), nonNil(r.GrantedSystemPermissions)
			r.SpacePermissionDescriptions, r.SystemPermissionDescriptions = []string{}, []string{}
			r.SupportedRestrictions = cuttle.RoleRestrictions
			return nil
		},
		deleting: func(ctx context.Context, tx *collection.Tx, r *cuttle.UserRole) error {
			if !r.CanBeDeleted {
				return cuttle.Errorf(cuttle.KindConflict, "%s is a built-in role: it cannot be deleted.", r.Name)
			}
			return nil
		}})
	serveDocs(s, docs[cuttle.ScopedUserRole]{def: resources.ScopedUserRoles, path: "scopeduserroles", link: "ScopedUserRoles", itemType: "ScopedUserRole",
		template: "{/id}{?skip,take,ids}", inSpaces: true,
		perms: perms{view: "TeamView", create: "TeamEdit", edit: "TeamEdit", remove: "TeamEdit"},
		check: func(ctx context.Context, tx *collection.Tx, r, old *cuttle.ScopedUserRole) error {
			if r.TeamId == "" || r.UserRoleId == "" {
				return cuttle.Errorf(cuttle.KindInvalid, "A scoped user role needs its TeamId and UserRoleId.")
			}
			r.ProjectIds, r.ProjectGroupIds = nonNil(r.ProjectIds), nonNil(r.ProjectGroupIds)
			r.EnvironmentIds, r.TenantIds = nonNil(r.EnvironmentIds), nonNil(r.TenantIds)
			return nil
		}})
	for _, p := range []string{"/api", "/api/" + DefaultSpaceID} {
		s.handle("GET "+p+"/teams/{id}/scopeduserroles", can("TeamView"), s.handleTeamRoles)
		s.handle("GET "+p+"/teams/{id}/scopeduserroles/all", can("TeamView"), s.handleTeamRoles)
	}
	s.handle("GET /api/users/{id}/permissions", user, s.handlePermissions)
	s.handle("GET /api/users/{id}/permissions/configuration", user, s.handlePermissions)
}

func (s *Server) handleTeamRoles(w http.ResponseWriter, r *http.Request) error {
	var items []cuttle.ScopedUserRole
	err := s.store.Read(r.Context(), func(tx *collection.Tx) error {
		if _, err := resources.Teams.Get(r.Context(), tx, r.PathValue("id")); err != nil {
			return err
		}
		var err error
		items, _, err = resources.ScopedUserRoles.List(r.Context(), tx, collection.Query{Take: -1, Where: map[string]any{"team_id": r.PathValue("id")}})
		return err
	})
	if err != nil {
		return err
	}
	for i := range items {
		items[i].Links = map[string]string{"Self": "/api/scopeduserroles/" + items[i].ID}
	}
	if strings.HasSuffix(r.URL.Path, "/all") {
		writeJSON(w, http.StatusOK, nonNil(items))
		return nil
	}
	return writePage(w, r, "ScopedUserRole", "/api/teams/"+r.PathValue("id")+"/scopeduserroles", items)
}

// restriction is a limit of a space permission, as Octopus answers it.
type restriction struct {
	RestrictedToEnvironmentIds  []string
	RestrictedToProjectGroupIds []string
	RestrictedToProjectIds      []string
	RestrictedToTenantIds       []string
	SpaceId                     string
}

// handlePermissions answers a user's effective permissions (the caller's
// with "me"); another user's need UserView.
func (s *Server) handlePermissions(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if id == "me" {
		id = me(r).ID
	}
	if !strings.EqualFold(id, me(r).ID) {
		if err := allow(r, "UserView", resources.Scope{}, id); err != nil {
			return err
		}
	}
	var p resources.Permissions
	err := s.store.Read(r.Context(), func(tx *collection.Tx) error {
		if _, err := resources.Users.Get(r.Context(), tx, id); err != nil {
			return err
		}
		var err error
		p, err = resources.PermissionsOf(r.Context(), tx, id)
		return err
	})
	if err != nil {
		return err
	}
	system := []string{}
	for perm := range p.System {
		system = append(system, perm)
	}
	sort.Strings(system)
	space := map[string][]restriction{}
	for perm, grants := range p.Space {
		for _, g := range grants {
			space[perm] = append(space[perm], restriction{RestrictedToEnvironmentIds: g.EnvironmentIds, RestrictedToProjectGroupIds: g.ProjectGroupIds,
				RestrictedToProjectIds: g.ProjectIds, RestrictedToTenantIds: g.TenantIds, SpaceId: DefaultSpaceID})
		}
	}
	type teamRef struct {
		Id, Name, SpaceId      string
		IsDirectlyAssigned     bool
		ExternalSecurityGroups []struct{}
	}
	teams := []teamRef{}
	for _, t := range p.Teams {
		teams = append(teams, teamRef{Id: t.ID, Name: t.Name, IsDirectlyAssigned: t.Name != cuttle.EveryoneTeam, ExternalSecurityGroups: []struct{}{}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"Id": id, "IsPermissionsComplete": true, "IsTeamsComplete": true,
		"SystemPermissions": system, "SpacePermissions": space, "Teams": teams,
		"Links": map[string]string{"Self": "/api/users/" + id + "/permissions"}})
	return nil
}
