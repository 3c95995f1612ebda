package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/teams"
	"github.com/OctopusDeploy/go-octopusdeploy/v2/pkg/users"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/store/storetest"
)

// TestUsersOfficialClient: users through the official client (create, get
// by id, me, list, filter, update, delete); a created user may change
// nothing until a team grants it; usernames are unique ignoring case.
func TestUsersOfficialClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := officialClient(t, e)

	me, err := c.Users.GetMe()
	if err != nil || me.Username != "admin" || !me.IsActive || me.Links["ApiKeys"] == "" {
		t.Fatalf("GetMe: %+v, %v", me, err)
	}
	u := users.NewUser("deployer", "The deployer")
	u.IsService = true
	u, err = c.Users.Add(u)
	if err != nil || !strings.HasPrefix(u.ID, "Users-") || u.DisplayName != "The deployer" || !u.IsService {
		t.Fatalf("Add: %+v, %v", u, err)
	}
	if got, err := c.Users.GetByID(u.ID); err != nil || got.Username != "deployer" {
		t.Fatalf("GetByID: %+v, %v", got, err)
	}
	if got, err := users.GetByID(c, u.ID); err != nil || got.ID != u.ID {
		t.Fatalf("users.GetByID: %+v, %v", got, err)
	}
	all, err := c.Users.GetAll()
	if err != nil || len(all) != 3 { // admin, viewer, deployer
		t.Fatalf("GetAll: %d users, %v", len(all), err)
	}
	if page, err := c.Users.Get(users.UsersQuery{Filter: "DEPLOY"}); err != nil || page.TotalResults != 1 || page.Items[0].ID != u.ID {
		t.Fatalf("Get filter: %+v, %v", page, err)
	}
	u.DisplayName = "Deployments"
	up, err := c.Users.Update(u)
	if err != nil || up.DisplayName != "Deployments" {
		t.Fatalf("Update: %+v, %v", up, err)
	}

	// A new user is a member of Everyone alone, which grants nothing: a
	// key of theirs may not create until a team gives them a role.
	key, err := c.APIKeys.Create(users.NewAPIKey("automation", u.ID))
	if err != nil || !strings.HasPrefix(key.APIKey, "API-") {
		t.Fatalf("APIKeys.Create: %+v, %v", key, err)
	}
	status, body := e.do("POST", "/api/Spaces-1/environments", key.APIKey, `{"Name": "Made by the deployer"}`)
	wantError(t, "a new user's key creating an environment", status, body, http.StatusForbidden)
	if !strings.Contains(string(body), "EnvironmentCreate") {
		t.Errorf("the refusal does not name the permission: %s", body)
	}
	if err := e.store.Update(context.Background(), func(tx *collection.Tx) error {
		return grantTeam(context.Background(), tx, "Environment makers", u.ID, []string{"EnvironmentCreate"}, nil)
	}); err != nil {
		t.Fatal(err)
	}
	// The node cached the refusal; the grant's notification drops it
	// (asynchronously, even in one process), within a second.
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		status, body := e.do("POST", "/api/Spaces-1/environments", key.APIKey, `{"Name": "Made by the deployer"}`)
		if status == http.StatusCreated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a key of a user given EnvironmentCreate creating an environment: %d %s", status, body)
		}
	}

	status, body = e.do("POST", "/api/users", e.adminKey, `{"Username": "DEPLOYER"}`)
	wantError(t, "a username taken in another case", status, body, http.StatusConflict)
	if err := users.DeleteByID(c, u.ID); err != nil {
		t.Fatalf("DeleteByID: %v", err)
	}
	if _, err := c.Users.GetByID(u.ID); err == nil {
		t.Fatal("GetByID after delete succeeded")
	}
	if status, _ := e.do("GET", "/api/users/me", key.APIKey, ""); status != http.StatusUnauthorized {
		t.Errorf("a deleted user's key: %d, want 401", status)
	}
}

// TestAPIKeys: a key is shown once at creation, lists show its hint, a
// delete revokes it at once; a user manages their own keys, and only an
// administrator another's.
func TestAPIKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := officialClient(t, e)
	me, err := c.Users.GetMe()
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.APIKeys.Create(users.NewAPIKey("ci", me.ID))
	if err != nil || created.ID == "" {
		t.Fatalf("Create: %+v, %v", created, err)
	}
	list, err := c.APIKeys.GetByUserID(me.ID)
	if err != nil || len(list) != 2 { // the administrator's own, and this one
		t.Fatalf("GetByUserID: %d keys, %v", len(list), err)
	}
	var found *users.APIKey
	for _, k := range list {
		if k.ID == created.ID {
			found = k
		}
	}
	if found == nil || found.Purpose != "ci" || found.APIKey == nil || !found.APIKey.HasValue ||
		found.APIKey.Hint != created.APIKey[:8] || found.APIKey.NewValue != "" {
		t.Fatalf("the listed key: %+v (%+v)", found, found.APIKey)
	}
	if got, err := c.APIKeys.GetByID(me.ID, created.ID); err != nil || got.Purpose != "ci" {
		t.Fatalf("GetByID: %+v, %v", got, err)
	}
	_, raw := e.do("GET", "/api/users/"+me.ID+"/apikeys", e.adminKey, "")
	if strings.Contains(string(raw), created.APIKey) || strings.Contains(string(raw), "Digest") {
		t.Fatalf("a list of keys shows a key or its digest: %s", raw)
	}

	// The viewer (no administrator) manages their own keys only.
	var viewer struct{ Id string }
	if status, body := e.do("GET", "/api/users/me", e.userKey, ""); status != http.StatusOK || json.Unmarshal(body, &viewer) != nil {
		t.Fatalf("the viewer's me: %d %s", status, body)
	}
	status, body := e.do("POST", "/api/users/me/apikeys", e.userKey, `{"Purpose": "mine"}`)
	if status != http.StatusCreated {
		t.Fatalf("the viewer creating their own key: %d %s", status, body)
	}
	status, body = e.do("GET", "/api/users/"+me.ID+"/apikeys", e.userKey, "")
	wantError(t, "the viewer listing another's keys", status, body, http.StatusForbidden)
	status, body = e.do("DELETE", "/api/users/"+me.ID+"/apikeys/"+created.ID, e.userKey, "")
	wantError(t, "the viewer deleting another's key", status, body, http.StatusForbidden)
	status, body = e.do("GET", "/api/users/"+viewer.Id+"/apikeys/"+created.ID, e.adminKey, "")
	wantError(t, "a key through another user's route", status, body, http.StatusNotFound)

	for _, tc := range []struct{ name, body string }{
		{"no purpose", `{"Purpose": " "}`},
		{"an expiry", `{"Purpose": "x", "Expires": "2030-01-01T00:00:00Z"}`},
		{"not JSON", `{"Purpose": `},
	} {
		status, body := e.do("POST", "/api/users/"+me.ID+"/apikeys", e.adminKey, tc.body)
		wantError(t, tc.name, status, body, http.StatusBadRequest)
	}
	status, body = e.do("POST", "/api/users/Users-999/apikeys", e.adminKey, `{"Purpose": "x"}`)
	wantError(t, "a key for an unknown user", status, body, http.StatusNotFound)

	// Revoked at once.
	if status, _ := e.do("GET", "/api/users/me", created.APIKey, ""); status != http.StatusOK {
		t.Fatalf("the new key: %d", status)
	}
	if status, body := e.do("DELETE", "/api/users/"+me.ID+"/apikeys/"+created.ID, e.adminKey, ""); status != http.StatusOK {
		t.Fatalf("DELETE: %d %s", status, body)
	}
	if status, _ := e.do("GET", "/api/users/me", created.APIKey, ""); status != http.StatusUnauthorized {
		t.Errorf("a deleted key: %d, want 401", status)
	}
}

// TestTeamsOfficialClient: the built-in teams, and a team through the
// official client with members; built-in teams keep their names and the
// administrators at least one member.
func TestTeamsOfficialClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := officialClient(t, e)
	me, err := c.Users.GetMe()
	if err != nil {
		t.Fatal(err)
	}
	all, err := c.Teams.GetAll()
	if err != nil {
		t.Fatal(err)
	}
	var admins *teams.Team
	var names []string
	for _, tm := range all {
		names = append(names, tm.Name)
		if tm.Name == "Octopus Administrators" {
			admins = tm
		}
	}
	if !slices.Contains(names, "Everyone") || admins == nil || !slices.Contains(admins.MemberUserIDs, me.ID) || admins.CanBeDeleted {
		t.Fatalf("the built-in teams: %v, administrators %+v", names, admins)
	}

	tm := teams.NewTeam("Release managers")
	tm.MemberUserIDs = []string{me.ID}
	tm.SpaceID = "Spaces-1"
	tm, err = c.Teams.Add(tm)
	if err != nil || !strings.HasPrefix(tm.ID, "Teams-") || !tm.CanBeDeleted || len(tm.MemberUserIDs) != 1 {
		t.Fatalf("Add: %+v, %v", tm, err)
	}
	if got, err := teams.GetByID(c, "Spaces-1", tm.ID); err != nil || got.Name != "Release managers" {
		t.Fatalf("teams.GetByID: %+v, %v", got, err)
	}
	if got, err := c.Teams.GetByPartialName("release"); err != nil || len(got) != 1 {
		t.Fatalf("GetByPartialName: %v, %v", got, err)
	}
	tm.MemberUserIDs = []string{}
	tm.Description = "they release"
	if up, err := c.Teams.Update(tm); err != nil || len(up.MemberUserIDs) != 0 || up.Description != "they release" {
		t.Fatalf("Update: %+v, %v", up, err)
	}
	if err := c.Teams.Delete(tm); err != nil {
		t.Fatalf("Delete: %v", err)
	}

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"no name", "POST", "/api/teams", `{"Name": " "}`, 400},
		{"a taken name", "POST", "/api/teams", `{"Name": "EVERYONE"}`, 409},
		{"an unknown member", "POST", "/api/teams", `{"Name": "T", "MemberUserIds": ["Users-999"]}`, 400},
		{"a member not a user", "POST", "/api/teams", `{"Name": "T", "MemberUserIds": ["Teams-1"]}`, 400},
		{"renaming a built-in team", "PUT", "/api/teams/" + admins.ID, `{"Name": "Admins", "MemberUserIds": ["` + me.ID + `"]}`, 400},
		{"the last administrator out", "PUT", "/api/teams/" + admins.ID, `{"Name": "Octopus Administrators", "MemberUserIds": []}`, 409},
		{"deleting a built-in team", "DELETE", "/api/teams/" + admins.ID, "", 409},
		{"deleting the last administrator", "DELETE", "/api/users/" + me.ID, "", 409},
		{"an id of another type", "GET", "/api/teams/Users-1", "", 404},
	} {
		status, body := e.do(tc.method, tc.path, e.adminKey, tc.body)
		wantError(t, tc.name, status, body, tc.status)
	}
	if got, err := c.Teams.GetByID(admins.ID); err != nil || got.Name != "Octopus Administrators" || len(got.MemberUserIDs) != 1 {
		t.Fatalf("the administrators after the refusals: %+v, %v", got, err)
	}
}

// TestUserBadInput: what a user may not be is refused, and nothing
// changes.
func TestUserBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"no username", "POST", "/api/users", `{"Username": "  "}`, 400},
		{"a control character", "POST", "/api/users", `{"Username": "a\u0001b"}`, 400},
		{"a username of the wrong type", "POST", "/api/users", `{"Username": 7}`, 400},
		{"identities", "POST", "/api/users", `{"Username": "x", "Identities": [{"IdentityProviderName": "AD"}]}`, 400},
		{"a taken username", "POST", "/api/users", `{"Username": "Admin"}`, 409},
		{"an unknown user", "GET", "/api/users/Users-999", "", 404},
		{"an id of another type", "GET", "/api/users/Teams-1", "", 404},
		{"a viewer creating a user", "POST", "/api/users", `{"Username": "x"}`, 403},
	} {
		key := e.adminKey
		if strings.HasPrefix(tc.name, "a viewer") {
			key = e.userKey
		}
		status, body := e.do(tc.method, tc.path, key, tc.body)
		wantError(t, tc.name, status, body, tc.status)
	}
	_, body := e.do("GET", "/api/users/all", e.adminKey, "")
	var all []map[string]any
	if err := json.Unmarshal(body, &all); err != nil || len(all) != 2 {
		t.Errorf("users after the refusals: %s", body)
	}
}

// TestLegacyKeyDigestUpgraded: a key stored as earlier nodes stored it (a
// bare SHA-256) still signs in, and is stored under the master key's
// digest afterwards; a weak key chosen by an operator is refused.
func TestLegacyKeyDigestUpgraded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	key := cuttle.NewAPIKey()
	if err := e.store.Update(ctx, func(tx *collection.Tx) error {
		u, err := resources.UserNamed(ctx, tx, "viewer")
		if err != nil {
			return err
		}
		return resources.APIKeys.Insert(ctx, tx, &cuttle.APIKey{UserID: u.ID, Purpose: "old", Digest: storetest.V4KeyDigest(key), Hint: cuttle.APIKeyHint(key)})
	}); err != nil {
		t.Fatal(err)
	}
	stored := func(digest string) int {
		var n int
		if err := e.store.Read(ctx, func(tx *collection.Tx) (err error) {
			_, n, err = resources.APIKeys.List(ctx, tx, collection.Query{Take: 0, Where: map[string]any{resources.APIKeyDigest: digest}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for range 2 {
		if status, body := e.do("GET", "/api/users/me", key, ""); status != http.StatusOK || !strings.Contains(string(body), `"viewer"`) {
			t.Fatalf("GET /api/users/me with a legacy key: %d %s", status, body)
		}
	}
	if stored(storetest.V4KeyDigest(key)) != 0 || stored(resources.DigestAPIKey(e.masterKey, key)) != 1 {
		t.Error("the key is not stored under the master key's digest alone after it signed in")
	}

	for _, weak := range []string{"API-AAAAAAAAAAAAAAAAAAAA", "API-ABCDEFGHIJKLMNOPQRST", "API-ABABABABABABABABABABABABABAB"} {
		if err := cuttle.CheckAPIKey(weak); !cuttle.IsKind(err, cuttle.KindInvalid) || !strings.Contains(err.Error(), "too easy to guess") {
			t.Errorf("CheckAPIKey(%s) = %v; want refused as too easy to guess", weak, err)
		}
	}
	for range 1000 {
		if k := cuttle.NewAPIKey(); cuttle.CheckAPIKey(k) != nil || cuttle.CheckAPIKey(k[:24]) != nil {
			t.Fatalf("CheckAPIKey refuses the random key %s or its first 20 characters: %v", k, cuttle.CheckAPIKey(k[:24]))
		}
	}
}
