package storetest

import (
	"fmt"
	"maps"
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
		p, channel := releasableProject(t, s, "Released")
		secret := "sealed-elsewhere"

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

// releasableProject inserts a project with what a release needs: its
// default channel, whose id it returns, its process (one step) and its
// variable set (a plain variable and a sensitive one, "sealed-elsewhere").
func releasableProject(t *testing.T, s store.Store, name string) (cuttle.Project, string) {
	t.Helper()
	ctx := t.Context()
	p := insertProject(t, s, name)
	var channel string
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
			ScopeValues: cuttle.EmptyScopeValues(), Secrets: map[string]string{"v2": "sealed-elsewhere"}}
		return resources.VariableSets.Insert(ctx, tx, &set)
	}), "inserting the project's channel, process and variables")
	return p, channel
}

// deploymentsCase: a deployment refers to its release, environment and
// project, which cannot be deleted while it exists; interruptions are
// found by what they regard and whether they are pending.
func deploymentsCase() collectionCase {
	return collectionCase{name: resources.Deployments.Table, run: func(t *testing.T, s store.Store) {
		ctx := t.Context()
		p, _ := releasableProject(t, s, "Deployed")
		var rel cuttle.Release
		var env cuttle.Environment
		check(t, update(t, s, func(tx *collection.Tx) error {
			rel = cuttle.Release{Resource: cuttle.Resource{SpaceID: space}, ProjectId: p.ID}
			if err := resources.PrepareRelease(ctx, tx, &rel); err != nil {
				return err
			}
			if err := resources.Releases.Insert(ctx, tx, &rel); err != nil {
				return err
			}
			env = cuttle.Environment{Resource: cuttle.Resource{SpaceID: space}, Name: "Staging", EnvironmentTags: []string{}}
			return resources.Environments.Insert(ctx, tx, &env)
		}), "a release and an environment")
		d := cuttle.Deployment{Resource: cuttle.Resource{SpaceID: space}, ReleaseId: rel.ID, EnvironmentId: env.ID, ProjectId: p.ID,
			ChannelId: rel.ChannelId, TaskId: "ServerTasks-1"}
		check(t, update(t, s, func(tx *collection.Tx) error { return resources.Deployments.Insert(ctx, tx, &d) }), "Insert of a deployment")
		bad := d
		bad.ID, bad.ReleaseId = "", "Releases-999999"
		err := update(t, s, func(tx *collection.Tx) error { return resources.Deployments.Insert(ctx, tx, &bad) })
		wantKind(t, err, cuttle.KindInvalid, "Insert of a deployment of an unknown release")
		for what, del := range map[string]func(tx *collection.Tx) error{
			"its release":     func(tx *collection.Tx) error { return resources.Releases.Delete(ctx, tx, rel.ID) },
			"its environment": func(tx *collection.Tx) error { return resources.Environments.Delete(ctx, tx, env.ID) },
		} {
			wantKind(t, update(t, s, del), cuttle.KindConflict, "Delete of a deployment's "+what)
		}

		pending := cuttle.Interruption{Resource: cuttle.Resource{SpaceID: space}, Title: "Approve", Type: cuttle.InterruptionManual,
			IsPending: true, Form: cuttle.ManualForm("look"), RelatedDocumentIds: []string{d.ID, "ServerTasks-1", p.ID, env.ID},
			ResponsibleTeamIds: []string{}, TaskId: "ServerTasks-1"}
		done := pending
		done.IsPending = false
		check(t, update(t, s, func(tx *collection.Tx) error {
			if err := resources.Interruptions.Insert(ctx, tx, &pending); err != nil {
				return err
			}
			return resources.Interruptions.Insert(ctx, tx, &done)
		}), "Insert of interruptions")
		check(t, s.Read(ctx, func(tx *collection.Tx) error {
			got, n, err := resources.Interruptions.List(ctx, tx, collection.Query{Space: space, Take: -1,
				Where: map[string]any{"related": d.ID, "is_pending": true}})
			if err != nil {
				return err
			}
			if n != 1 || got[0].ID != pending.ID {
				t.Errorf("the pending interruptions regarding %s: %d, %+v", d.ID, n, got)
			}
			_, n, err = resources.Interruptions.List(ctx, tx, collection.Query{Space: space, Take: -1, Where: map[string]any{"related": "Deployments-999999"}})
			if err == nil && n != 0 {
				t.Errorf("%d interruptions regard a deployment that does not exist", n)
			}
			return err
		}), "listing interruptions")

		// Newest: the latest deployment of each project and environment,
		// and of each whose own State is Success (the dashboard's).
		prod := cuttle.Environment{Resource: cuttle.Resource{SpaceID: space}, Name: "Production", EnvironmentTags: []string{}}
		deployed := map[string]string{} // "environment/n" to id
		check(t, update(t, s, func(tx *collection.Tx) error {
			if err := resources.Environments.Insert(ctx, tx, &prod); err != nil {
				return err
			}
			for i, st := range []struct {
				env   string
				state cuttle.TaskState
			}{{env.ID, cuttle.TaskSuccess}, {prod.ID, cuttle.TaskSuccess}, {prod.ID, cuttle.TaskFailed}, {env.ID, ""}, {prod.ID, cuttle.TaskSuccess}, {prod.ID, cuttle.TaskFailed}} {
				o := d
				o.ID, o.EnvironmentId, o.State = "", st.env, st.state
				if err := resources.Deployments.Insert(ctx, tx, &o); err != nil {
					return err
				}
				deployed[fmt.Sprintf("%s/%d", st.env, i)] = o.ID
			}
			return nil
		}), "Insert of deployments")
		newest := func(q collection.Query) map[string]string {
			t.Helper()
			var groups []collection.Group
			check(t, s.Read(ctx, func(tx *collection.Tx) (err error) {
				groups, err = resources.Deployments.Newest(ctx, tx, q, "project_id", "environment_id")
				return err
			}), "Newest")
			got := map[string]string{}
			for _, g := range groups {
				if len(g.Values) != 2 || g.Values[0] != p.ID {
					t.Errorf("Newest: a group %+v", g)
				}
				got[g.Values[1]] = g.ID
			}
			return got
		}
		all := collection.Query{Space: space, Take: 1}
		if got, want := newest(all), map[string]string{env.ID: deployed[env.ID+"/3"], prod.ID: deployed[prod.ID+"/5"]}; !maps.Equal(got, want) {
			t.Errorf("Newest by project and environment = %v, want %v", got, want)
		}
		all.Where = map[string]any{"state": string(cuttle.TaskSuccess)}
		if got, want := newest(all), map[string]string{env.ID: deployed[env.ID+"/0"], prod.ID: deployed[prod.ID+"/4"]}; !maps.Equal(got, want) {
			t.Errorf("Newest of the successful ones = %v, want %v", got, want)
		}
		if got := newest(collection.Query{Space: "Spaces-2"}); len(got) != 0 {
			t.Errorf("Newest of another space = %v", got)
		}
		if got := newest(collection.Query{Space: space, IDs: []string{"Releases-1"}}); len(got) != 0 {
			t.Errorf("Newest of ids of no deployment = %v", got)
		}
		for what, by := range map[string][]string{"no column": nil, "an unknown column": {"nothing"}, "the id": {"id"}} {
			err := s.Read(ctx, func(tx *collection.Tx) error {
				_, err := resources.Deployments.Newest(ctx, tx, collection.Query{Space: space}, by...)
				return err
			})
			wantKind(t, err, cuttle.KindInvalid, "Newest grouped by "+what)
		}
	}}
}
