package deploy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/variables"
)

// lookup returns how a name resolves for action a of step s on target t,
// first match winning: the loop and system variables (Octopus.Project.Name,
// Octopus.Machine.Name, ...), output variables of earlier actions
// (Octopus.Action[Name].Output.X: the value the action set on this target,
// or else on the server, or else the last one), deployment-time values
// (the deployment's form), the release's variables by scope.
func (r *run) lookup(s cuttle.DeploymentStep, a cuttle.DeploymentAction, t target) func(string) (string, bool) {
	system := r.systemVariables(s, a, t)
	outputs := r.outputVariables(t)
	ctx := variables.Context{Environment: r.env.ID, Action: a.Id, Channel: r.release.ChannelId, ProcessOwner: r.project.ID,
		Roles: t.Roles}
	if t.ID != 0 {
		ctx.Machine = cuttle.FormatID(cuttle.MachineIDPrefix, t.ID)
	}
	return func(name string) (string, bool) {
		key := strings.ToLower(name)
		if v, ok := system[key]; ok {
			return v, true
		}
		if v, ok := outputs[key]; ok {
			return v, true
		}
		for n, v := range r.form {
			if strings.EqualFold(n, name) {
				return v, true
			}
		}
		return r.vars.Get(name, ctx)
	}
}

// names returns every name lookup resolves, for the scripts' variable
// functions: the system and output variables and the release's and form's.
func (r *run) names(s cuttle.DeploymentStep, a cuttle.DeploymentAction, t target) []string {
	var names []string
	for k := range r.systemVariables(s, a, t) {
		names = append(names, k)
	}
	for k := range r.outputVariables(t) {
		names = append(names, k)
	}
	for k := range r.form {
		names = append(names, k)
	}
	names = append(names, r.vars.Names()...)
	seen := map[string]bool{}
	out := names[:0]
	for _, n := range names {
		if k := strings.ToLower(n); !seen[k] {
			seen[k] = true
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// systemVariables are the Octopus.* variables of an action on a target, by
// lower-case name.
func (r *run) systemVariables(s cuttle.DeploymentStep, a cuttle.DeploymentAction, t target) map[string]string {
	v := map[string]string{
		"Octopus.Project.Id":         r.project.ID,
		"Octopus.Project.Name":       r.project.Name,
		"Octopus.Environment.Id":     r.env.ID,
		"Octopus.Environment.Name":   r.env.Name,
		"Octopus.Release.Id":         r.release.ID,
		"Octopus.Release.Number":     r.release.Version,
		"Octopus.Release.Notes":      r.release.ReleaseNotes,
		"Octopus.Channel.Id":         r.release.ChannelId,
		"Octopus.Deployment.Id":      r.deployment.ID,
		"Octopus.Deployment.Name":    r.deployment.Name,
		"Octopus.Task.Id":            r.deployment.TaskId,
		"Octopus.Step.Name":          s.Name,
		"Octopus.Step.Id":            s.Id,
		"Octopus.Action.Name":        a.Name,
		"Octopus.Action.Id":          a.Id,
		"Octopus.Action.TargetRoles": cuttle.Prop(s.Properties, cuttle.PropTargetRoles),
		"Octopus.Web.ServerUri":      "",
	}
	if t.ID != 0 {
		host := t.Name
		if i := strings.Index(t.URI, "://"); i >= 0 && strings.HasPrefix(t.URI, "https") {
			host = strings.Trim(strings.SplitN(t.URI[i+3:], ":", 2)[0], "/")
		}
		v["Octopus.Machine.Id"] = cuttle.FormatID(cuttle.MachineIDPrefix, t.ID)
		v["Octopus.Machine.Name"] = t.Name
		v["Octopus.Machine.Hostname"] = host
		v["Octopus.Machine.Roles"] = strings.Join(t.Roles, ",")
	}
	out := make(map[string]string, len(v))
	for k, val := range v {
		out[strings.ToLower(k)] = val
	}
	return out
}

// outputVariables are the output variables set so far, by lower-case
// name, as seen from target t: Octopus.Action[Name].Output.X is the value
// the action set on t, or else on the server, or else on the last target
// that set it.
func (r *run) outputVariables(t target) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	rank := map[string]int{}
	for i, sp := range r.progress.Steps {
		step := r.process.Steps[i]
		for _, tp := range sp.Targets {
			for j, ap := range tp.Actions {
				for name, value := range joined(ap.Output, ap.secret) {
					key := strings.ToLower(fmt.Sprintf("Octopus.Action[%s].Output.%s", step.Actions[j].Name, name))
					score := 1
					switch tp.MachineID {
					case t.ID:
						score = 3
					case 0:
						score = 2
					}
					if score >= rank[key] {
						out[key], rank[key] = value, score
					}
				}
			}
		}
	}
	return out
}

// joined returns the entries of a and b in one map.
func joined(a, b map[string]string) map[string]string {
	if len(b) == 0 {
		return a
	}
	out := maps.Clone(a)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, b)
	return out
}
