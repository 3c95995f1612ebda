package cuttle

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// DeploymentStep is one step of a deployment process: its first action,
// and the actions after it (its child steps), which run in order on each
// of the step's targets. JSON names are Octopus's.
type DeploymentStep struct {
	Id                 string                   `json:"Id"`
	Name               string                   `json:"Name"`
	Slug               string                   `json:"Slug,omitempty"`
	PackageRequirement string                   `json:"PackageRequirement"`
	Properties         map[string]PropertyValue `json:"Properties"`
	// Condition is StepSuccess (the default), StepFailure, StepAlways or
	// StepVariable (the property ConditionVariableExpression decides).
	Condition string `json:"Condition"`
	// StartTrigger is StartAfterPrevious (the default) or StartWithPrevious.
	StartTrigger string             `json:"StartTrigger"`
	Actions      []DeploymentAction `json:"Actions"`
}

// DeploymentAction is one action of a step: a script, a manual
// intervention, a package (ActionType), with its properties.
type DeploymentAction struct {
	Id                            string                   `json:"Id"`
	Name                          string                   `json:"Name"`
	Slug                          string                   `json:"Slug,omitempty"`
	ActionType                    string                   `json:"ActionType"`
	Notes                         string                   `json:"Notes,omitempty"`
	IsDisabled                    bool                     `json:"IsDisabled"`
	IsRequired                    bool                     `json:"IsRequired"`
	CanBeUsedForProjectVersioning bool                     `json:"CanBeUsedForProjectVersioning"`
	Condition                     string                   `json:"Condition,omitempty"`
	Environments                  []string                 `json:"Environments"`
	ExcludedEnvironments          []string                 `json:"ExcludedEnvironments"`
	Channels                      []string                 `json:"Channels"`
	TenantTags                    []string                 `json:"TenantTags"`
	Packages                      []PackageReference       `json:"Packages"`
	Properties                    map[string]PropertyValue `json:"Properties"`
	WorkerPoolId                  string                   `json:"WorkerPoolId,omitempty"`
	WorkerPoolVariable            string                   `json:"WorkerPoolVariable,omitempty"`
	StepPackageVersion            string                   `json:"StepPackageVersion,omitempty"`
	// Container and GitDependencies are kept as given.
	Container       json.RawMessage   `json:"Container,omitempty"`
	GitDependencies []json.RawMessage `json:"GitDependencies,omitempty"`
}

// PackageReference is a package an action uses; Name "" is its primary
// package.
type PackageReference struct {
	Id                  string            `json:"Id"`
	Name                string            `json:"Name"`
	PackageId           string            `json:"PackageId"`
	FeedId              string            `json:"FeedId"`
	AcquisitionLocation string            `json:"AcquisitionLocation"`
	Properties          map[string]string `json:"Properties"`
}

// PrimaryPackage returns the action's primary package: its package
// reference named "", or else one made of its Octopus.Action.Package.PackageId.
func (a DeploymentAction) PrimaryPackage() PackageReference {
	for _, p := range a.Packages {
		if p.Name == "" && p.PackageId != "" {
			return p
		}
	}
	return PackageReference{PackageId: Prop(a.Properties, PropPackageID), FeedId: BuiltinFeedID}
}

// PropertyValue is the value of a step's or action's property: a string,
// or, for a sensitive property, an object {HasValue, NewValue, Hint}
// (Octopus's SensitiveValue; NewValue only in a write).
type PropertyValue struct {
	Value     string
	Sensitive *SensitiveValue
}

// SensitiveValue is a sensitive property as the API shows and takes it.
type SensitiveValue struct {
	HasValue bool    `json:"HasValue"`
	NewValue *string `json:"NewValue,omitempty"`
	Hint     *string `json:"Hint,omitempty"`
}

// MarshalJSON writes a string, or the sensitive object.
func (p PropertyValue) MarshalJSON() ([]byte, error) {
	if p.Sensitive != nil {
		return json.Marshal(p.Sensitive)
	}
	return json.Marshal(p.Value)
}

// UnmarshalJSON reads a string or a sensitive object; numbers and booleans
// are refused, as the official client refuses them.
func (p *PropertyValue) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '{' {
		var s SensitiveValue
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*p = PropertyValue{Sensitive: &s}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*p = PropertyValue{Value: s}
	return nil
}

// Step conditions, start triggers and the action types cuttle runs.
const (
	StepSuccess  = "Success"
	StepFailure  = "Failure"
	StepAlways   = "Always"
	StepVariable = "Variable"

	StartAfterPrevious = "StartAfterPrevious"
	StartWithPrevious  = "StartWithPrevious"

	ActionScript  = "Octopus.Script"
	ActionManual  = "Octopus.Manual"
	ActionPackage = "Octopus.TentaclePackage"
)

// Properties of steps and actions that cuttle reads.
const (
	PropTargetRoles        = "Octopus.Action.TargetRoles"
	PropMaxParallelism     = "Octopus.Action.MaxParallelism"
	PropConditionVariable  = "Octopus.Action.ConditionVariableExpression"
	PropRunOnServer        = "Octopus.Action.RunOnServer"
	PropScriptSource       = "Octopus.Action.Script.ScriptSource"
	PropPackageID          = "Octopus.Action.Package.PackageId"
	PropScriptSyntax       = "Octopus.Action.Script.Syntax"
	PropScriptBody         = "Octopus.Action.Script.ScriptBody"
	PropManualInstructions = "Octopus.Action.Manual.Instructions"
	PropManualTeams        = "Octopus.Action.Manual.ResponsibleTeamIds"
	PropManualBlock        = "Octopus.Action.Manual.BlockConcurrentDeployments"
)

// ScriptSyntaxes are the syntaxes a script action may have: Bash, and
// PowerShell where the target has pwsh.
var ScriptSyntaxes = []string{"Bash", "PowerShell"}

// Prop returns the string value of a property ("" if absent or sensitive).
func Prop(props map[string]PropertyValue, name string) string { return props[name].Value }

// TargetRoles returns the step's target roles.
func (s DeploymentStep) TargetRoles() []string {
	var roles []string
	for _, r := range strings.Split(Prop(s.Properties, PropTargetRoles), ",") {
		if r = strings.TrimSpace(r); r != "" {
			roles = append(roles, r)
		}
	}
	return roles
}

// RunsOnServer reports whether the action runs on the node executing the
// deployment rather than on targets: a manual intervention, or a script
// with RunOnServer True.
func (a DeploymentAction) RunsOnServer() bool {
	return a.ActionType == ActionManual || strings.EqualFold(Prop(a.Properties, PropRunOnServer), "true")
}

// NormalizeSteps gives every step and action without an id a new one, and fills
// the defaults: condition Success, start after the previous step, package
// requirement LetOctopusDecide, empty lists and maps rather than null.
func NormalizeSteps(steps []DeploymentStep) {
	for i := range steps {
		s := &steps[i]
		if s.Id == "" {
			s.Id = uuid.NewString()
		}
		s.Condition = orDefault(s.Condition, StepSuccess)
		s.StartTrigger = orDefault(s.StartTrigger, StartAfterPrevious)
		s.PackageRequirement = orDefault(s.PackageRequirement, "LetOctopusDecide")
		if s.Properties == nil {
			s.Properties = map[string]PropertyValue{}
		}
		if s.Actions == nil {
			s.Actions = []DeploymentAction{}
		}
		for j := range s.Actions {
			a := &s.Actions[j]
			if a.Id == "" {
				a.Id = uuid.NewString()
			}
			for _, l := range []*[]string{&a.Environments, &a.ExcludedEnvironments, &a.Channels, &a.TenantTags} {
				if *l == nil {
					*l = []string{}
				}
			}
			if a.Packages == nil {
				a.Packages = []PackageReference{}
			}
			if a.Properties == nil {
				a.Properties = map[string]PropertyValue{}
			}
		}
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// ValidateSteps returns KindInvalid naming the first step that breaks a
// rule: a name, unique ignoring case; a known condition and start trigger
// (the first step starts after nothing); at least one action, each of a
// type cuttle runs, named uniquely in the process; target roles unless
// every action runs on the server; a window (MaxParallelism) that is a
// positive whole number or a variable reference; a Variable condition with
// its expression; a script's syntax one of ScriptSyntaxes, with a body.
func ValidateSteps(steps []DeploymentStep) error {
	stepNames, actionNames := map[string]bool{}, map[string]bool{}
	for i, s := range steps {
		name := strings.TrimSpace(s.Name)
		if name == "" {
			return Errorf(KindInvalid, "Step %d has no name.", i+1)
		}
		invalid := func(format string, args ...any) error {
			return Errorf(KindInvalid, "The step %q: "+format, append([]any{name}, args...)...)
		}
		if stepNames[strings.ToLower(name)] {
			return invalid("another step has that name; step names are unique.")
		}
		stepNames[strings.ToLower(name)] = true
		if !slices.Contains([]string{StepSuccess, StepFailure, StepAlways, StepVariable}, s.Condition) {
			return invalid("its Condition %q is not Success, Failure, Always or Variable.", s.Condition)
		}
		if s.Condition == StepVariable && strings.TrimSpace(Prop(s.Properties, PropConditionVariable)) == "" {
			return invalid("its Condition is Variable, but it has no %s.", PropConditionVariable)
		}
		switch s.StartTrigger {
		case StartAfterPrevious:
		case StartWithPrevious:
			if i == 0 {
				return invalid("the first step cannot start with a previous one.")
			}
		default:
			return invalid("its StartTrigger %q is not StartAfterPrevious or StartWithPrevious.", s.StartTrigger)
		}
		if w := strings.TrimSpace(Prop(s.Properties, PropMaxParallelism)); w != "" && !strings.Contains(w, "#{") {
			if n, err := strconv.Atoi(w); err != nil || n < 1 {
				return invalid("its window (%s) %q is not a whole number of at least 1.", PropMaxParallelism, w)
			}
		}
		if len(s.Actions) == 0 {
			return invalid("it has no action.")
		}
		onTargets := false
		for _, a := range s.Actions {
			aname := strings.TrimSpace(a.Name)
			if aname == "" {
				return invalid("an action has no name.")
			}
			if actionNames[strings.ToLower(aname)] {
				return invalid("another action of the process is named %q; action names are unique.", aname)
			}
			actionNames[strings.ToLower(aname)] = true
			switch a.ActionType {
			case ActionScript:
				syntax := Prop(a.Properties, PropScriptSyntax)
				if !slices.Contains(ScriptSyntaxes, syntax) {
					return invalid("the action %q's syntax %q is not one of %s.", aname, syntax, strings.Join(ScriptSyntaxes, ", "))
				}
				if src := Prop(a.Properties, PropScriptSource); src != "" && src != "Inline" {
					return invalid("the action %q's script source %q is not Inline (the one cuttle runs).", aname, src)
				}
				if strings.TrimSpace(Prop(a.Properties, PropScriptBody)) == "" {
					return invalid("the action %q has no script body (%s).", aname, PropScriptBody)
				}
			case ActionManual:
			case ActionPackage:
				if a.PrimaryPackage().PackageId == "" {
					return invalid("the action %q deploys a package but names none: give it a primary package (Packages, Name \"\") or %s.", aname, PropPackageID)
				}
			default:
				return invalid("the action %q's type %q is not one cuttle runs (%s, %s, %s).", aname, a.ActionType, ActionScript, ActionManual, ActionPackage)
			}
			for _, p := range a.Packages {
				if p.PackageId != "" && a.ActionType == ActionScript && a.RunsOnServer() {
					return invalid("the action %q runs on the server and references the package %s; cuttle extracts referenced packages on deployment targets only.", aname, p.PackageId)
				}
				if p.FeedId != "" && !strings.EqualFold(p.FeedId, BuiltinFeedID) {
					return invalid("the action %q takes the package %s from the feed %q; cuttle has the built-in feed, %s.", aname, p.PackageId, p.FeedId, BuiltinFeedID)
				}
			}
			if !a.RunsOnServer() {
				onTargets = true
			}
		}
		if onTargets && len(s.TargetRoles()) == 0 {
			return invalid("it runs on deployment targets but names no target roles (%s); give it roles, or run its actions on the server.", PropTargetRoles)
		}
	}
	return nil
}
