package resources

import (
	"context"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// Lifecycles are the lifecycles. Their phases' environments are extracted
// to environment_ids, which refers to Environments: each must exist, and
// an environment that a lifecycle names cannot be deleted.
var Lifecycles = &collection.Def[cuttle.Lifecycle]{
	Table: "lifecycles", Prefix: "Lifecycles-", Noun: "lifecycle", Spaced: true,
	Columns: []collection.Column[cuttle.Lifecycle]{
		name(func(l *cuttle.Lifecycle) string { return l.Name }),
		{Name: LifecycleEnvironments, Kind: collection.IDs, Refers: Environments,
			Value: func(l *cuttle.Lifecycle) any { return l.EnvironmentIDs() }},
	},
	Order: "name",
}

// LifecycleEnvironments is the column of Lifecycles that holds the ids of
// the environments of a lifecycle's phases: a filter on it selects the
// lifecycles that name an environment.
const LifecycleEnvironments = "environment_ids"

// seedDefaultLifecycle creates the Default Lifecycle: no phases (one per
// environment), and everything kept forever, as Octopus starts.
func seedDefaultLifecycle(ctx context.Context, tx *collection.Tx) error {
	return seedNamed(ctx, tx, Lifecycles, &cuttle.Lifecycle{
		Resource: cuttle.Resource{SpaceID: DefaultSpaceID}, Name: cuttle.DefaultLifecycleName,
		Description: "The lifecycle a space starts with: one phase per environment, in the environments' order.",
		Phases:      []cuttle.Phase{}, ReleaseRetentionPolicy: cuttle.KeepForever(), TentacleRetentionPolicy: cuttle.KeepForever(),
	})
}
