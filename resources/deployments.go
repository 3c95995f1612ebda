package resources

import (
	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// Deployments are the releases' deployments, newest first. A release or an
// environment with deployments cannot be deleted; a project's are deleted
// with it.
var Deployments = &collection.Def[cuttle.Deployment]{
	Table: "deployments", Prefix: "Deployments-", Noun: "deployment", Spaced: true,
	Columns: []collection.Column[cuttle.Deployment]{
		{Name: "release_id", Refers: Releases, Value: func(d *cuttle.Deployment) any { return d.ReleaseId }},
		{Name: "environment_id", Refers: Environments, Value: func(d *cuttle.Deployment) any { return d.EnvironmentId }},
		{Name: "project_id", Refers: Projects, Value: func(d *cuttle.Deployment) any { return d.ProjectId }},
		{Name: "channel_id", Value: func(d *cuttle.Deployment) any { return d.ChannelId }},
		{Name: "task_id", Value: func(d *cuttle.Deployment) any { return d.TaskId }},
		// How it ended ("" while it has not), so that the dashboard finds
		// the latest successful deployment of each project and
		// environment without reading every deployment.
		{Name: "state", Value: func(d *cuttle.Deployment) any { return string(d.State) }},
	},
	Order: "id DESC",
}

// Interruptions are the deployments' waits for a person, newest first.
// related holds RelatedDocumentIds (the deployment, its task, project and
// environment), so that a list finds those regarding one.
var Interruptions = &collection.Def[cuttle.Interruption]{
	Table: "interruptions", Prefix: "Interruptions-", Noun: "interruption", Spaced: true,
	Columns: []collection.Column[cuttle.Interruption]{
		{Name: "task_id", Value: func(i *cuttle.Interruption) any { return i.TaskId }},
		{Name: "is_pending", Kind: collection.Bool, Value: func(i *cuttle.Interruption) any { return i.IsPending }},
		{Name: "related", Kind: collection.IDs, Value: func(i *cuttle.Interruption) any { return i.RelatedDocumentIds }},
	},
	Order: "id DESC",
}
