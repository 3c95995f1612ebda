package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// peopleRoutes serves users, their API keys, and teams. A user created
// here is a member of Everyone alone: teams give them permissions. Every
// user may read themselves and manage their own API keys.
func (s *Server) peopleRoutes() {
	s.handle("GET /api/users/me", user, s.handleMe)
	s.links["CurrentUser"] = "/api/users/me"
	serveDocs(s, docs[cuttle.User]{def: resources.Users, path: "users", link: "Users", itemType: "User",
		template: "{/id}{?skip,take,ids,filter,partialName,name}", filter: true,
		perms: perms{view: "UserView", create: "UserEdit", edit: "UserEdit", remove: "UserEdit"},
		own:   func(r *http.Request, u *cuttle.User) bool { return strings.EqualFold(u.ID, me(r).ID) },
		links: func(u *cuttle.User) map[string]string {
			return map[string]string{"ApiKeys": "/api/users/" + u.ID + "/apikeys{/id}{?skip,take}",
				"Permissions": "/api/users/" + u.ID + "/permissions", "PermissionsConfiguration": "/api/users/" + u.ID + "/permissions/configuration"}
		},
		check: func(ctx context.Context, tx *collection.Tx, u, old *cuttle.User) error {
			if err := u.Check(); err != nil {
				return err
			}
			if old != nil && old.IsActive && !u.IsActive {
				return resources.CheckAdministratorsLeft(ctx, tx, u.ID)
			}
			return nil
		},
		deleting: func(ctx context.Context, tx *collection.Tx, u *cuttle.User) error {
			return resources.ReleaseUser(ctx, tx, u.ID)
		}})

	s.handle("GET /api/users/{id}/apikeys", user, s.handleAPIKeyList)
	s.handle("GET /api/users/{id}/apikeys/{keyId}", user, s.handleAPIKeyGet)
	s.handle("POST /api/users/{id}/apikeys", user, s.handleAPIKeyCreate)
	s.handle("DELETE /api/users/{id}/apikeys/{keyId}", user, s.handleAPIKeyDelete)

	serveDocs(s, docs[cuttle.Team]{def: resources.Teams, path: "teams", link: "Teams", itemType: "Team",
		template: "{/id}{?skip,take,ids,partialName,name,spaces,includeSystem}", inSpaces: true,
		perms: perms{view: "TeamView", create: "TeamCreate", edit: "TeamEdit", remove: "TeamDelete"},
		check: checkTeam,
		links: func(t *cuttle.Team) map[string]string {
			return map[string]string{"ScopedUserRoles": "/api/teams/" + t.ID + "/scopeduserroles{?skip,take}"}
		},
		deleting: func(ctx context.Context, tx *collection.Tx, t *cuttle.Team) error {
			if !t.CanBeDeleted {
				return cuttle.Errorf(cuttle.KindConflict, "The team %s is built in and cannot be deleted.", t.Name)
			}
			// Its roles go with it.
			given, _, err := resources.ScopedUserRoles.List(ctx, tx, collection.Query{Take: -1, Where: map[string]any{"team_id": t.ID}})
			for _, g := range given {
				if err == nil {
					err = resources.ScopedUserRoles.Delete(ctx, tx, g.ID)
				}
			}
			return err
		}})
}

// checkTeam validates a team about to be stored: a name, members once each
// (the collection checks that they exist), no external groups. The
// server's flags come from the stored team: a built-in team keeps its
// name, Everyone its (implicit) members, and the administrators at least
// one active member.
func checkTeam(ctx context.Context, tx *collection.Tx, t, old *cuttle.Team) error {
	if err := cuttle.CheckName(&t.Name, "team"); err != nil {
		return err
	}
	if len(t.ExternalSecurityGroups) > 0 {
		return cuttle.Errorf(cuttle.KindInvalid, "cuttle has no external security groups; leave ExternalSecurityGroups empty.")
	}
	members := []string{}
	for _, m := range t.MemberUserIds {
		n, err := resources.Users.ParseID(m)
		if err != nil {
			return cuttle.Errorf(cuttle.KindInvalid, "The member %q is not a user id (Users-N).", m)
		}
		if id := cuttle.FormatID(cuttle.UserIDPrefix, n); !slices.Contains(members, id) {
			members = append(members, id)
		}
	}
	t.MemberUserIds, t.ExternalSecurityGroups = members, []json.RawMessage{}
	if old == nil {
		t.CanBeDeleted, t.CanBeRenamed, t.CanChangeMembers, t.CanChangeRoles = true, true, true, true
		return nil
	}
	t.CanBeDeleted, t.CanBeRenamed, t.CanChangeMembers, t.CanChangeRoles = old.CanBeDeleted, old.CanBeRenamed, old.CanChangeMembers, old.CanChangeRoles
	switch {
	case !old.CanBeRenamed && t.Name != old.Name:
		return cuttle.Errorf(cuttle.KindInvalid, "The team %s is built in and cannot be renamed.", old.Name)
	case !old.CanChangeMembers && !slices.Equal(t.MemberUserIds, old.MemberUserIds):
		return cuttle.Errorf(cuttle.KindInvalid, "The members of the team %s cannot change: every user belongs to it.", old.Name)
	}
	if old.Name == cuttle.AdministratorsTeam {
		for _, m := range old.MemberUserIds {
			if !slices.Contains(t.MemberUserIds, m) {
				if err := resources.CheckAdministratorsLeft(ctx, tx, m); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// apiKeyResource is an API key as lists and gets answer it: a hint of the
// key, never the key or its digest.
type apiKeyResource struct {
	Id, Purpose, UserId string
	Created             time.Time
	Expires             *time.Time
	ApiKey              apiKeyValue
	Links               map[string]string
}

type apiKeyValue struct {
	HasValue bool
	Hint     string
}

// createdAPIKey is the answer to a key's creation: the only time the key
// itself is shown.
type createdAPIKey struct {
	Id, Purpose, UserId string
	ApiKey              string
	Created             time.Time
	Expires             *time.Time
	Links               map[string]string
}

func toAPIKeyResource(k cuttle.APIKey) apiKeyResource {
	return apiKeyResource{Id: k.ID, Purpose: k.Purpose, UserId: k.UserID, Created: k.Created, Expires: k.Expires,
		ApiKey: apiKeyValue{HasValue: true, Hint: k.Hint}, Links: map[string]string{"Self": apiKeyPath(k)}}
}

func apiKeyPath(k cuttle.APIKey) string { return "/api/users/" + k.UserID + "/apikeys/" + k.ID }

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) error {
	me := me(r)
	var u cuttle.User
	err := s.store.Read(r.Context(), func(tx *collection.Tx) (err error) {
		u, err = resources.Users.Get(r.Context(), tx, me.ID)
		return err
	})
	if err != nil {
		return err
	}
	u.Links = map[string]string{"Self": "/api/users/" + u.ID, "ApiKeys": "/api/users/" + u.ID + "/apikeys{/id}{?skip,take}"}
	writeJSON(w, http.StatusOK, u)
	return nil
}

// keyOwner returns the user the route's {id} names ("me" for the caller),
// who must be the caller or the caller have UserEdit: KindForbidden
// otherwise, KindNotFound if there is no such user.
func keyOwner(ctx context.Context, tx *collection.Tx, r *http.Request) (cuttle.User, error) {
	me := me(r)
	id := r.PathValue("id")
	if strings.EqualFold(id, "me") {
		id = me.ID
	}
	u, err := resources.Users.Get(ctx, tx, id)
	if err != nil {
		return u, err
	}
	if u.ID != me.ID && !callerOf(r).perms.Allows("UserEdit", resources.Scope{}) {
		return u, forbidden("UserEdit", u.ID)
	}
	return u, nil
}

// ownedKey returns the key of the route's {keyId}, which must belong to
// the route's user.
func ownedKey(ctx context.Context, tx *collection.Tx, r *http.Request, lock bool) (cuttle.APIKey, error) {
	u, err := keyOwner(ctx, tx, r)
	if err != nil {
		return cuttle.APIKey{}, err
	}
	get := resources.APIKeys.Get
	if lock {
		get = resources.APIKeys.GetForUpdate
	}
	k, err := get(ctx, tx, r.PathValue("keyId"))
	if err == nil && k.UserID != u.ID {
		err = cuttle.Errorf(cuttle.KindNotFound, "The user %s has no API key %q.", u.ID, r.PathValue("keyId"))
	}
	return k, err
}

func (s *Server) handleAPIKeyList(w http.ResponseWriter, r *http.Request) error {
	skip, take, err := pageParams(r)
	if err != nil {
		return err
	}
	var (
		keys  []cuttle.APIKey
		total int
		u     cuttle.User
	)
	err = s.store.Read(r.Context(), func(tx *collection.Tx) (err error) {
		if u, err = keyOwner(r.Context(), tx, r); err != nil {
			return err
		}
		keys, total, err = resources.APIKeys.List(r.Context(), tx, collection.Query{Skip: skip, Take: take,
			Where: map[string]any{resources.APIKeyUser: u.ID}})
		return err
	})
	if err != nil {
		return err
	}
	items := make([]apiKeyResource, 0, len(keys))
	for _, k := range keys {
		items = append(items, toAPIKeyResource(k))
	}
	writeJSON(w, http.StatusOK, newPage("ApiKey", "/api/users/"+u.ID+"/apikeys", items, total, skip, take))
	return nil
}

func (s *Server) handleAPIKeyGet(w http.ResponseWriter, r *http.Request) error {
	var k cuttle.APIKey
	err := s.store.Read(r.Context(), func(tx *collection.Tx) (err error) {
		k, err = ownedKey(r.Context(), tx, r, false)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAPIKeyResource(k))
	return nil
}

func (s *Server) handleAPIKeyCreate(w http.ResponseWriter, r *http.Request) error {
	// What the clients send; the server's fields (Id, Created, the key)
	// are accepted and ignored.
	var b struct {
		Purpose, UserId, Id, ApiKey, LastModifiedBy string
		Expires, Created, LastModifiedOn            *time.Time
		Links                                       map[string]string
	}
	if err := decodeJSON(w, r, &b); err != nil {
		return err
	}
	if strings.TrimSpace(b.Purpose) == "" {
		return cuttle.Errorf(cuttle.KindInvalid, "An API key needs a Purpose, so that its owner can tell it from their others.")
	}
	if b.Expires != nil {
		return cuttle.Errorf(cuttle.KindInvalid, "cuttle's API keys do not expire yet; leave Expires empty, and delete a key to revoke it.")
	}
	plain := cuttle.NewAPIKey()
	var k cuttle.APIKey
	err := s.store.Update(r.Context(), func(tx *collection.Tx) error {
		u, err := keyOwner(r.Context(), tx, r)
		if err != nil {
			return err
		}
		if b.UserId != "" && !strings.EqualFold(b.UserId, u.ID) {
			return cuttle.Errorf(cuttle.KindInvalid, "The body's UserId %q is not the route's user %s.", b.UserId, u.ID)
		}
		k, err = resources.AddAPIKey(r.Context(), tx, s.masterKey, u.ID, b.Purpose, plain)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, createdAPIKey{Id: k.ID, Purpose: k.Purpose, UserId: k.UserID, ApiKey: plain,
		Created: k.Created, Links: map[string]string{"Self": apiKeyPath(k)}})
	return nil
}

// handleAPIKeyDelete revokes a key. Every node reads keys from the
// database at each request, so the key is refused everywhere once the
// delete commits.
func (s *Server) handleAPIKeyDelete(w http.ResponseWriter, r *http.Request) error {
	err := s.store.Update(r.Context(), func(tx *collection.Tx) error {
		k, err := ownedKey(r.Context(), tx, r, true)
		if err != nil {
			return err
		}
		return resources.APIKeys.Delete(r.Context(), tx, k.ID)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}
