package resources

import (
	"encoding/base64"
	"fmt"

	"github.com/google/uuid"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/masterkey"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/variables"
)

// Projects are the projects. Creating one creates its default channel,
// deployment process and variable set in the same unit of work (package
// api); their ids are derived from the project's.
var Projects = &collection.Def[cuttle.Project]{
	Table: "projects", Prefix: "Projects-", Noun: "project", Spaced: true,
	Derive: func(p *cuttle.Project) {
		p.DeploymentProcessId, p.VariableSetId = cuttle.DeploymentProcessID(p.ID), cuttle.VariableSetID(p.ID)
	},
	Columns: []collection.Column[cuttle.Project]{
		name(func(p *cuttle.Project) string { return p.Name }),
		{Name: "slug", Fold: true, Value: func(p *cuttle.Project) any { return p.Slug }},
		{Name: "project_group_id", Refers: ProjectGroups, Value: func(p *cuttle.Project) any { return p.ProjectGroupId }},
		{Name: "lifecycle_id", Refers: Lifecycles, Value: func(p *cuttle.Project) any { return p.LifecycleId }},
	},
	Order: "name",
}

// Channels are the projects' channels. A name is unique per project, not
// per space.
var Channels = &collection.Def[cuttle.Channel]{
	Table: "channels", Prefix: "Channels-", Noun: "channel", Spaced: true,
	Columns: []collection.Column[cuttle.Channel]{
		{Name: "name", Fold: true, Value: func(c *cuttle.Channel) any { return c.Name }},
		{Name: "project_id", Refers: Projects, Value: func(c *cuttle.Channel) any { return c.ProjectId }},
		// A channel without a lifecycle follows its project's.
		{Name: "lifecycle_id", Refers: Lifecycles, Value: func(c *cuttle.Channel) any { return c.LifecycleId }},
		{Name: "project_name", Fold: true, Unique: true, Value: func(c *cuttle.Channel) any { return ChannelKey(c.ProjectId, c.Name) }},
	},
	Order: "name",
}

// ChannelKey is the value of the channels' unique project_name column.
func ChannelKey(projectID, name string) string { return projectID + "/" + name }

// DeploymentProcesses are the projects' deployment processes, one each,
// with the id cuttle.DeploymentProcessID of its project.
var DeploymentProcesses = &collection.Def[cuttle.DeploymentProcess]{
	Table: "deployment_processes", Prefix: "deploymentprocess-Projects-", Noun: "deployment process", Spaced: true, ExplicitIDs: true,
	Columns: []collection.Column[cuttle.DeploymentProcess]{
		{Name: "project_id", Refers: Projects, Value: func(p *cuttle.DeploymentProcess) any { return p.ProjectId }},
	},
}

// VariableSets are the projects' variable sets, one each, with the id
// cuttle.VariableSetID of its owner.
var VariableSets = &collection.Def[cuttle.VariableSet]{
	Table: "variable_sets", Prefix: "variableset-Projects-", Noun: "variable set", Spaced: true, ExplicitIDs: true,
	Columns: []collection.Column[cuttle.VariableSet]{
		{Name: "owner_id", Refers: Projects, Value: func(v *cuttle.VariableSet) any { return v.OwnerId }},
	},
}

// secretPurpose names the master key's use for sensitive values.
const secretPurpose = "sensitive value"

// StoreVariables readies the variables a user sent for storage in set,
// old being the set as stored (nil for a new one): each variable gets an
// id if it has none; a sensitive value is sealed with mk into set.Secrets
// and taken out of the variable; a sensitive variable sent without a
// value ("" or null, as the API answers it) keeps the value stored under
// its id. Secrets a client sent are ignored. KindInvalid for a sensitive
// variable with no value, sent or stored.
func StoreVariables(mk masterkey.Key, set, old *cuttle.VariableSet) error {
	set.Secrets = map[string]string{}
	for i := range set.Variables {
		v := &set.Variables[i]
		if v.Id == "" {
			v.Id = uuid.NewString()
		}
		if !v.Sensitive() {
			continue
		}
		if v.Value != nil && *v.Value != "" {
			sealed, err := mk.Seal(secretPurpose, []byte(*v.Value))
			if err != nil {
				return err
			}
			set.Secrets[v.Id] = base64.StdEncoding.EncodeToString(sealed)
		} else if old != nil && old.Secrets[v.Id] != "" {
			set.Secrets[v.Id] = old.Secrets[v.Id]
		} else {
			return cuttle.Errorf(cuttle.KindInvalid, "The sensitive variable %q has no value.", v.Name)
		}
		v.Value = nil
	}
	if len(set.Secrets) == 0 {
		set.Secrets = nil
	}
	return nil
}

// OpenVariables returns the set's variables with their sensitive values
// opened with mk: for a deployment, never for an answer.
func OpenVariables(mk masterkey.Key, set cuttle.VariableSet) ([]variables.Variable, error) {
	out := make([]variables.Variable, len(set.Variables))
	for i, v := range set.Variables {
		if v.Sensitive() {
			sealed, err := base64.StdEncoding.DecodeString(set.Secrets[v.Id])
			if err != nil {
				return nil, fmt.Errorf("the sensitive value of %q is damaged: %w", v.Name, err)
			}
			plain, err := mk.Open(secretPurpose, sealed)
			if err != nil {
				return nil, fmt.Errorf("the sensitive value of %q: %w", v.Name, err)
			}
			value := string(plain)
			v.Value = &value
		}
		out[i] = v
	}
	return out, nil
}
