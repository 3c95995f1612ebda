package cuttle_test

import (
	"strings"
	"testing"

	"github.com/cuttledeploy/cuttle"
)

// TestEffectivePhases: a lifecycle's own phases, or one per environment in
// sort order, then name.
func TestEffectivePhases(t *testing.T) {
	envs := []cuttle.Environment{
		{Resource: cuttle.Resource{ID: "Environments-3"}, Name: "Production", SortOrder: 3},
		{Resource: cuttle.Resource{ID: "Environments-1"}, Name: "dev", SortOrder: 1},
		{Resource: cuttle.Resource{ID: "Environments-2"}, Name: "Staging", SortOrder: 2},
		{Resource: cuttle.Resource{ID: "Environments-4"}, Name: "Canary", SortOrder: 2},
	}
	var none cuttle.Lifecycle
	var got []string
	for _, ph := range none.EffectivePhases(envs) {
		if len(ph.AutomaticDeploymentTargets) != 0 || len(ph.OptionalDeploymentTargets) != 1 || ph.ID != ph.OptionalDeploymentTargets[0] {
			t.Errorf("implicit phase %+v: want its environment as the one optional target and the Id", ph)
		}
		got = append(got, ph.Name+"="+ph.OptionalDeploymentTargets[0])
	}
	if want := "dev=Environments-1 Canary=Environments-4 Staging=Environments-2 Production=Environments-3"; strings.Join(got, " ") != want {
		t.Errorf("EffectivePhases of no phases = %v, want %s", got, want)
	}
	if envs[0].Name != "Production" {
		t.Error("EffectivePhases reordered its argument")
	}
	if phases := none.EffectivePhases(nil); phases == nil || len(phases) != 0 {
		t.Errorf("EffectivePhases without environments = %#v, want an empty list", phases)
	}
	own := cuttle.Lifecycle{Phases: []cuttle.Phase{{ID: "p", Name: "Only", AutomaticDeploymentTargets: []string{"Environments-3"}}}}
	if phases := own.EffectivePhases(envs); len(phases) != 1 || phases[0].Name != "Only" {
		t.Errorf("EffectivePhases of one phase = %+v", phases)
	}
}

// TestLifecycleCheck: defaults, canonical ids, stable phase ids, refusals.
func TestLifecycleCheck(t *testing.T) {
	l := cuttle.Lifecycle{Name: "  Web  ", Phases: []cuttle.Phase{
		{Name: "Test", AutomaticDeploymentTargets: []string{"environments-2"}},
		{Name: "Prod", OptionalDeploymentTargets: []string{"Environments-3"}, MinimumEnvironmentsBeforePromotion: 1,
			ReleaseRetentionPolicy: &cuttle.RetentionPeriod{QuantityToKeep: 3, Unit: "Items"}},
	}}
	if err := l.Check(nil); err != nil {
		t.Fatal(err)
	}
	if l.Name != "Web" || !l.ReleaseRetentionPolicy.ShouldKeepForever || l.TentacleRetentionPolicy.Strategy != "Forever" {
		t.Errorf("checked lifecycle %+v", l)
	}
	ph := l.Phases
	if ph[0].ID == "" || ph[1].ID == "" || ph[0].ID == ph[1].ID || ph[0].OptionalDeploymentTargets == nil || ph[1].AutomaticDeploymentTargets == nil {
		t.Errorf("phases %+v: want distinct ids and no null lists", ph)
	}
	if ph[0].AutomaticDeploymentTargets[0] != "Environments-2" || ph[1].ReleaseRetentionPolicy.Strategy != "Count" || ph[1].TentacleRetentionPolicy != nil {
		t.Errorf("phases %+v", ph)
	}
	if got := strings.Join(l.EnvironmentIDs(), ","); got != "Environments-2,Environments-3" {
		t.Errorf("EnvironmentIDs = %s", got)
	}
	// An update that sends a phase without its id keeps the id of the phase of that name.
	old := l
	next := cuttle.Lifecycle{Name: "Web", Phases: []cuttle.Phase{{Name: "prod"}, {Name: "New"}}}
	if err := next.Check(&old); err != nil {
		t.Fatal(err)
	}
	if next.Phases[0].ID != old.Phases[1].ID || next.Phases[1].ID == old.Phases[0].ID {
		t.Errorf("phase ids after an update: %+v, were %+v", next.Phases, old.Phases)
	}

	for what, bad := range map[string]cuttle.Lifecycle{
		"no name":            {Name: " "},
		"unit":               {Name: "x", ReleaseRetentionPolicy: &cuttle.RetentionPeriod{QuantityToKeep: 1, Unit: "Weeks"}},
		"no unit":            {Name: "x", TentacleRetentionPolicy: &cuttle.RetentionPeriod{QuantityToKeep: 1}},
		"keep none":          {Name: "x", ReleaseRetentionPolicy: &cuttle.RetentionPeriod{Unit: "Days"}},
		"negative":           {Name: "x", ReleaseRetentionPolicy: &cuttle.RetentionPeriod{QuantityToKeep: -1, Unit: "Days", ShouldKeepForever: true}},
		"strategy":           {Name: "x", ReleaseRetentionPolicy: &cuttle.RetentionPeriod{QuantityToKeep: 1, Unit: "Days", Strategy: "Forever"}},
		"unknown strategy":   {Name: "x", ReleaseRetentionPolicy: &cuttle.RetentionPeriod{QuantityToKeep: 1, Unit: "Days", Strategy: "Sometimes"}},
		"phase unit":         {Name: "x", Phases: []cuttle.Phase{{Name: "a", TentacleRetentionPolicy: &cuttle.RetentionPeriod{QuantityToKeep: 1, Unit: "days"}}}},
		"phase name":         {Name: "x", Phases: []cuttle.Phase{{Name: ""}}},
		"same phase names":   {Name: "x", Phases: []cuttle.Phase{{Name: "a"}, {Name: "A"}}},
		"same phase ids":     {Name: "x", Phases: []cuttle.Phase{{ID: "p", Name: "a"}, {ID: "p", Name: "b"}}},
		"environment id":     {Name: "x", Phases: []cuttle.Phase{{Name: "a", AutomaticDeploymentTargets: []string{"Production"}}}},
		"environment twice":  {Name: "x", Phases: []cuttle.Phase{{Name: "a", AutomaticDeploymentTargets: []string{"Environments-1"}}, {Name: "b", OptionalDeploymentTargets: []string{"environments-1"}}}},
		"minimum over":       {Name: "x", Phases: []cuttle.Phase{{Name: "a", AutomaticDeploymentTargets: []string{"Environments-1"}, MinimumEnvironmentsBeforePromotion: 2}}},
		"minimum negative":   {Name: "x", Phases: []cuttle.Phase{{Name: "a", MinimumEnvironmentsBeforePromotion: -1}}},
		"forever with count": {Name: "x", ReleaseRetentionPolicy: &cuttle.RetentionPeriod{Unit: "Days", ShouldKeepForever: true, Strategy: "Count"}},
	} {
		if err := bad.Check(nil); !cuttle.IsKind(err, cuttle.KindInvalid) {
			t.Errorf("%s: Check = %v, want KindInvalid", what, err)
		}
	}
}
