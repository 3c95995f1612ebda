package resources

import (
	"context"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// MachinePolicies are the machine policies. Exactly one of a space is its
// default (column is_default); DefaultMachinePolicy finds it.
var MachinePolicies = &collection.Def[cuttle.MachinePolicy]{
	Table: "machine_policies", Prefix: "MachinePolicies-", Noun: "machine policy", Spaced: true,
	Columns: []collection.Column[cuttle.MachinePolicy]{
		name(func(p *cuttle.MachinePolicy) string { return p.Name }),
		{Name: "is_default", Kind: collection.Bool, Value: func(p *cuttle.MachinePolicy) any { return p.IsDefault }},
	},
	Order: "name",
}

// DefaultMachinePolicy returns the default machine policy of the space.
// KindNotFound if it has none (a space's is seeded, and cannot be deleted).
func DefaultMachinePolicy(ctx context.Context, tx *collection.Tx, space string) (cuttle.MachinePolicy, error) {
	ps, _, err := MachinePolicies.List(ctx, tx, collection.Query{Space: space, Where: map[string]any{"is_default": true}, Take: 1})
	if err != nil {
		return cuttle.MachinePolicy{}, err
	}
	if len(ps) == 0 {
		return cuttle.MachinePolicy{}, cuttle.Errorf(cuttle.KindNotFound, "The space %s has no default machine policy.", space)
	}
	return ps[0], nil
}

// seedDefaultMachinePolicy creates the Default Machine Policy, of Octopus's
// defaults, unless the space has a default policy (of whatever name).
func seedDefaultMachinePolicy(ctx context.Context, tx *collection.Tx) error {
	_, err := DefaultMachinePolicy(ctx, tx, DefaultSpaceID)
	if !cuttle.IsKind(err, cuttle.KindNotFound) {
		return err
	}
	p := cuttle.NewMachinePolicy(cuttle.DefaultMachinePolicyName)
	p.SpaceID, p.IsDefault = DefaultSpaceID, true
	p.Description = "The policy of every deployment target that names no other."
	return MachinePolicies.Insert(ctx, tx, &p)
}
