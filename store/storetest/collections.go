package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// collectionCase is one declared collection under the conformance suite:
// named(name) returns a valid new document of that name (its references
// made with s where it needs any), rename changes the name of one.
type collectionCase struct {
	name string
	run  func(t *testing.T, s store.Store)
}

// collectionCases lists every collection of resources.All. A new resource
// adds its case here; TestEveryCollectionHasACase-style coverage is
// checked by testCollectionsCovered.
func collectionCases() []collectionCase {
	return []collectionCase{
		namedCase(resources.ProjectGroups, func(t *testing.T, s store.Store, name string) cuttle.ProjectGroup {
			return cuttle.ProjectGroup{Resource: cuttle.Resource{SpaceID: space}, Name: name, EnvironmentIds: []string{}}
		}, func(g *cuttle.ProjectGroup) *string { return &g.Name }),
		namedCase(resources.Environments, func(t *testing.T, s store.Store, name string) cuttle.Environment {
			return cuttle.Environment{Resource: cuttle.Resource{SpaceID: space}, Name: name, EnvironmentTags: []string{}}
		}, func(e *cuttle.Environment) *string { return &e.Name }),
		namedCase(resources.Users, func(t *testing.T, s store.Store, name string) cuttle.User {
			return cuttle.User{Username: name, DisplayName: name, IsActive: true}
		}, func(u *cuttle.User) *string { return &u.Username }),
		namedCase(resources.Teams, func(t *testing.T, s store.Store, name string) cuttle.Team {
			return cuttle.Team{Name: name, MemberUserIds: []string{}}
		}, func(tm *cuttle.Team) *string { return &tm.Name }),
		lifecycleCase(), machinePolicyCase(),
		projectsCase(),
		channelsCase(),
		processesCase(),
		variableSetsCase(),
		tagSetsCase(), tenantsCase(),
		releasesCase(),
		deploymentsCase(),
		packagesCase(),
	}
}

// space is the space the suite's documents belong to.
const space = "Spaces-1"

// namedCase tests a collection of named documents: make returns a valid
// new document named name, nameOf points at its name.
func namedCase[T any](d *collection.Def[T], make func(t *testing.T, s store.Store, name string) T, nameOf func(*T) *string) collectionCase {
	return collectionCase{name: d.Table, run: func(t *testing.T, s store.Store) {
		testNamedCollection(t, s, d, make, nameOf)
	}}
}

func metaOf[T any](doc *T) *cuttle.Resource {
	return any(doc).(interface{ Meta() *cuttle.Resource }).Meta()
}

func update(t *testing.T, s store.Store, fn func(tx *collection.Tx) error) error {
	t.Helper()
	return s.Update(t.Context(), fn)
}

func testNamedCollection[T any](t *testing.T, s store.Store, d *collection.Def[T], make func(*testing.T, store.Store, string) T, nameOf func(*T) *string) {
	ctx := t.Context()
	initCluster(t, s)
	notes, err := s.Listen(ctx)
	check(t, err, "Listen")

	// Insert assigns ids of the collection's prefix and version 0.
	var docs []T
	for i := range 12 {
		doc := make(t, s, fmt.Sprintf("Doc %02d", i))
		check(t, update(t, s, func(tx *collection.Tx) error { return d.Insert(ctx, tx, &doc) }), "Insert")
		m := metaOf(&doc)
		if !strings.HasPrefix(m.ID, d.Prefix) || m.Version != 0 {
			t.Fatalf("Insert gave id %q, version %d; want %sN, 0", m.ID, m.Version, d.Prefix)
		}
		docs = append(docs, doc)
	}
	first := metaOf(&docs[0]).ID
	waitNote(t, notes, first)

	// Get, and the ids of nothing.
	check(t, s.Read(ctx, func(tx *collection.Tx) error {
		got, err := d.Get(ctx, tx, first)
		if err != nil {
			return err
		}
		if *nameOf(&got) != "Doc 00" || metaOf(&got).ID != first || (d.Spaced && metaOf(&got).SpaceID != space) {
			t.Errorf("Get(%s) = %+v", first, got)
		}
		for _, bad := range []string{"", d.Prefix + "0", d.Prefix + "999999", "Other-1", d.Prefix + "x", strings.ToLower(first) + "9999"} {
			_, err := d.Get(ctx, tx, bad)
			wantKind(t, err, cuttle.KindNotFound, "Get("+bad+")")
		}
		if got, err := d.Get(ctx, tx, strings.ToLower(first)); err != nil || metaOf(&got).ID != first {
			t.Errorf("Get of the id in lower case = %v, %v; want %s", metaOf(&got).ID, err, first)
		}
		return nil
	}), "Read")

	// Lists: pages with the total, names exact and partial ignoring case,
	// ids, an empty page past the end.
	list := func(q collection.Query) ([]string, int) {
		t.Helper()
		q.Space = space
		var (
			page  []T
			total int
		)
		check(t, s.Read(ctx, func(tx *collection.Tx) (err error) { page, total, err = d.List(ctx, tx, q); return err }), "List")
		var names []string
		for i := range page {
			names = append(names, *nameOf(&page[i]))
		}
		return names, total
	}
	names, total := list(collection.Query{Skip: 10, Take: 5})
	if total < 12 || len(names) != min(5, total-10) {
		t.Errorf("List skip 10 take 5 = %v of %d; want %d names of at least 12", names, total, min(5, total-10))
	}
	if names, total := list(collection.Query{Skip: 1000, Take: 5}); len(names) != 0 || total < 12 {
		t.Errorf("List past the end = %v of %d; want none of at least 12", names, total)
	}
	if names, total := list(collection.Query{PartialName: "OC 0", Take: -1}); len(names) != 10 || total != 10 {
		t.Errorf("List partialName %q = %v of %d; want Doc 00 to Doc 09", "OC 0", names, total)
	}
	if names, _ := list(collection.Query{PartialName: "%"}); len(names) != 0 {
		t.Errorf("List partialName %% = %v; want nothing (a wildcard is a plain character)", names)
	}
	if names, _ := list(collection.Query{Name: "doc 03"}); len(names) != 1 || names[0] != "Doc 03" {
		t.Errorf("List name %q = %v; want [Doc 03]", "doc 03", names)
	}
	ids := []string{metaOf(&docs[2]).ID, metaOf(&docs[5]).ID, "Other-1"}
	if names, total := list(collection.Query{IDs: ids}); len(names) != 2 || total != 2 {
		t.Errorf("List ids %v = %v of %d; want Doc 02 and Doc 05", ids, names, total)
	}

	// A duplicate name, in another case, is a conflict and changes nothing.
	dup := make(t, s, "DOC 01")
	err = update(t, s, func(tx *collection.Tx) error { return d.Insert(ctx, tx, &dup) })
	wantKind(t, err, cuttle.KindConflict, "Insert of a duplicate name")
	if _, total := list(collection.Query{Name: "doc 01"}); total != 1 {
		t.Errorf("after a refused duplicate, %d documents named doc 01", total)
	}

	// Update: optimistic on the version.
	doc := docs[1]
	*nameOf(&doc) = "Renamed"
	check(t, update(t, s, func(tx *collection.Tx) error { return d.Update(ctx, tx, &doc) }), "Update")
	if metaOf(&doc).Version != 1 {
		t.Errorf("Update: version %d, want 1", metaOf(&doc).Version)
	}
	stale := docs[1] // version 0
	*nameOf(&stale) = "Stale"
	err = update(t, s, func(tx *collection.Tx) error { return d.Update(ctx, tx, &stale) })
	wantKind(t, err, cuttle.KindConflict, "Update at a stale version")
	if names, _ := list(collection.Query{Name: "Stale"}); len(names) != 0 {
		t.Error("a stale update changed the document")
	}
	taken := docs[2]
	*nameOf(&taken) = "renamed"
	err = update(t, s, func(tx *collection.Tx) error { return d.Update(ctx, tx, &taken) })
	wantKind(t, err, cuttle.KindConflict, "Update to a taken name")
	gone := docs[3]
	metaOf(&gone).ID = d.Prefix + "999999"
	err = update(t, s, func(tx *collection.Tx) error { return d.Update(ctx, tx, &gone) })
	wantKind(t, err, cuttle.KindNotFound, "Update of an unknown id")

	// A unit of work that fails half-way leaves nothing and notifies nobody.
	half := make(t, s, "Half")
	boom := errors.New("boom")
	err = update(t, s, func(tx *collection.Tx) error {
		if err := d.Insert(ctx, tx, &half); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("a failed unit of work returned %v, want its error", err)
	}
	if names, _ := list(collection.Query{Name: "Half"}); len(names) != 0 {
		t.Error("a rolled-back insert is visible")
	}

	// Delete.
	last := metaOf(&docs[11]).ID
	check(t, update(t, s, func(tx *collection.Tx) error { return d.Delete(ctx, tx, last) }), "Delete")
	err = update(t, s, func(tx *collection.Tx) error { return d.Delete(ctx, tx, last) })
	wantKind(t, err, cuttle.KindNotFound, "Delete twice")
	if names, _ := list(collection.Query{IDs: []string{last}}); len(names) != 0 {
		t.Error("a deleted document is listed")
	}
	// The rolled-back insert never notified; the delete did.
	waitNote(t, notes, last)
	if m := metaOf(&half); m.ID != "" {
		for _, n := range drain(notes) {
			if n.Payload == m.ID {
				t.Errorf("the rolled-back insert of %s was notified", m.ID)
			}
		}
	}
}

// waitNote waits for a notification of a document change of id.
func waitNote(t *testing.T, notes <-chan store.Notification, id string) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case n := <-notes:
			if n.Channel == store.ChannelDocuments && n.Payload == id {
				return
			}
		case <-deadline:
			t.Fatalf("no notification of %s", id)
		}
	}
}

// drain returns the notifications that arrive within a short while.
func drain(notes <-chan store.Notification) []store.Notification {
	var out []store.Notification
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	for {
		select {
		case n := <-notes:
			out = append(out, n)
		case <-ctx.Done():
			return out
		}
	}
}

// testCollectionsCovered fails if a declared collection has no case.
func testCollectionsCovered(t *testing.T, s store.Store) {
	have := map[string]bool{}
	for _, c := range collectionCases() {
		have[c.name] = true
	}
	for _, tb := range resources.All.Tables() {
		if n := collection.TableName(tb); !have[n] && !uncovered[n] {
			t.Errorf("the collection %s has no conformance case in store/storetest/collections.go", n)
		}
	}
}

// uncovered are collections tested by their own cases rather than
// testNamedCollection (for example documents without names).
var uncovered = map[string]bool{
	resources.APIKeys.Table: true, // unnamed: testAPIKeys
	// Written by releases only: releasesCase.
	resources.ProcessSnapshots.Table:     true,
	resources.VariableSetSnapshots.Table: true,
	// With the deployments: deploymentsCase.
	resources.Interruptions.Table: true,
	// With the packages: packagesCase.
	resources.Artifacts.Table: true,
	// Sign-in's, tested through the API (api/signin_test.go).
	resources.Credentials.Table: true, resources.Sessions.Table: true, resources.LoginFailureCounts.Table: true,
	// The audit log, through the API (api/events_test.go).
	resources.Events.Table: true,
	// Roles, through the API (api/roles_test.go).
	resources.UserRoles.Table: true, resources.ScopedUserRoles.Table: true,
}
