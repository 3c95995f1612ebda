package resources

import (
	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// Environments are the environments, listed by sort order, then name.
// Machines are hand-written (their queries serve agent traffic) and name
// environments by number, so a Column cannot guard an environment's delete
// against them: the API asks the store (store.Store.MachineOfEnvironment).
var Environments = &collection.Def[cuttle.Environment]{
	Table: "environments", Prefix: cuttle.EnvironmentIDPrefix, Noun: "environment", Spaced: true,
	Columns: []collection.Column[cuttle.Environment]{
		name(func(e *cuttle.Environment) string { return e.Name }),
		{Name: "sort_order", Kind: collection.Int, Value: func(e *cuttle.Environment) any { return e.SortOrder }},
	},
	Order: "sort_order, name, id",
}
