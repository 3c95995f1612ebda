package storetest

import (
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
)

func testUsers(t *testing.T, s store.Store) {
	ctx := t.Context()
	n, err := s.UserCount(ctx)
	check(t, err, "UserCount")
	if n != 0 {
		t.Errorf("UserCount of an empty store = %d, want 0", n)
	}

	alice, err := s.CreateUser(ctx, "alice", true)
	check(t, err, "CreateUser alice")
	if alice.ID <= 0 || alice.Username != "alice" || !alice.IsAdministrator {
		t.Errorf("CreateUser alice = %+v, want an id > 0, alice, administrator", alice)
	}
	bob, err := s.CreateUser(ctx, "bob", false)
	check(t, err, "CreateUser bob")
	if bob.ID <= 0 || bob.ID == alice.ID || bob.Username != "bob" || bob.IsAdministrator {
		t.Errorf("CreateUser bob = %+v, want a new id, bob, not administrator", bob)
	}

	_, err = s.CreateUser(ctx, "alice", false)
	wantKind(t, err, cuttle.KindConflict, "CreateUser with a taken username")

	n, err = s.UserCount(ctx)
	check(t, err, "UserCount")
	if n != 2 {
		t.Errorf("UserCount = %d, want 2", n)
	}

	for _, want := range []cuttle.User{alice, bob} {
		got, err := s.UserByName(ctx, want.Username)
		check(t, err, "UserByName "+want.Username)
		if got != want {
			t.Errorf("UserByName %s = %+v, want %+v", want.Username, got, want)
		}
	}
	_, err = s.UserByName(ctx, "carol")
	wantKind(t, err, cuttle.KindNotFound, "UserByName of an unknown user")
}

func testAPIKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	alice, err := s.CreateUser(ctx, "alice", true)
	check(t, err, "CreateUser")
	bob, err := s.CreateUser(ctx, "bob", false)
	check(t, err, "CreateUser")

	aliceKey := cuttle.HashAPIKey(cuttle.NewAPIKey())
	check(t, s.AddAPIKey(ctx, alice.ID, "automation", aliceKey), "AddAPIKey")
	check(t, s.AddAPIKey(ctx, alice.ID, "automation", aliceKey), "AddAPIKey of the same digest again")
	bobKey := cuttle.HashAPIKey(cuttle.NewAPIKey())
	check(t, s.AddAPIKey(ctx, bob.ID, "", bobKey), "AddAPIKey")

	for _, c := range []struct {
		digest string
		want   cuttle.User
	}{{aliceKey, alice}, {bobKey, bob}} {
		got, err := s.UserByAPIKey(ctx, c.digest)
		check(t, err, "UserByAPIKey")
		if got != c.want {
			t.Errorf("UserByAPIKey = %+v, want %+v", got, c.want)
		}
	}

	_, err = s.UserByAPIKey(ctx, cuttle.HashAPIKey(cuttle.NewAPIKey()))
	wantKind(t, err, cuttle.KindUnauthorized, "UserByAPIKey of an unknown digest")
}
