package resources

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// LifecycleOf returns the lifecycle a release follows: its channel's, or
// its project's when the channel names none.
func LifecycleOf(ctx context.Context, tx *collection.Tx, rel cuttle.Release) (cuttle.Lifecycle, error) {
	c, err := Channels.Get(ctx, tx, rel.ChannelId)
	if err != nil {
		return cuttle.Lifecycle{}, err
	}
	id := c.LifecycleId
	if id == "" {
		p, err := Projects.Get(ctx, tx, rel.ProjectId)
		if err != nil {
			return cuttle.Lifecycle{}, err
		}
		id = p.LifecycleId
	}
	return Lifecycles.Get(ctx, tx, id)
}

// Phases returns the phases of a lifecycle as they apply: its own, or one
// per environment of the space in their order when it has none.
func Phases(ctx context.Context, tx *collection.Tx, l cuttle.Lifecycle) ([]cuttle.Phase, error) {
	if len(l.Phases) > 0 {
		return l.Phases, nil
	}
	envs, _, err := Environments.List(ctx, tx, collection.Query{Space: l.SpaceID, Take: -1})
	if err != nil {
		return nil, err
	}
	return l.EffectivePhases(envs), nil
}

// DeployedTo returns the environments a release was deployed to
// successfully.
func DeployedTo(ctx context.Context, tx *collection.Tx, rel cuttle.Release) ([]string, error) {
	ds, _, err := Deployments.List(ctx, tx, collection.Query{Space: rel.SpaceID, Take: -1, Where: map[string]any{"release_id": rel.ID}})
	if err != nil {
		return nil, err
	}
	var envs []string
	for _, d := range ds {
		if d.State == cuttle.TaskSuccess && !slices.Contains(envs, d.EnvironmentId) {
			envs = append(envs, d.EnvironmentId)
		}
	}
	return envs, nil
}

// CheckProgression returns KindInvalid unless the release may be deployed
// to env now: env is in a phase of the release's lifecycle, and every
// phase before it that is not optional is complete (the release was
// deployed successfully to its MinimumEnvironmentsBeforePromotion
// environments, or to all of them when that is 0). The error names the
// phase to complete first.
func CheckProgression(ctx context.Context, tx *collection.Tx, rel cuttle.Release, env cuttle.Environment) error {
	l, err := LifecycleOf(ctx, tx, rel)
	if err != nil {
		return err
	}
	phases, err := Phases(ctx, tx, l)
	if err != nil {
		return err
	}
	at := slices.IndexFunc(phases, func(p cuttle.Phase) bool { return inPhase(p, env.ID) })
	if at < 0 {
		return cuttle.Errorf(cuttle.KindInvalid, "The environment %s is in no phase of the lifecycle %s, which the release %s follows.",
			env.Name, l.Name, rel.Version)
	}
	done, err := DeployedTo(ctx, tx, rel)
	if err != nil {
		return err
	}
	for _, p := range phases[:at] {
		if p.IsOptionalPhase {
			continue
		}
		envs := append(slices.Clone(p.AutomaticDeploymentTargets), p.OptionalDeploymentTargets...)
		need := p.MinimumEnvironmentsBeforePromotion
		if need <= 0 || need > len(envs) {
			need = len(envs)
		}
		have := 0
		for _, e := range envs {
			if slices.Contains(done, e) {
				have++
			}
		}
		if have < need {
			return cuttle.Errorf(cuttle.KindInvalid, "The release %s cannot be deployed to %s yet: it must first be deployed to %s of the phase %s (%s), which it has been to %d of.",
				rel.Version, env.Name, count(need, len(envs)), p.Name, strings.Join(envs, ", "), have)
		}
	}
	return nil
}

func inPhase(p cuttle.Phase, env string) bool {
	return slices.Contains(p.AutomaticDeploymentTargets, env) || slices.Contains(p.OptionalDeploymentTargets, env)
}

func count(need, of int) string {
	if need == of {
		return "all the environments"
	}
	return fmt.Sprintf("%d of the environments", need)
}

// PhaseProgress is how far a release got in one phase of its lifecycle.
type PhaseProgress struct {
	Phase cuttle.Phase
	// Progress is "Complete" (its minimum of deployments succeeded, or it
	// is optional and a later phase has begun), "Current" (the first that
	// is not) or "Pending" (after it).
	Progress string
	// Deployed are the phase's environments the release was deployed to
	// successfully.
	Deployed []string
}

// Progression returns how far the release got in each phase of its
// lifecycle, and the environments it may be deployed to now and has not
// been (NextDeployments).
func Progression(ctx context.Context, tx *collection.Tx, rel cuttle.Release) (phases []PhaseProgress, next []string, err error) {
	l, err := LifecycleOf(ctx, tx, rel)
	if err != nil {
		return nil, nil, err
	}
	ps, err := Phases(ctx, tx, l)
	if err != nil {
		return nil, nil, err
	}
	done, err := DeployedTo(ctx, tx, rel)
	if err != nil {
		return nil, nil, err
	}
	current := -1
	for i, p := range ps {
		envs := append(slices.Clone(p.AutomaticDeploymentTargets), p.OptionalDeploymentTargets...)
		pp := PhaseProgress{Phase: p, Progress: "Pending", Deployed: []string{}}
		for _, e := range envs {
			if slices.Contains(done, e) {
				pp.Deployed = append(pp.Deployed, e)
			}
		}
		need := p.MinimumEnvironmentsBeforePromotion
		if need <= 0 || need > len(envs) {
			need = len(envs)
		}
		complete := len(pp.Deployed) >= need
		switch {
		case complete:
			pp.Progress = "Complete"
		case current < 0 && !p.IsOptionalPhase:
			pp.Progress, current = "Current", i
		}
		if current < 0 || current == i || p.IsOptionalPhase && current > i {
			for _, e := range envs {
				if !slices.Contains(done, e) && !slices.Contains(next, e) {
					next = append(next, e)
				}
			}
		}
		phases = append(phases, pp)
	}
	if next == nil {
		next = []string{}
	}
	return phases, next, nil
}
