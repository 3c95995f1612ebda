package storetest

import (
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/variables"
)

// releasesCase: releases take their versions from the project's template
// or as given, unique in the project ignoring case; they freeze snapshots
// of the process and variables that later changes leave alone; a project
// or channel with releases cannot be deleted; deleting a release deletes
// its snapshots.
func releasesCase() collectionCase {
	return collectionCase{name: resources.Releases.Table, run: func(t *testing.T, s store.Store) {
		ctx := t.Context()
		p := insertProject(t, s, "Released")
		var channel string
		secret := "sealed-elsewhere"
		check(t, update(t, s, func(tx *collection.Tx) error {
			c := cuttle.Channel{Resource: cuttle.Resource{SpaceID: space}, Name: cuttle.DefaultChannelName, ProjectId: p.ID, IsDefault: true,
				Type: cuttle.ChannelTypeLifecycle, Rules: []cuttle.ChannelRule{}, TenantTags: []string{}}
			if err := resources.Channels.Insert(ctx, tx, &c); err != nil {
				return err
			}
			channel = c.ID
			process := cuttle.DeploymentProcess{Resource: cuttle.Resource{ID: p.DeploymentProcessId, SpaceID: space}, ProjectId: p.ID,
				Steps: []cuttle.DeploymentStep{{Name: "v1 step", Actions: []cuttle.DeploymentAction{}}}}
			if err := resources.DeploymentProcesses.Insert(ctx, tx, &process); err != nil {
				return err
			}
			v := "one"
			set := cuttle.VariableSet{Resource: cuttle.Resource{ID: p.VariableSetId, SpaceID: space}, OwnerId: p.ID,
				Variables:   []variables.Variable{{Id: "v1", Name: "A", Value: &v}, {Id: "v2", Name: "S", Type: "Sensitive"}},
				ScopeValues: cuttle.EmptyScopeValues(), Secrets: map[string]string{"v2": secret}}
			return resources.VariableSets.Insert(ctx, tx, &set)
		}), "inserting the project's channel, process and variables")

		create := func(version string) (cuttle.Release, error) {
			r := cuttle.Release{Resource: cuttle.Resource{SpaceID: space}, ProjectId: p.ID, Version: version}
			err := update(t, s, func(tx *collection.Tx) error {
				if err := resources.PrepareRelease(ctx, tx, &r); err != nil {
					return err
				}
				return resources.Releases.Insert(ctx, tx, &r)
			})
			return r, err
		}
		first, err := create("")
		check(t, err, "a first release")
		if first.Version != "0.0.1" || first.ChannelId != channel || first.Assembled.IsZero() {
			t.Errorf("a first release without a version: %+v; want 0.0.1 in the default channel", first)
		}
		given, err := create("1.0.0-Beta")
		check(t, err, "a release of a given version")
		next, err := create("")
		check(t, err, "the next release")
		if next.Version != "1.0.1" {
			t.Errorf("after 0.0.1 and 1.0.0-Beta the next release is %s; want 1.0.1", next.Version)
		}
		_, err = create("1.0.0-beta")
		wantKind(t, err, cuttle.KindConflict, "a release of a version taken, in another case")
		_, err = create("one point oh")
		wantKind(t, err, cuttle.KindInvalid, "a release of something that is not a version")

		// The snapshots hold the process and variables as they were.
		check(t, update(t, s, func(tx *collection.Tx) error {
			process, err := resources.DeploymentProcesses.GetForUpdate(ctx, tx, p.DeploymentProcessId)
			if err != nil {
				return err
			}
			process.Steps[0].Name = "v2 step"
			return resources.DeploymentProcesses.Update(ctx, tx, &process)
		}), "changing the process")
		check(t, s.Read(ctx, func(tx *collection.Tx) error {
			snap, err := resources.ProcessSnapshots.Get(ctx, tx, given.ProjectDeploymentProcessSnapshotId)
			if err != nil {
				return err
			}
			if len(snap.Steps) != 1 || snap.Steps[0].Name != "v1 step" || snap.ProjectId != p.ID {
				t.Errorf("the snapshot after the process changed: %+v", snap)
			}
			vars, err := resources.VariableSetSnapshots.Get(ctx, tx, given.ProjectVariableSetSnapshotId)
			if err != nil {
				return err
			}
			if len(vars.Variables) != 2 || vars.Secrets["v2"] != secret {
				t.Errorf("the variable snapshot: %+v", vars)
			}
			return nil
		}), "reading the snapshots")

		err = update(t, s, func(tx *collection.Tx) error { return resources.Channels.Delete(ctx, tx, channel) })
		wantKind(t, err, cuttle.KindConflict, "Delete of a channel with releases")
		err = update(t, s, func(tx *collection.Tx) error { return resources.Projects.Delete(ctx, tx, p.ID) })
		wantKind(t, err, cuttle.KindConflict, "Delete of a project with releases")

		check(t, update(t, s, func(tx *collection.Tx) error { return resources.DeleteRelease(ctx, tx, given.ID) }), "DeleteRelease")
		err = s.Read(ctx, func(tx *collection.Tx) error {
			_, err := resources.ProcessSnapshots.Get(ctx, tx, given.ProjectDeploymentProcessSnapshotId)
			return err
		})
		wantKind(t, err, cuttle.KindNotFound, "the process snapshot of a deleted release")
	}}
}
