package resources

import (
	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
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
