package storetest

import (
	"testing"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// lifecycleCase: the named-collection suite, the seeded Default Lifecycle,
// and the filter on the environments of the phases.
func lifecycleCase() collectionCase {
	make := func(name string, envs ...string) cuttle.Lifecycle {
		return cuttle.Lifecycle{Resource: cuttle.Resource{SpaceID: space}, Name: name,
			Phases:                 []cuttle.Phase{{ID: "p1", Name: "Only", AutomaticDeploymentTargets: envs, OptionalDeploymentTargets: []string{}}},
			ReleaseRetentionPolicy: cuttle.KeepForever(), TentacleRetentionPolicy: cuttle.KeepForever()}
	}
	named := namedCase(resources.Lifecycles, func(t *testing.T, s store.Store, name string) cuttle.Lifecycle {
		return make(name, sharedEnvironment(t, s))
	}, func(l *cuttle.Lifecycle) *string { return &l.Name })
	return collectionCase{name: named.name, run: func(t *testing.T, s store.Store) {
		ctx := t.Context()
		initCluster(t, s)
		d := resources.Lifecycles
		using := func(env string) []string {
			t.Helper()
			var names []string
			check(t, s.Read(ctx, func(tx *collection.Tx) error {
				ls, _, err := d.List(ctx, tx, collection.Query{Space: space, Take: -1, Where: map[string]any{resources.LifecycleEnvironments: env}})
				for _, l := range ls {
					names = append(names, l.Name)
				}
				return err
			}), "List by environment")
			return names
		}
		check(t, s.Read(ctx, func(tx *collection.Tx) error {
			ls, n, err := d.List(ctx, tx, collection.Query{Space: space, Name: cuttle.DefaultLifecycleName})
			if err == nil && (n != 1 || len(ls[0].Phases) != 0 || !ls[0].ReleaseRetentionPolicy.ShouldKeepForever) {
				t.Errorf("the seeded lifecycle: %+v of %d; want the Default Lifecycle without phases, keeping everything", ls, n)
			}
			return err
		}), "List the Default Lifecycle")

		// Environments whose ids show that a filter on one matches no other
		// that contains its digits.
		env := map[string]string{}
		for _, n := range []string{"1", "2", "3", "12"} {
			env[n] = environment(t, s, "Env "+n).Resource.ID
		}
		a, b := make("Uses 12 and 3", env["12"], env["3"]), make("Uses 1")
		b.Phases[0].OptionalDeploymentTargets = []string{env["1"]}
		check(t, update(t, s, func(tx *collection.Tx) error {
			if err := d.Insert(ctx, tx, &a); err != nil {
				return err
			}
			return d.Insert(ctx, tx, &b)
		}), "Insert")
		for n, want := range map[string]string{"12": "Uses 12 and 3", "3": "Uses 12 and 3", "1": "Uses 1", "2": ""} {
			if got := using(env[n]); (want == "" && len(got) != 0) || (want != "" && (len(got) != 1 || got[0] != want)) {
				t.Errorf("lifecycles using %s = %v, want %q", env[n], got, want)
			}
		}
		// A change of the phases moves the column with them.
		a.Phases[0].AutomaticDeploymentTargets = []string{env["2"]}
		check(t, update(t, s, func(tx *collection.Tx) error { return d.Update(ctx, tx, &a) }), "Update")
		if got := using(env["12"]); len(got) != 0 {
			t.Errorf("after the update, lifecycles using %s = %v", env["12"], got)
		}
		if got := using(env["2"]); len(got) != 1 {
			t.Errorf("after the update, lifecycles using %s = %v", env["2"], got)
		}
		// An environment a lifecycle names cannot be deleted.
		err := update(t, s, func(tx *collection.Tx) error { return resources.Environments.Delete(ctx, tx, env["2"]) })
		wantKind(t, err, cuttle.KindConflict, "deleting an environment a lifecycle names")
		// A lifecycle cannot name an environment that does not exist.
		bad := make("Names nothing", resources.Environments.Prefix+"999999")
		err = update(t, s, func(tx *collection.Tx) error { return d.Insert(ctx, tx, &bad) })
		wantKind(t, err, cuttle.KindInvalid, "inserting a lifecycle that names no environment")
		check(t, s.Read(ctx, func(tx *collection.Tx) error {
			got, err := d.Get(ctx, tx, a.ID)
			if err == nil && (len(got.Phases) != 1 || got.Phases[0].ID != "p1" || got.Phases[0].AutomaticDeploymentTargets[0] != env["2"]) {
				t.Errorf("Get after the update = %+v", got)
			}
			return err
		}), "Get")
		check(t, update(t, s, func(tx *collection.Tx) error {
			if err := d.Delete(ctx, tx, a.ID); err != nil {
				return err
			}
			return d.Delete(ctx, tx, b.ID)
		}), "Delete")
		named.run(t, s)
	}}
}

// machinePolicyCase: the named-collection suite and the seeded default
// policy, which DefaultMachinePolicy finds.
func machinePolicyCase() collectionCase {
	named := namedCase(resources.MachinePolicies, func(t *testing.T, s store.Store, name string) cuttle.MachinePolicy {
		p := cuttle.NewMachinePolicy(name)
		p.SpaceID = space
		return p
	}, func(p *cuttle.MachinePolicy) *string { return &p.Name })
	return collectionCase{name: named.name, run: func(t *testing.T, s store.Store) {
		ctx := t.Context()
		initCluster(t, s)
		check(t, s.Read(ctx, func(tx *collection.Tx) error {
			p, err := resources.DefaultMachinePolicy(ctx, tx, space)
			if err == nil && (p.Name != cuttle.DefaultMachinePolicyName || !p.IsDefault ||
				p.MachineHealthCheckPolicy.HealthCheckInterval != "01:00:00" || p.ConnectionConnectTimeout != "00:01:00") {
				t.Errorf("the default machine policy: %+v", p)
			}
			if err == nil {
				if _, n, err := resources.MachinePolicies.List(ctx, tx, collection.Query{Space: space, Where: map[string]any{"is_default": false}}); err != nil || n != 0 {
					t.Errorf("policies not the default: %d, %v; want none", n, err)
				}
			}
			return err
		}), "DefaultMachinePolicy")
		named.run(t, s)
		check(t, s.Read(ctx, func(tx *collection.Tx) error {
			_, n, err := resources.MachinePolicies.List(ctx, tx, collection.Query{Space: space, Where: map[string]any{"is_default": true}})
			if err == nil && n != 1 {
				t.Errorf("%d default policies, want 1", n)
			}
			return err
		}), "List the defaults")
	}}
}
