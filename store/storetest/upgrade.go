package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// What each engine's upgrade test writes with plain SQL into a database
// of schema 4 (before the document collections), and CheckUpgradeFrom4
// finds after the migrations:
//
//   - environments 1 "Production" (description "live", sort order 2,
//     guided failure on) and 2 "Test" (sort order 1); 3 was created and
//     deleted, so the next id is 4;
//   - a polling machine "web-1" in both environments;
//   - users 1 "admin" (an administrator) and 2 "viewer"; 3 was deleted;
//   - the API keys V4AdminKey of admin and V4ViewerKey of viewer;
//   - a finished command V4CommandUID of web-1 for task 7, with the output
//     lines "hello" (stdout) and "wörld" (stderr).
const (
	V4AdminKey   = "API-UPGRADEADMIN0000000000000000000"
	V4ViewerKey  = "API-UPGRADEVIEWER000000000000000000"
	V4CommandUID = "upgrade-command-1"
)

// V4KeyDigest is the digest a schema-4 node stored of an API key: a bare
// SHA-256, written here as that node computed it.
func V4KeyDigest(key string) string {
	sum := sha256.Sum256([]byte("cuttle api key\x00" + key))
	return hex.EncodeToString(sum[:])
}

// CheckUpgradeFrom4 checks that s, opened on a database that held the
// schema-4 fixture, holds it intact.
func CheckUpgradeFrom4(t *testing.T, s store.Store) {
	ctx := t.Context()
	check(t, s.Read(ctx, func(tx *collection.Tx) error {
		envs, _, err := resources.Environments.List(ctx, tx, collection.Query{Space: space, Take: -1})
		if err != nil {
			return err
		}
		if len(envs) != 2 || envs[0].ID != "Environments-2" || envs[0].Name != "Test" || envs[0].SortOrder != 1 ||
			envs[1].ID != "Environments-1" || envs[1].Name != "Production" || envs[1].Description != "live" ||
			envs[1].SortOrder != 2 || !envs[1].UseGuidedFailure || envs[1].AllowDynamicInfrastructure || envs[1].EnvironmentTags == nil {
			t.Errorf("environments after the upgrade: %+v", envs)
		}
		if _, n, err := resources.Environments.List(ctx, tx, collection.Query{Space: space, Name: "PRODUCTION"}); err != nil || n != 1 {
			t.Errorf("the environment found by name ignoring case: %d, %v", n, err)
		}

		for _, c := range []struct {
			key, user string
			admin     bool
		}{{V4AdminKey, "admin", true}, {V4ViewerKey, "viewer", false}} {
			u, legacy, err := resources.Authenticate(ctx, tx, testMasterKey, c.key)
			admin := false
			if err == nil {
				admin, err = resources.IsAdministrator(ctx, tx, u.ID)
			}
			if err != nil || u.Username != c.user || admin != c.admin || !u.IsActive || !legacy {
				t.Errorf("the key of %s after the upgrade: %+v, legacy %v, %v; want administrator %v under its legacy digest",
					c.user, u, legacy, err, c.admin)
			}
		}
		ts, _, err := resources.Teams.List(ctx, tx, collection.Query{Take: -1})
		if err != nil {
			return err
		}
		var names []string
		for _, tm := range ts {
			names = append(names, tm.Name)
			if tm.Name == cuttle.AdministratorsTeam && !slices.Equal(tm.MemberUserIds, []string{"Users-1"}) {
				t.Errorf("the administrators after the upgrade: %v, want [Users-1]", tm.MemberUserIds)
			}
		}
		if !slices.Contains(names, cuttle.EveryoneTeam) || !slices.Contains(names, cuttle.AdministratorsTeam) || len(names) != 2 {
			t.Errorf("teams after the upgrade: %v", names)
		}
		return nil
	}), "reading the upgraded documents")

	// A key under its legacy digest is stored again under the master
	// key's, and still authenticates.
	for _, key := range []string{V4AdminKey, V4ViewerKey} {
		check(t, s.Update(ctx, func(tx *collection.Tx) error { return resources.UpgradeAPIKey(ctx, tx, testMasterKey, key) }), "UpgradeAPIKey")
		check(t, s.Read(ctx, func(tx *collection.Tx) error {
			_, legacy, err := resources.Authenticate(ctx, tx, testMasterKey, key)
			ks, _, lerr := resources.APIKeys.List(ctx, tx, collection.Query{Take: 1,
				Where: map[string]any{resources.APIKeyDigest: resources.DigestAPIKey(testMasterKey, key)}})
			if err != nil || lerr != nil || legacy || len(ks) != 1 {
				t.Errorf("the key %s after UpgradeAPIKey: legacy %v, %d stored under the new digest, %v %v", cuttle.APIKeyHint(key), legacy, len(ks), err, lerr)
			}
			_, n, err := resources.APIKeys.List(ctx, tx, collection.Query{Take: 0, Where: map[string]any{resources.APIKeyDigest: V4KeyDigest(key)}})
			if err == nil && n != 0 {
				t.Errorf("the key %s is still stored under its legacy digest", cuttle.APIKeyHint(key))
			}
			return err
		}), "reading the upgraded key")
	}

	ms, err := s.Machines(ctx, cuttle.MachineQuery{})
	check(t, err, "Machines")
	if len(ms) != 1 || ms[0].Name != "web-1" || !slices.Equal(ms[0].EnvironmentIDs, []int64{1, 2}) {
		t.Errorf("machines after the upgrade: %+v", ms)
	}

	// The command's output is counted by the migration that bounds it.
	c, err := s.CommandByUID(ctx, V4CommandUID)
	check(t, err, "CommandByUID")
	if c.State != cuttle.CommandSuccess || c.OutputSeq != 2 || c.Output.Lines != 2 || c.Output.Bytes != int64(len("hello")+len("wörld")) || c.Output.DroppedLines != 0 {
		t.Errorf("the command after the upgrade: %+v; want Success, 2 lines of %d bytes stored", c, len("hello")+len("wörld"))
	}
	out, err := s.CommandOutput(ctx, c.ID, 0, 10)
	check(t, err, "CommandOutput")
	if len(out) != 2 || out[0].Text != "hello" || out[1].Text != "wörld" || out[1].Stream != "stderr" {
		t.Errorf("the command's output after the upgrade: %+v", out)
	}

	// Ids go on where they were, and the collections' rules hold.
	env := cuttle.Environment{Resource: cuttle.Resource{SpaceID: space}, Name: "Staging"}
	u := cuttle.User{Username: "newcomer", IsActive: true}
	check(t, s.Update(ctx, func(tx *collection.Tx) error {
		if err := resources.Environments.Insert(ctx, tx, &env); err != nil {
			return err
		}
		return resources.CreateUser(ctx, tx, &u, false)
	}), "creating after the upgrade")
	if env.ID != "Environments-4" || u.ID != "Users-4" {
		t.Errorf("new ids after the upgrade: %s and %s; want Environments-4 and Users-4 (no id given twice)", env.ID, u.ID)
	}
	err = s.Update(ctx, func(tx *collection.Tx) error {
		return resources.CreateUser(ctx, tx, &cuttle.User{Username: "ADMIN", IsActive: true}, false)
	})
	wantKind(t, err, cuttle.KindConflict, "a username of the upgrade taken in another case")
	check(t, s.Update(ctx, func(tx *collection.Tx) error {
		_, _, found, err := s.MachineOfEnvironment(ctx, tx, 1)
		if err == nil && !found {
			t.Error("the upgraded machine is not found in its environment")
		}
		return err
	}), "MachineOfEnvironment")
}
