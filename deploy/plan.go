package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/tasklog"
)

// The states of an action on a target, in the checkpoint.
const (
	statePending   = "Pending"
	stateRunning   = "Running" // started by Node, no outcome recorded yet
	stateSucceeded = "Succeeded"
	stateFailed    = "Failed"
	stateSkipped   = "Skipped"
	stateWaiting   = "Waiting" // for a person: its interruption
	stateExcluded  = "Excluded"
)

// progress is a deployment's plan and how far it got: the Deploy task's
// checkpoint (doc.go, "The plan and its progress").
type progress struct {
	// Targets are the machines of the plan as they were when it was made.
	Targets map[string]target
	Steps   []stepProgress
	// Failed says the deployment met a failure: steps whose condition is
	// Success are skipped from then on.
	Failed bool
}

// target is a machine of the plan; ID 0 is the server (the node that runs
// the deployment).
type target struct {
	ID    int64
	Name  string
	Roles []string
	URI   string
}

// server is the target of actions that run on the node.
var server = target{Name: "the server"}

// stepProgress is one step of the plan: its targets, or why it is skipped.
type stepProgress struct {
	Name    string
	Skipped string `json:",omitempty"` // why the whole step is skipped
	Targets []targetProgress
}

// targetProgress is the step's actions on one target, in order.
type targetProgress struct {
	MachineID int64 // 0: the server
	Actions   []actionProgress
}

// actionProgress is one action on one target.
type actionProgress struct {
	Name    string // the action's
	State   string
	Note    string            `json:",omitempty"` // why skipped, failed or excluded
	Attempt int               `json:",omitempty"` // retries under guided failure
	Output  map[string]string `json:",omitempty"` // plain output variables it set
	// Sealed holds the sensitive output variables it set, sealed with the
	// master key (base64); secret holds them opened, in memory only.
	Sealed map[string]string `json:",omitempty"`
	secret map[string]string
	// Interruption is the id of the interruption it waited on.
	Interruption string `json:",omitempty"`
	// Node is the node that started it, while it runs.
	Node string `json:",omitempty"`
	// Started is when it last started running; Ended, when it got its
	// outcome (succeeded, failed, skipped or excluded).
	Started *time.Time `json:",omitempty"`
	Ended   *time.Time `json:",omitempty"`
}

// settle keeps across a change what the entry says of itself (its name,
// when it started) and stamps its times: a start when it starts running,
// an end when it gets an outcome.
func (ap *actionProgress) settle(before actionProgress, now time.Time) {
	ap.Name = before.Name
	switch ap.State {
	case stateRunning:
		if before.State != stateRunning || ap.Node != before.Node {
			ap.Started = &now
		} else {
			ap.Started = before.Started
		}
		ap.Ended = nil
	case statePending, stateWaiting:
		ap.Started, ap.Ended = before.Started, nil
	default:
		ap.Started = before.Started
		if ap.Ended = before.Ended; ap.Ended == nil || before.State != ap.State {
			ap.Ended = &now
		}
	}
}

// plan makes the progress of a new deployment: for each step, its targets
// (machines of its roles in the environment, or the server when every
// action runs there), and each action pending, or skipped and why.
func (r *run) plan(ctx context.Context, machines []cuttle.Machine) (progress, error) {
	p := progress{Targets: map[string]target{}}
	told := map[int64]bool{} // machines the policy leaves out, logged once
	for _, s := range r.process.Steps {
		sp := stepProgress{Name: s.Name}
		var ts []target
		if onServerOnly(s) {
			ts = []target{server}
		} else {
			for _, m := range machines {
				if why := r.leftOutByPolicy(m); why != "" {
					if !told[m.ID] {
						told[m.ID] = true
						r.x.Log.Logf(tasklog.Warning, "%s", why)
					}
					continue
				}
				if hasAnyRole(m.Roles, s.TargetRoles()) && r.selected(m) {
					ts = append(ts, target{ID: m.ID, Name: m.Name, Roles: m.Roles, URI: m.URI})
					p.Targets[strconv.FormatInt(m.ID, 10)] = target{ID: m.ID, Name: m.Name, Roles: m.Roles, URI: m.URI}
				}
			}
			if len(ts) == 0 {
				if !r.allowNoTargets() {
					return progress{}, fmt.Errorf("the step %q has no deployment targets with the roles %s in %s", s.Name,
						strings.Join(s.TargetRoles(), ", "), r.env.Name)
				}
				sp.Skipped = fmt.Sprintf("No deployment targets have the roles %s in %s.", strings.Join(s.TargetRoles(), ", "), r.env.Name)
			}
		}
		for _, t := range ts {
			tp := targetProgress{MachineID: t.ID}
			for _, a := range s.Actions {
				ap := actionProgress{Name: a.Name, State: statePending}
				if why := r.skips(a); why != "" {
					ap = actionProgress{Name: a.Name, State: stateSkipped, Note: why}
				}
				tp.Actions = append(tp.Actions, ap)
			}
			sp.Targets = append(sp.Targets, tp)
		}
		p.Steps = append(p.Steps, sp)
	}
	return p, nil
}

// onServerOnly reports whether every action of the step runs on the node,
// so that the step has the server as its one target.
func onServerOnly(s cuttle.DeploymentStep) bool {
	for _, a := range s.Actions {
		if !a.RunsOnServer() {
			return false
		}
	}
	return true
}

func hasAnyRole(have, want []string) bool {
	return slices.ContainsFunc(have, func(h string) bool {
		return slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(h, w) })
	})
}

// selected reports whether the deployment's choice of machines keeps m.
func (r *run) selected(m cuttle.Machine) bool {
	id := cuttle.FormatID(cuttle.MachineIDPrefix, m.ID)
	if len(r.deployment.SpecificMachineIds) > 0 && !containsFold(r.deployment.SpecificMachineIds, id) {
		return false
	}
	return !containsFold(r.deployment.ExcludedMachineIds, id)
}

func containsFold(list []string, v string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, v) })
}

// allowNoTargets reports whether the project lets a deployment go on when
// a step has no targets.
func (r *run) allowNoTargets() bool {
	return r.project.ProjectConnectivityPolicy != nil && r.project.ProjectConnectivityPolicy.AllowDeploymentsToNoTargets
}

// leftOutByPolicy returns why the project's connectivity policy leaves
// machine m out of a new deployment, or "": an unhealthy or unavailable
// machine when the project excludes unhealthy targets, an unavailable one
// when it skips unavailable ones.
func (r *run) leftOutByPolicy(m cuttle.Machine) string {
	cp := r.project.ProjectConnectivityPolicy
	unhealthy := m.HealthStatus == cuttle.Unhealthy || m.HealthStatus == cuttle.Unavailable
	switch {
	case cp == nil:
		return ""
	case cp.ExcludeUnhealthyTargets && unhealthy:
		return fmt.Sprintf("%s is %s at its last health check; the project excludes unhealthy targets: it is left out.", m.Name, m.HealthStatus)
	case m.HealthStatus == cuttle.Unavailable && r.skipsUnavailable(m.Roles):
		return fmt.Sprintf("%s is Unavailable at its last health check; the project skips unavailable targets: it is left out.", m.Name)
	}
	return ""
}

// skipsUnavailable reports whether the project's connectivity policy
// skips a target with these roles that is or becomes unavailable
// (SkipUnavailableMachines, for its TargetRoles, or every role if none).
func (r *run) skipsUnavailable(roles []string) bool {
	cp := r.project.ProjectConnectivityPolicy
	return cp != nil && cp.SkipMachineBehavior == "SkipUnavailableMachines" && (len(cp.TargetRoles) == 0 || hasAnyRole(roles, cp.TargetRoles))
}

// skips returns why the action does not run in this deployment, or "".
func (r *run) skips(a cuttle.DeploymentAction) string {
	switch {
	case a.IsDisabled:
		return "The action is disabled."
	case containsFold(r.deployment.SkipActions, a.Id):
		return "The deployment skips it."
	case len(a.Environments) > 0 && !containsFold(a.Environments, r.env.ID):
		return fmt.Sprintf("It runs only in other environments than %s.", r.env.Name)
	case containsFold(a.ExcludedEnvironments, r.env.ID):
		return fmt.Sprintf("It does not run in %s.", r.env.Name)
	case len(a.Channels) > 0 && !containsFold(a.Channels, r.release.ChannelId):
		return "It runs only in other channels than the release's."
	}
	return ""
}

func (p progress) marshal() []byte {
	b, _ := json.Marshal(p) // plain data always marshals
	return b
}
