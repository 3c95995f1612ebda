package storetest

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/variables"
)

// testLifecycleID is the lifecycle of the suite's projects; only its form
// is checked here.
const testLifecycleID = "Lifecycles-1"

// defaultGroup returns the id of the seeded Default Project Group.
func defaultGroup(t *testing.T, s store.Store) string {
	t.Helper()
	var groups []cuttle.ProjectGroup
	check(t, s.Read(t.Context(), func(tx *collection.Tx) (err error) {
		groups, _, err = resources.ProjectGroups.List(t.Context(), tx, collection.Query{Space: space, Name: cuttle.DefaultProjectGroupName})
		return err
	}), "reading the Default Project Group")
	if len(groups) != 1 {
		t.Fatalf("%d groups named %q, want the seeded one", len(groups), cuttle.DefaultProjectGroupName)
	}
	return groups[0].ID
}

func newProject(t *testing.T, s store.Store, name string) cuttle.Project {
	return cuttle.Project{Resource: cuttle.Resource{SpaceID: space}, Name: name, Slug: cuttle.Slug(name),
		LifecycleId: testLifecycleID, ProjectGroupId: defaultGroup(t, s)}
}

// insertProject stores a new project named name.
func insertProject(t *testing.T, s store.Store, name string) cuttle.Project {
	t.Helper()
	p := newProject(t, s, name)
	check(t, update(t, s, func(tx *collection.Tx) error { return resources.Projects.Insert(t.Context(), tx, &p) }), "inserting a project")
	return p
}

// projectsCase: the named-collection tests, the ids the insert derives,
// and the project group reference.
func projectsCase() collectionCase {
	return collectionCase{name: resources.Projects.Table, run: func(t *testing.T, s store.Store) {
		testNamedCollection(t, s, resources.Projects, newProject, func(p *cuttle.Project) *string { return &p.Name })
		ctx := t.Context()
		p := insertProject(t, s, "Derived")
		var got cuttle.Project
		check(t, s.Read(ctx, func(tx *collection.Tx) (err error) { got, err = resources.Projects.Get(ctx, tx, p.ID); return err }), "Get")
		if got.DeploymentProcessId != "deploymentprocess-"+p.ID || got.VariableSetId != "variableset-"+p.ID || got.Version != 0 {
			t.Errorf("a new project %s has process %q, variable set %q, version %d", p.ID, got.DeploymentProcessId, got.VariableSetId, got.Version)
		}
		bad := newProject(t, s, "No group")
		bad.ProjectGroupId = "ProjectGroups-999999"
		err := update(t, s, func(tx *collection.Tx) error { return resources.Projects.Insert(ctx, tx, &bad) })
		wantKind(t, err, cuttle.KindInvalid, "Insert of a project of an unknown group")
		err = update(t, s, func(tx *collection.Tx) error { return resources.ProjectGroups.Delete(ctx, tx, p.ProjectGroupId) })
		wantKind(t, err, cuttle.KindConflict, "Delete of a project group with projects")
	}}
}

// channelsCase: the named-collection tests on the channels of one project
// (names are unique per project), and the same name in another project.
func channelsCase() collectionCase {
	var (
		mu       sync.Mutex
		projects = map[store.Store]string{}
	)
	projectOf := func(t *testing.T, s store.Store) string {
		mu.Lock()
		defer mu.Unlock()
		if projects[s] == "" {
			projects[s] = insertProject(t, s, "Channelled").ID
		}
		return projects[s]
	}
	make := func(t *testing.T, s store.Store, name string) cuttle.Channel {
		return cuttle.Channel{Resource: cuttle.Resource{SpaceID: space}, Name: name, ProjectId: projectOf(t, s),
			Type: cuttle.ChannelTypeLifecycle, Rules: []cuttle.ChannelRule{}, TenantTags: []string{}}
	}
	return collectionCase{name: resources.Channels.Table, run: func(t *testing.T, s store.Store) {
		testNamedCollection(t, s, resources.Channels, make, func(c *cuttle.Channel) *string { return &c.Name })
		ctx := t.Context()
		other := insertProject(t, s, "Other")
		c := make(t, s, "Doc 01")
		c.ProjectId = other.ID
		check(t, update(t, s, func(tx *collection.Tx) error { return resources.Channels.Insert(ctx, tx, &c) }), "Insert of a name another project's channel has")
		c.ProjectId = "Projects-999999"
		err := update(t, s, func(tx *collection.Tx) error { return resources.Channels.Insert(ctx, tx, &c) })
		wantKind(t, err, cuttle.KindInvalid, "Insert of a channel of an unknown project")
		err = update(t, s, func(tx *collection.Tx) error { return resources.Projects.Delete(ctx, tx, other.ID) })
		wantKind(t, err, cuttle.KindConflict, "Delete of a project with channels")
	}}
}

// ownedCase tests a collection of documents owned one-to-one by a project,
// with explicit ids: make returns a valid new document of the project p,
// with its id set.
func ownedCase[T any](d *collection.Def[T], make func(p *cuttle.Project) T, owner func(*T) *string) collectionCase {
	return collectionCase{name: d.Table, run: func(t *testing.T, s store.Store) {
		testOwnedCollection(t, s, d, make, owner)
	}}
}

func testOwnedCollection[T any](t *testing.T, s store.Store, d *collection.Def[T], make func(p *cuttle.Project) T, owner func(*T) *string) {
	ctx := t.Context()
	initCluster(t, s)
	notes, err := s.Listen(ctx)
	check(t, err, "Listen")
	p := insertProject(t, s, "Owner")
	doc := make(&p)
	id := metaOf(&doc).ID
	check(t, update(t, s, func(tx *collection.Tx) error { return d.Insert(ctx, tx, &doc) }), "Insert")
	if m := metaOf(&doc); m.ID != id || m.Version != 0 {
		t.Fatalf("Insert gave id %q, version %d; want %s, 0", m.ID, m.Version, id)
	}
	waitNote(t, notes, id)
	check(t, s.Read(ctx, func(tx *collection.Tx) error {
		got, err := d.Get(ctx, tx, id)
		if err != nil {
			return err
		}
		if metaOf(&got).ID != id || *owner(&got) != p.ID || metaOf(&got).SpaceID != space {
			t.Errorf("Get(%s) = %+v", id, got)
		}
		_, err = d.Get(ctx, tx, p.ID)
		wantKind(t, err, cuttle.KindNotFound, "Get of the project's id")
		return nil
	}), "Read")

	// The same id twice, an id of another form, an unknown owner.
	again := make(&p)
	err = update(t, s, func(tx *collection.Tx) error { return d.Insert(ctx, tx, &again) })
	wantKind(t, err, cuttle.KindConflict, "Insert of an id taken")
	if err != nil && !strings.Contains(err.Error(), id) {
		t.Errorf("Insert of an id taken: %q does not name %s", err, id)
	}
	metaOf(&again).ID = "Projects-1"
	err = update(t, s, func(tx *collection.Tx) error { return d.Insert(ctx, tx, &again) })
	wantKind(t, err, cuttle.KindInvalid, "Insert with an id of another form")
	orphan := make(&cuttle.Project{Resource: cuttle.Resource{ID: "Projects-999999"}})
	err = update(t, s, func(tx *collection.Tx) error { return d.Insert(ctx, tx, &orphan) })
	wantKind(t, err, cuttle.KindInvalid, "Insert for an unknown project")

	// Update: optimistic on the version.
	stale := doc
	check(t, update(t, s, func(tx *collection.Tx) error { return d.Update(ctx, tx, &doc) }), "Update")
	if metaOf(&doc).Version != 1 {
		t.Errorf("Update: version %d, want 1", metaOf(&doc).Version)
	}
	err = update(t, s, func(tx *collection.Tx) error { return d.Update(ctx, tx, &stale) })
	wantKind(t, err, cuttle.KindConflict, "Update at a stale version")

	// The project cannot go first; a failed unit of work leaves all.
	err = update(t, s, func(tx *collection.Tx) error { return resources.Projects.Delete(ctx, tx, p.ID) })
	wantKind(t, err, cuttle.KindConflict, "Delete of the owning project")
	boom := errors.New("boom")
	err = update(t, s, func(tx *collection.Tx) error {
		if err := d.Delete(ctx, tx, id); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("a failed unit of work returned %v, want its error", err)
	}
	check(t, s.Read(ctx, func(tx *collection.Tx) error { _, err := d.Get(ctx, tx, id); return err }), "Get after a rolled-back delete")

	// Both go in one unit of work.
	check(t, update(t, s, func(tx *collection.Tx) error {
		if err := d.Delete(ctx, tx, id); err != nil {
			return err
		}
		return resources.Projects.Delete(ctx, tx, p.ID)
	}), "Delete of the document, then its project")
	waitNote(t, notes, id)
	err = s.Read(ctx, func(tx *collection.Tx) error { _, err := d.Get(ctx, tx, id); return err })
	wantKind(t, err, cuttle.KindNotFound, "Get after the delete")
}

// processesCase and variableSetsCase: the owned-collection tests.
func processesCase() collectionCase {
	return ownedCase(resources.DeploymentProcesses, func(p *cuttle.Project) cuttle.DeploymentProcess {
		return cuttle.DeploymentProcess{Resource: cuttle.Resource{ID: cuttle.DeploymentProcessID(p.ID), SpaceID: space}, ProjectId: p.ID,
			Steps: []cuttle.DeploymentStep{{Name: "a step", Actions: []cuttle.DeploymentAction{}}}}
	}, func(p *cuttle.DeploymentProcess) *string { return &p.ProjectId })
}

func variableSetsCase() collectionCase {
	return ownedCase(resources.VariableSets, func(p *cuttle.Project) cuttle.VariableSet {
		return cuttle.VariableSet{Resource: cuttle.Resource{ID: cuttle.VariableSetID(p.ID), SpaceID: space}, OwnerId: p.ID,
			Variables: []variables.Variable{{Name: "Owner", Value: &p.ID}}, ScopeValues: cuttle.EmptyScopeValues()}
	}, func(v *cuttle.VariableSet) *string { return &v.OwnerId })
}
