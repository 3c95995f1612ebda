package storetest

import (
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// tagSetsCase: the named-collection suite, and tag ids and canonical names
// derived at insert.
func tagSetsCase() collectionCase {
	make := func(t *testing.T, s store.Store, name string) cuttle.TagSet {
		ts := cuttle.TagSet{Resource: cuttle.Resource{SpaceID: space}, Name: name, Tags: []cuttle.Tag{{Name: "Europe", Color: "#333333"}}}
		check(t, ts.Check(), "TagSet.Check")
		return ts
	}
	return collectionCase{name: resources.TagSets.Table, run: func(t *testing.T, s store.Store) {
		testNamedCollection(t, s, resources.TagSets, make, func(ts *cuttle.TagSet) *string { return &ts.Name })
		ts := make(t, s, "Region")
		check(t, update(t, s, func(tx *collection.Tx) error { return resources.TagSets.Insert(t.Context(), tx, &ts) }), "Insert")
		if tag := ts.Tags[0]; tag.Id != ts.ID+"/Europe" || tag.CanonicalTagName != "Region/Europe" {
			t.Errorf("the inserted tag: %+v; want Id %s/Europe and CanonicalTagName Region/Europe", tag, ts.ID)
		}
	}}
}

// tenantsCase: the named-collection suite, and the references to projects
// and environments: unknown ones refused, used ones not deletable, the
// project filter.
func tenantsCase() collectionCase {
	make := func(t *testing.T, s store.Store, name string) cuttle.Tenant {
		return cuttle.Tenant{Resource: cuttle.Resource{SpaceID: space}, Name: name, ProjectEnvironments: map[string][]string{}, TenantTags: []string{}}
	}
	return collectionCase{name: resources.Tenants.Table, run: func(t *testing.T, s store.Store) {
		testNamedCollection(t, s, resources.Tenants, make, func(tn *cuttle.Tenant) *string { return &tn.Name })
		ctx := t.Context()
		p := insertProject(t, s, "Connected")
		env := sharedEnvironment(t, s)
		tn := make(t, s, "Acme")
		tn.ProjectEnvironments[p.ID] = []string{env}
		check(t, update(t, s, func(tx *collection.Tx) error { return resources.Tenants.Insert(ctx, tx, &tn) }), "Insert a connected tenant")

		for what, pe := range map[string]map[string][]string{
			"an unknown project":     {"Projects-999999": {env}},
			"an unknown environment": {p.ID: {"Environments-999999"}},
		} {
			bad := make(t, s, "Bad")
			bad.ProjectEnvironments = pe
			err := update(t, s, func(tx *collection.Tx) error { return resources.Tenants.Insert(ctx, tx, &bad) })
			wantKind(t, err, cuttle.KindInvalid, "Insert of a tenant of "+what)
		}
		err := update(t, s, func(tx *collection.Tx) error { return resources.Environments.Delete(ctx, tx, env) })
		wantKind(t, err, cuttle.KindConflict, "Delete of an environment a tenant deploys to")
		check(t, s.Read(ctx, func(tx *collection.Tx) error {
			ts, n, err := resources.Tenants.List(ctx, tx, collection.Query{Space: space, Where: map[string]any{resources.TenantProjects: p.ID}})
			if err == nil && (n != 1 || ts[0].ID != tn.ID) {
				t.Errorf("the tenants of %s: %+v of %d; want %s alone", p.ID, ts, n, tn.ID)
			}
			return err
		}), "List by project")
	}}
}
