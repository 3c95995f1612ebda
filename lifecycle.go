package cuttle

import (
	"cmp"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Lifecycle is the order in which a project's releases are promoted
// through environments: its phases, each of environments a release is
// deployed to (automatically or by hand) before the next phase opens, and
// how long releases and what they leave on deployment targets are kept.
// A lifecycle without phases has one phase per environment, in the
// environments' sort order (EffectivePhases). Every space has a "Default
// Lifecycle", which has no phases.
type Lifecycle struct {
	Resource
	Name        string  `json:"Name"`
	Description string  `json:"Description"`
	Phases      []Phase `json:"Phases"`
	// ReleaseRetentionPolicy says how long releases are kept;
	// TentacleRetentionPolicy how long what deployments leave on targets.
	// A phase's own policies, when set, override them while a release is
	// in that phase.
	ReleaseRetentionPolicy  *RetentionPeriod `json:"ReleaseRetentionPolicy"`
	TentacleRetentionPolicy *RetentionPeriod `json:"TentacleRetentionPolicy"`
}

// Phase is one step of a lifecycle.
type Phase struct {
	// ID names the phase within its lifecycle; the server assigns a UUID to
	// a phase without one, and keeps it across updates.
	ID   string `json:"Id"`
	Name string `json:"Name"`
	// AutomaticDeploymentTargets are environments a release is deployed to
	// as soon as it enters the phase; OptionalDeploymentTargets are deployed
	// to by hand. Both hold environment ids.
	AutomaticDeploymentTargets []string `json:"AutomaticDeploymentTargets"`
	OptionalDeploymentTargets  []string `json:"OptionalDeploymentTargets"`
	// MinimumEnvironmentsBeforePromotion is how many of the phase's
	// environments must be deployed to before the next phase opens; 0
	// means all of them.
	MinimumEnvironmentsBeforePromotion int `json:"MinimumEnvironmentsBeforePromotion"`
	// IsOptionalPhase lets a release skip the phase.
	IsOptionalPhase bool `json:"IsOptionalPhase"`
	// IsPriorityPhase gives the phase's deployments priority in the queue.
	IsPriorityPhase bool `json:"IsPriorityPhase"`
	// The phase's retention policies; nil means the lifecycle's.
	ReleaseRetentionPolicy  *RetentionPeriod `json:"ReleaseRetentionPolicy"`
	TentacleRetentionPolicy *RetentionPeriod `json:"TentacleRetentionPolicy"`
}

// RetentionPeriod is how much of something is kept: everything
// (ShouldKeepForever), or QuantityToKeep days or items.
type RetentionPeriod struct {
	QuantityToKeep    int    `json:"QuantityToKeep"`
	ShouldKeepForever bool   `json:"ShouldKeepForever"`
	Unit              string `json:"Unit"` // RetentionDays or RetentionItems
	// Strategy is Octopus's name of the kind of period: "Forever", "Count",
	// or "Default" (the space's default). Derived from ShouldKeepForever
	// when empty.
	Strategy string `json:"Strategy"`
}

// Units of a RetentionPeriod.
const (
	RetentionDays  = "Days"
	RetentionItems = "Items"
)

// DefaultLifecycleName is the name of the lifecycle a new space starts with.
const DefaultLifecycleName = "Default Lifecycle"

// KeepForever returns the retention period that keeps everything: what
// Octopus keeps by default, and what a lifecycle that names no policy gets.
func KeepForever() *RetentionPeriod {
	return &RetentionPeriod{ShouldKeepForever: true, Unit: RetentionItems, Strategy: "Forever"}
}

// Check validates and completes a retention period; what says which one it
// is, for the messages.
func (p *RetentionPeriod) Check(what string) error {
	if p.Unit != RetentionDays && p.Unit != RetentionItems {
		return Errorf(KindInvalid, "The Unit of the %s must be %q or %q, not %q.", what, RetentionDays, RetentionItems, p.Unit)
	}
	if p.QuantityToKeep < 0 || (!p.ShouldKeepForever && p.QuantityToKeep == 0 && p.Strategy != "Default") {
		return Errorf(KindInvalid, "The %s keeps QuantityToKeep %s, at least 1, unless ShouldKeepForever is true.", what, strings.ToLower(p.Unit))
	}
	switch {
	case p.Strategy == "" && p.ShouldKeepForever:
		p.Strategy = "Forever"
	case p.Strategy == "":
		p.Strategy = "Count"
	case p.Strategy == "Default":
	case p.Strategy == "Forever" && p.ShouldKeepForever, p.Strategy == "Count" && !p.ShouldKeepForever:
	case p.Strategy == "Forever" || p.Strategy == "Count":
		return Errorf(KindInvalid, "The %s has the Strategy %q but ShouldKeepForever %t.", what, p.Strategy, p.ShouldKeepForever)
	default:
		return Errorf(KindInvalid, "The Strategy of the %s must be Forever, Count or Default, not %q.", what, p.Strategy)
	}
	return nil
}

// Check validates and completes a lifecycle about to be stored: its name,
// its retention policies (KeepForever when absent), its phases (names
// required and distinct, environment ids well-formed, canonical and in at
// most one phase, lists never null) and their ids (old's id of a phase of
// the same name when the phase has none, else a new UUID). old is the
// stored lifecycle it replaces, nil for a new one. Whether the
// environments exist is the caller's to check (EnvironmentIDs).
func (l *Lifecycle) Check(old *Lifecycle) error {
	if err := CheckName(&l.Name, "lifecycle"); err != nil {
		return err
	}
	for _, p := range []struct {
		period **RetentionPeriod
		what   string
	}{{&l.ReleaseRetentionPolicy, "ReleaseRetentionPolicy"}, {&l.TentacleRetentionPolicy, "TentacleRetentionPolicy"}} {
		if *p.period == nil {
			*p.period = KeepForever()
		}
		if err := (*p.period).Check(p.what + " of the lifecycle"); err != nil {
			return err
		}
	}
	if l.Phases == nil {
		l.Phases = []Phase{}
	}
	names, ids, envs := map[string]bool{}, map[string]bool{}, map[string]string{}
	for i := range l.Phases {
		ph := &l.Phases[i]
		if err := CheckName(&ph.Name, "lifecycle's phase"); err != nil {
			return err
		}
		if names[strings.ToLower(ph.Name)] {
			return Errorf(KindInvalid, "The lifecycle has two phases named %q.", ph.Name)
		}
		names[strings.ToLower(ph.Name)] = true
		for _, p := range []struct {
			period *RetentionPeriod
			what   string
		}{{ph.ReleaseRetentionPolicy, "ReleaseRetentionPolicy"}, {ph.TentacleRetentionPolicy, "TentacleRetentionPolicy"}} {
			if p.period != nil {
				if err := p.period.Check(p.what + " of the phase " + ph.Name); err != nil {
					return err
				}
			}
		}
		for _, list := range []*[]string{&ph.AutomaticDeploymentTargets, &ph.OptionalDeploymentTargets} {
			if *list == nil {
				*list = []string{}
			}
			for j, id := range *list {
				n, err := ParseID(EnvironmentIDPrefix, id)
				if err != nil {
					return Errorf(KindInvalid, "The phase %s names %q, which is not an environment id (%sN).", ph.Name, id, EnvironmentIDPrefix)
				}
				id = FormatID(EnvironmentIDPrefix, n)
				if other, ok := envs[id]; ok {
					return Errorf(KindInvalid, "The environment %s is in the phase %s and in the phase %s; an environment belongs to at most one phase of a lifecycle.", id, other, ph.Name)
				}
				envs[id] = ph.Name
				(*list)[j] = id
			}
		}
		if n := len(ph.AutomaticDeploymentTargets) + len(ph.OptionalDeploymentTargets); ph.MinimumEnvironmentsBeforePromotion < 0 || ph.MinimumEnvironmentsBeforePromotion > n {
			return Errorf(KindInvalid, "The phase %s has %d environments: its MinimumEnvironmentsBeforePromotion must be between 0 (all of them) and %d, not %d.",
				ph.Name, n, n, ph.MinimumEnvironmentsBeforePromotion)
		}
		if ph.ID = strings.TrimSpace(ph.ID); ph.ID == "" && old != nil {
			for _, o := range old.Phases {
				if strings.EqualFold(o.Name, ph.Name) && !ids[o.ID] {
					ph.ID = o.ID
				}
			}
		}
		if ph.ID == "" {
			ph.ID = uuid.NewString()
		}
		if ids[ph.ID] {
			return Errorf(KindInvalid, "The lifecycle has two phases with the Id %q.", ph.ID)
		}
		ids[ph.ID] = true
	}
	return nil
}

// EnvironmentIDs returns the ids of every environment the lifecycle's
// phases name, in order.
func (l *Lifecycle) EnvironmentIDs() []string {
	ids := []string{}
	for _, ph := range l.Phases {
		ids = append(ids, ph.AutomaticDeploymentTargets...)
		ids = append(ids, ph.OptionalDeploymentTargets...)
	}
	return ids
}

// EffectivePhases returns the phases a release of the lifecycle goes
// through: its own, or, when it has none, one per environment of envs, in
// sort order (then by name), each named after its environment, with the
// environment's id for its Id, the environment to deploy to by hand, and
// the lifecycle's retention policies.
func (l Lifecycle) EffectivePhases(envs []Environment) []Phase {
	if len(l.Phases) > 0 {
		return l.Phases
	}
	sorted := slices.Clone(envs)
	slices.SortStableFunc(sorted, func(a, b Environment) int {
		return cmp.Or(cmp.Compare(a.SortOrder, b.SortOrder), strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)))
	})
	phases := []Phase{}
	for _, e := range sorted {
		phases = append(phases, Phase{
			ID: e.ID, Name: e.Name,
			AutomaticDeploymentTargets: []string{}, OptionalDeploymentTargets: []string{e.ID},
		})
	}
	return phases
}
