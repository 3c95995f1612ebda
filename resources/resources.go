// Package resources declares cuttle's document resources: for each, its
// collection (table, id prefix, extracted columns, references) in one
// place, from which the stores make their tables (store/collection) and the
// API its routes. To add a resource, declare its type in the root package,
// its collection here, add it to All, and serve it in package api.
package resources

import (
	"context"
	"fmt"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// name returns the Name column of a named document: unique per space,
// ignoring case, as in Octopus.
func name[T any](get func(*T) string) collection.Column[T] {
	return collection.Column[T]{Name: "name", Fold: true, Unique: true, Value: func(d *T) any { return get(d) }}
}

// ProjectGroups are the project groups.
var ProjectGroups = &collection.Def[cuttle.ProjectGroup]{
	Table: "project_groups", Prefix: "ProjectGroups-", Noun: "project group", Spaced: true,
	Columns: []collection.Column[cuttle.ProjectGroup]{name(func(g *cuttle.ProjectGroup) string { return g.Name })},
	Order:   "name",
}

// All is every collection, in the order their tables are made.
var All = collection.NewSet(
	Environments,
	Users, APIKeys, Teams,
	ProjectGroups,
	Lifecycles,
	MachinePolicies,
	Projects, Channels, DeploymentProcesses, VariableSets,
	TagSets, Tenants,
	ProcessSnapshots, VariableSetSnapshots, Releases,
	Deployments, Interruptions,
	Packages, Artifacts,
	Credentials, Sessions, LoginFailureCounts,
	Events,
	UserRoles, ScopedUserRoles,
)

// Seed creates the documents every installation starts with (the "Default
// Project Group" of the default space, and so on) where they are missing.
// The stores run it at open, after Sync, in the same locked transaction.
func Seed(ctx context.Context, tx *collection.Tx) error {
	for _, seed := range seeds {
		if err := seed(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// DefaultSpaceID is the space the seeded documents belong to.
const DefaultSpaceID = "Spaces-1"

// seeds each create one default document if it is missing.
var seeds = []func(ctx context.Context, tx *collection.Tx) error{
	func(ctx context.Context, tx *collection.Tx) error {
		return seedNamed(ctx, tx, ProjectGroups, &cuttle.ProjectGroup{
			Resource: cuttle.Resource{SpaceID: DefaultSpaceID}, Name: cuttle.DefaultProjectGroupName,
			Slug: cuttle.Slug(cuttle.DefaultProjectGroupName), EnvironmentIds: []string{},
		})
	},
	seedDefaultLifecycle,
	seedDefaultMachinePolicy,
	seedTeams,
	seedRoles,
}

// seedNamed inserts doc unless its collection has a document of its name
// (Column "name") in its space.
func seedNamed[T any](ctx context.Context, tx *collection.Tx, d *collection.Def[T], doc *T) error {
	m := any(doc).(interface{ Meta() *cuttle.Resource }).Meta()
	var nameOf string
	for _, c := range d.Columns {
		if c.Name == "name" {
			nameOf = fmt.Sprint(c.Value(doc))
		}
	}
	_, n, err := d.List(ctx, tx, collection.Query{Space: m.SpaceID, Name: nameOf, Take: 1})
	if err != nil || n > 0 {
		return err
	}
	return d.Insert(ctx, tx, doc)
}
