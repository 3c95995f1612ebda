package storetest

import (
	"slices"
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// createUser creates an active user, an administrator if admin.
func createUser(t *testing.T, s store.Store, name string, admin bool) cuttle.User {
	t.Helper()
	u := cuttle.User{Username: name, IsActive: true}
	check(t, s.Update(t.Context(), func(tx *collection.Tx) error { return resources.CreateUser(t.Context(), tx, &u, admin) }), "CreateUser "+name)
	return u
}

// testUsers: usernames unique ignoring case, the built-in teams, and
// administrators as members of theirs.
func testUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	alice := createUser(t, s, "alice", true)
	bob := createUser(t, s, "bob", false)
	if alice.DisplayName != "alice" || alice.ID == bob.ID {
		t.Errorf("CreateUser = %+v and %+v; want display names defaulted, distinct ids", alice, bob)
	}
	err := s.Update(ctx, func(tx *collection.Tx) error {
		return resources.CreateUser(ctx, tx, &cuttle.User{Username: "ALICE", IsActive: true}, false)
	})
	wantKind(t, err, cuttle.KindConflict, "CreateUser with a taken username in another case")
	err = s.Update(ctx, func(tx *collection.Tx) error {
		return resources.CreateUser(ctx, tx, &cuttle.User{Username: "  "}, false)
	})
	wantKind(t, err, cuttle.KindInvalid, "CreateUser without a username")

	check(t, s.Read(ctx, func(tx *collection.Tx) error {
		if u, err := resources.UserNamed(ctx, tx, "Bob"); err != nil || u.ID != bob.ID {
			t.Errorf("UserNamed(Bob) = %+v, %v; want %s", u, err, bob.ID)
		}
		_, err := resources.UserNamed(ctx, tx, "carol")
		wantKind(t, err, cuttle.KindNotFound, "UserNamed of an unknown user")
		for _, c := range []struct {
			id   string
			want bool
		}{{alice.ID, true}, {bob.ID, false}} {
			if got, err := resources.IsAdministrator(ctx, tx, c.id); err != nil || got != c.want {
				t.Errorf("IsAdministrator(%s) = %v, %v; want %v", c.id, got, err, c.want)
			}
		}
		ts, _, err := resources.Teams.List(ctx, tx, collection.Query{Take: -1})
		var names []string
		for _, tm := range ts {
			names = append(names, tm.Name)
			if tm.CanBeDeleted || tm.CanBeRenamed {
				t.Errorf("the built-in team %s can be deleted or renamed", tm.Name)
			}
		}
		if !slices.Contains(names, cuttle.EveryoneTeam) || !slices.Contains(names, cuttle.AdministratorsTeam) {
			t.Errorf("teams = %v; want the built-in ones", names)
		}
		return err
	}), "Read")

	// The last active administrator cannot go.
	check(t, s.Update(ctx, func(tx *collection.Tx) error { return resources.ReleaseUser(ctx, tx, bob.ID) }), "ReleaseUser bob")
	err = s.Update(ctx, func(tx *collection.Tx) error { return resources.ReleaseUser(ctx, tx, alice.ID) })
	wantKind(t, err, cuttle.KindConflict, "ReleaseUser of the last administrator")
	carol := createUser(t, s, "carol", true)
	check(t, s.Update(ctx, func(tx *collection.Tx) error {
		if err := resources.ReleaseUser(ctx, tx, alice.ID); err != nil {
			return err
		}
		return resources.Users.Delete(ctx, tx, alice.ID)
	}), "deleting alice once carol administers")
	check(t, s.Read(ctx, func(tx *collection.Tx) error {
		ts, _, err := resources.Teams.List(ctx, tx, collection.Query{Name: cuttle.AdministratorsTeam})
		if err == nil && (len(ts) != 1 || !slices.Equal(ts[0].MemberUserIds, []string{carol.ID})) {
			t.Errorf("administrators after alice left: %+v; want only %s", ts, carol.ID)
		}
		return err
	}), "Read")
}

// testMasterKey keys the digests of the tests' API keys.
var testMasterKey = masterkey.Generate()

// testAPIKeys: keys found by digest, shown by hint, refused once deleted
// or once their user is inactive or deleted.
func testAPIKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	initCluster(t, s)
	alice := createUser(t, s, "alice", true)
	bob := createUser(t, s, "bob", false)
	aliceKey, bobKey := cuttle.NewAPIKey(), cuttle.NewAPIKey()
	var ak cuttle.APIKey
	check(t, s.Update(ctx, func(tx *collection.Tx) (err error) {
		if ak, err = resources.AddAPIKey(ctx, tx, testMasterKey, alice.ID, " automation ", aliceKey); err != nil {
			return err
		}
		again, err := resources.AddAPIKey(ctx, tx, testMasterKey, bob.ID, "the same key", aliceKey)
		if err == nil && again.ID != ak.ID {
			t.Errorf("AddAPIKey of a digest that exists = %+v, want the existing %s", again, ak.ID)
		}
		_, err = resources.AddAPIKey(ctx, tx, testMasterKey, bob.ID, "", bobKey)
		return err
	}), "AddAPIKey")
	if ak.Purpose != "automation" || ak.Hint != aliceKey[:8] || ak.Digest != resources.DigestAPIKey(testMasterKey, aliceKey) || ak.Created.IsZero() {
		t.Errorf("AddAPIKey = %+v", ak)
	}
	err := s.Update(ctx, func(tx *collection.Tx) error {
		_, err := resources.AddAPIKey(ctx, tx, testMasterKey, "Users-999999", "", cuttle.NewAPIKey())
		return err
	})
	wantKind(t, err, cuttle.KindInvalid, "AddAPIKey for an unknown user")

	// auth returns the key's user, and whether they are an administrator.
	auth := func(key string) (u cuttle.User, admin bool, err error) {
		err = s.Read(ctx, func(tx *collection.Tx) (err error) {
			if u, _, err = resources.Authenticate(ctx, tx, testMasterKey, key); err != nil {
				return err
			}
			admin, err = resources.IsAdministrator(ctx, tx, u.ID)
			return err
		})
		return u, admin, err
	}
	for _, c := range []struct {
		key   string
		want  cuttle.User
		admin bool
	}{{aliceKey, alice, true}, {bobKey, bob, false}} {
		got, admin, err := auth(c.key)
		check(t, err, "Authenticate")
		if got.ID != c.want.ID || got.Username != c.want.Username || admin != c.admin {
			t.Errorf("Authenticate = %+v, want %s (administrator %v)", got, c.want.Username, c.admin)
		}
	}
	_, _, err = auth(cuttle.NewAPIKey())
	wantKind(t, err, cuttle.KindUnauthorized, "Authenticate with an unknown key")

	// An inactive user's keys are refused; deleting a key revokes it.
	check(t, s.Update(ctx, func(tx *collection.Tx) error {
		u, err := resources.Users.GetForUpdate(ctx, tx, bob.ID)
		if err != nil {
			return err
		}
		u.IsActive = false
		return resources.Users.Update(ctx, tx, &u)
	}), "deactivating bob")
	_, _, err = auth(bobKey)
	wantKind(t, err, cuttle.KindUnauthorized, "Authenticate as an inactive user")
	check(t, s.Update(ctx, func(tx *collection.Tx) error { return resources.APIKeys.Delete(ctx, tx, ak.ID) }), "deleting alice's key")
	_, _, err = auth(aliceKey)
	wantKind(t, err, cuttle.KindUnauthorized, "Authenticate with a deleted key")

	// A user with keys cannot be deleted without ReleaseUser, which takes
	// the keys too.
	err = s.Update(ctx, func(tx *collection.Tx) error { return resources.Users.Delete(ctx, tx, bob.ID) })
	wantKind(t, err, cuttle.KindConflict, "deleting a user who has keys")
	check(t, s.Update(ctx, func(tx *collection.Tx) error {
		if err := resources.ReleaseUser(ctx, tx, bob.ID); err != nil {
			return err
		}
		return resources.Users.Delete(ctx, tx, bob.ID)
	}), "ReleaseUser and delete")
	check(t, s.Read(ctx, func(tx *collection.Tx) error {
		_, n, err := resources.APIKeys.List(ctx, tx, collection.Query{Where: map[string]any{resources.APIKeyUser: bob.ID}})
		if err == nil && n != 0 {
			t.Errorf("%d keys of a deleted user remain", n)
		}
		return err
	}), "Read")
}
