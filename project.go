package cuttle

import (
	"encoding/json"

	"github.com/cuttledeploy/cuttle/variables"
)

// ProjectGroup groups projects. Every space has a "Default Project Group".
type ProjectGroup struct {
	Resource
	Name              string   `json:"Name"`
	Slug              string   `json:"Slug"`
	Description       string   `json:"Description"`
	EnvironmentIds    []string `json:"EnvironmentIds"`
	RetentionPolicyId string   `json:"RetentionPolicyId,omitempty"`
}

// DefaultProjectGroupName is the name of the group a new space starts with.
const DefaultProjectGroupName = "Default Project Group"

// Project is a deployable application: its settings, and (created and
// deleted with it) its default channel, deployment process and variable
// set. JSON names are Octopus's; lists are never null.
type Project struct {
	Resource
	Name                            string   `json:"Name"`
	Slug                            string   `json:"Slug"`
	Description                     string   `json:"Description"`
	LifecycleId                     string   `json:"LifecycleId"`
	ProjectGroupId                  string   `json:"ProjectGroupId"`
	IsDisabled                      bool     `json:"IsDisabled"`
	AutoCreateRelease               bool     `json:"AutoCreateRelease"`
	DefaultToSkipIfAlreadyInstalled bool     `json:"DefaultToSkipIfAlreadyInstalled"`
	DiscreteChannelRelease          bool     `json:"DiscreteChannelRelease"`
	IsVersionControlled             bool     `json:"IsVersionControlled"`
	DeploymentProcessId             string   `json:"DeploymentProcessId"`
	VariableSetId                   string   `json:"VariableSetId"`
	IncludedLibraryVariableSetIds   []string `json:"IncludedLibraryVariableSetIds"`
	// PersistenceSettings is always {"Type": "Database"}: cuttle keeps
	// projects in its database, never in Git.
	PersistenceSettings       PersistenceSettings `json:"PersistenceSettings"`
	VersioningStrategy        *VersioningStrategy `json:"VersioningStrategy"`
	TenantedDeploymentMode    string              `json:"TenantedDeploymentMode"`
	DefaultGuidedFailureMode  string              `json:"DefaultGuidedFailureMode"`
	ProjectConnectivityPolicy *ConnectivityPolicy `json:"ProjectConnectivityPolicy"`
	ReleaseNotesTemplate      string              `json:"ReleaseNotesTemplate,omitempty"`
	DeploymentChangesTemplate string              `json:"DeploymentChangesTemplate,omitempty"`
	ClonedFromProjectId       string              `json:"ClonedFromProjectId,omitempty"`
	// Templates (project variable templates), ExtensionSettings and
	// AutoDeployReleaseOverrides are kept as given.
	Templates                  []json.RawMessage `json:"Templates"`
	ExtensionSettings          []json.RawMessage `json:"ExtensionSettings"`
	AutoDeployReleaseOverrides []json.RawMessage `json:"AutoDeployReleaseOverrides"`
	ReleaseCreationStrategy    json.RawMessage   `json:"ReleaseCreationStrategy,omitempty"`
}

// PersistenceSettings says where a project's process and variables live.
type PersistenceSettings struct {
	Type string `json:"Type"`
}

// PersistenceDatabase is the one PersistenceSettings.Type of cuttle.
const PersistenceDatabase = "Database"

// VersioningStrategy makes the version of a release created without one:
// from Template, or from the version of a donor package.
type VersioningStrategy struct {
	Template           string          `json:"Template"`
	DonorPackage       json.RawMessage `json:"DonorPackage"`
	DonorPackageStepId *string         `json:"DonorPackageStepId"`
}

// DefaultVersionTemplate is the VersioningStrategy.Template of a new project.
const DefaultVersionTemplate = "#{Octopus.Version.LastMajor}.#{Octopus.Version.LastMinor}.#{Octopus.Version.NextPatch}"

// ConnectivityPolicy says how a deployment treats its targets.
type ConnectivityPolicy struct {
	AllowDeploymentsToNoTargets bool `json:"AllowDeploymentsToNoTargets"`
	ExcludeUnhealthyTargets     bool `json:"ExcludeUnhealthyTargets"`
	// SkipMachineBehavior is "None" or "SkipUnavailableMachines".
	SkipMachineBehavior string   `json:"SkipMachineBehavior"`
	TargetRoles         []string `json:"TargetRoles"`
}

// Guided failure modes of a project (DefaultGuidedFailureMode).
const (
	GuidedFailureEnvironmentDefault = "EnvironmentDefault"
	GuidedFailureOff                = "Off"
	GuidedFailureOn                 = "On"
)

// TenantedDeploymentUntenanted is the one TenantedDeploymentMode of cuttle,
// which has no tenants.
const TenantedDeploymentUntenanted = "Untenanted"

// DeploymentProcessID and VariableSetID return the ids of the deployment
// process and the variable set of the project of id, such as
// "deploymentprocess-Projects-7" for "Projects-7".
func DeploymentProcessID(projectID string) string { return "deploymentprocess-" + projectID }

// VariableSetID: see DeploymentProcessID.
func VariableSetID(ownerID string) string { return "variableset-" + ownerID }

// Channel is a path of a project's releases: its lifecycle (LifecycleId
// empty: the project's) and the rules its releases' packages follow.
type Channel struct {
	Resource
	Name        string `json:"Name"`
	Description string `json:"Description"`
	ProjectId   string `json:"ProjectId"`
	IsDefault   bool   `json:"IsDefault"`
	LifecycleId string `json:"LifecycleId"`
	// Type is always ChannelTypeLifecycle.
	Type       string        `json:"Type"`
	Rules      []ChannelRule `json:"Rules"`
	TenantTags []string      `json:"TenantTags"`
}

// ChannelTypeLifecycle is the one Channel.Type cuttle serves.
const ChannelTypeLifecycle = "Lifecycle"

// DefaultChannelName is the name of the channel a project starts with.
const DefaultChannelName = "Default"

// ChannelRule restricts the versions of packages of a channel's releases
// (stored, not enforced yet).
type ChannelRule struct {
	Id             string            `json:"Id"`
	VersionRange   string            `json:"VersionRange"`
	Tag            string            `json:"Tag"`
	ActionPackages []json.RawMessage `json:"ActionPackages"`
}

// DeploymentProcess is the steps of a project's deployments; one per
// project, id DeploymentProcessID(project).
type DeploymentProcess struct {
	Resource
	ProjectId      string `json:"ProjectId"`
	LastSnapshotId string `json:"LastSnapshotId,omitempty"`
	// Steps run in order (NormalizeSteps, ValidateSteps).
	Steps []DeploymentStep `json:"Steps"`
}

// VariableSet is the variables of an owner (a project); id
// VariableSetID(owner).
type VariableSet struct {
	Resource
	OwnerId string `json:"OwnerId"`
	// Variables hold no sensitive value: those are in Secrets.
	Variables   []variables.Variable `json:"Variables"`
	ScopeValues ScopeValues          `json:"ScopeValues"`
	// Secrets are the sensitive values, sealed with the master key
	// (resources.StoreVariables), by variable id. Stored, never answered.
	Secrets map[string]string `json:"Secrets,omitempty"`
}

// ScopeValues are the names of what a variable set's variables may be
// scoped to, by kind: lists of {Id, Name}, never null.
type ScopeValues struct {
	Environments []json.RawMessage `json:"Environments"`
	Machines     []json.RawMessage `json:"Machines"`
	Roles        []json.RawMessage `json:"Roles"`
	Channels     []json.RawMessage `json:"Channels"`
	Actions      []json.RawMessage `json:"Actions"`
	TenantTags   []json.RawMessage `json:"TenantTags"`
	Processes    []json.RawMessage `json:"Processes"`
}

// EmptyScopeValues returns ScopeValues of empty lists.
func EmptyScopeValues() ScopeValues {
	e := func() []json.RawMessage { return []json.RawMessage{} }
	return ScopeValues{e(), e(), e(), e(), e(), e(), e()}
}
