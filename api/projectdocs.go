package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/variables"
)

// serveProjects serves the projects and what they own: channels,
// deployment processes and variable sets, with the routes under a project
// and a project group's list of projects.
func (s *Server) serveProjects() {
	projects := docs[cuttle.Project]{def: resources.Projects, path: "projects", link: "Projects", itemType: "Project",
		template: "{/id}{?name,skip,ids,clone,take,partialName,clonedFromProjectId}",
		links:    projectLinks, lookup: lookupProject, check: checkProject, created: createProjectParts, deleting: deleteProjectParts,
		perms: perms{view: "ProjectView", create: "ProjectCreate", edit: "ProjectEdit", remove: "ProjectDelete"},
		where: func(_ context.Context, _ *collection.Tx, p *cuttle.Project) (resources.Scope, error) {
			return resources.Scope{Project: p.ID, ProjectGroup: p.ProjectGroupId}, nil
		}}
	serveDocs(s, projects)
	channels := docs[cuttle.Channel]{def: resources.Channels, path: "channels", link: "Channels", itemType: "Channel",
		template: "{/id}{?skip,take,ids,partialName}",
		perms:    perms{view: "ProjectView", create: "ProjectEdit", edit: "ProjectEdit", remove: "ProjectEdit"},
		where:    inProject(func(c *cuttle.Channel) string { return c.ProjectId }),
		links: func(c *cuttle.Channel) map[string]string {
			project := spacePath("projects/" + c.ProjectId)
			return map[string]string{"Project": project, "Projects": project}
		},
		check: checkChannel, deleting: func(ctx context.Context, tx *collection.Tx, c *cuttle.Channel) error {
			if c.IsDefault {
				return cuttle.Errorf(cuttle.KindConflict, "The channel %s is the default channel of the project %s: make another channel its default first.", c.ID, c.ProjectId)
			}
			return nil
		}}
	serveDocs(s, channels)
	// A process or a variable set is also found by its project's id or
	// slug, which serves the routes under a project.
	byProject := func(ctx context.Context, tx *collection.Tx, sp, key, noun string, id func(*cuttle.Project) string) (string, error) {
		p, err := projects.find(ctx, tx, sp, key, false)
		if cuttle.IsKind(err, cuttle.KindNotFound) {
			return "", cuttle.Errorf(cuttle.KindNotFound, "There is no %s with the id %q, nor a project of that id or slug.", noun, key)
		}
		return id(&p), err
	}
	processes := docs[cuttle.DeploymentProcess]{def: resources.DeploymentProcesses, path: "deploymentprocesses", link: "DeploymentProcesses",
		itemType: "DeploymentProcess", template: "{/id}{?skip,take,ids}", owner: "project",
		perms: perms{view: "ProcessView", edit: "ProcessEdit"}, where: inProject(func(p *cuttle.DeploymentProcess) string { return p.ProjectId }),
		links: func(p *cuttle.DeploymentProcess) map[string]string {
			return map[string]string{"Project": spacePath("projects/" + p.ProjectId),
				"Template": spacePath("deploymentprocesses/" + p.ID + "/template{?channel,releaseId}")}
		},
		lookup: func(ctx context.Context, tx *collection.Tx, sp, key string) (cuttle.DeploymentProcess, error) {
			if strings.HasPrefix(key, resources.ProcessSnapshots.Prefix) { // a release's, read only
				return resources.ProcessSnapshots.Get(ctx, tx, key)
			}
			id, err := byProject(ctx, tx, sp, key, "deployment process", func(p *cuttle.Project) string { return p.DeploymentProcessId })
			if err != nil {
				return cuttle.DeploymentProcess{}, err
			}
			return resources.DeploymentProcesses.Get(ctx, tx, id)
		},
		check: func(ctx context.Context, tx *collection.Tx, p, old *cuttle.DeploymentProcess) error {
			if p.ProjectId != "" && !strings.EqualFold(p.ProjectId, old.ProjectId) {
				return cuttle.Errorf(cuttle.KindInvalid, "The deployment process %s is the project %s's, not %s's.", old.ID, old.ProjectId, p.ProjectId)
			}
			p.ProjectId, p.LastSnapshotId = old.ProjectId, old.LastSnapshotId
			p.Steps = nonNil(p.Steps)
			cuttle.NormalizeSteps(p.Steps)
			return cuttle.ValidateSteps(p.Steps)
		}}
	serveDocs(s, processes)
	variables := docs[cuttle.VariableSet]{def: resources.VariableSets, path: "variables", link: "Variables",
		itemType: "VariableSet", template: "{/id}{?ids}", owner: "project",
		perms: perms{view: "VariableView", edit: "VariableEdit"}, where: inProject(func(v *cuttle.VariableSet) string { return v.OwnerId }),
		lookup: func(ctx context.Context, tx *collection.Tx, sp, key string) (cuttle.VariableSet, error) {
			if strings.HasPrefix(key, resources.VariableSetSnapshots.Prefix) { // a release's, read only
				return resources.VariableSetSnapshots.Get(ctx, tx, key)
			}
			id, err := byProject(ctx, tx, sp, key, "variable set", func(p *cuttle.Project) string { return p.VariableSetId })
			if err != nil {
				return cuttle.VariableSet{}, err
			}
			return resources.VariableSets.Get(ctx, tx, id)
		},
		check: func(ctx context.Context, tx *collection.Tx, v, old *cuttle.VariableSet) error {
			if v.OwnerId != "" && !strings.EqualFold(v.OwnerId, old.OwnerId) {
				return cuttle.Errorf(cuttle.KindInvalid, "The variable set %s is %s's, not %s's.", old.ID, old.OwnerId, v.OwnerId)
			}
			v.OwnerId, v.Variables, v.ScopeValues = old.OwnerId, nonNil(v.Variables), cuttle.EmptyScopeValues()
			return resources.StoreVariables(s.masterKey, v, old)
		},
		present: func(_ *http.Request, v *cuttle.VariableSet) {
			v.Secrets = nil // sensitive values are never answered
		}}
	serveDocs(s, variables)
	s.serveReleases(projects)

	groupsProjects := func(ctx context.Context, tx *collection.Tx, r *http.Request) (map[string]any, string, error) {
		g, err := docs[cuttle.ProjectGroup]{def: resources.ProjectGroups}.find(ctx, tx, DefaultSpaceID, r.PathValue("id"), false)
		if err != nil {
			return nil, "", err
		}
		return map[string]any{"project_group_id": g.ID}, spacePath("projectgroups/" + g.ID + "/projects"), nil
	}
	projectsChannels := func(ctx context.Context, tx *collection.Tx, r *http.Request) (map[string]any, string, error) {
		p, err := projects.find(ctx, tx, DefaultSpaceID, r.PathValue("id"), false)
		if err != nil {
			return nil, "", err
		}
		return map[string]any{"project_id": p.ID}, spacePath("projects/" + p.ID + "/channels"), nil
	}
	for _, prefix := range []string{"/api", "/api/" + DefaultSpaceID} {
		s.handle("GET "+prefix+"/projectgroups/{id}/projects", projects.viewing(), projects.list(s, false, groupsProjects))
		s.handle("GET "+prefix+"/projectgroups/{id}/projects/all", projects.viewing(), projects.list(s, true, groupsProjects))
		s.handle("GET "+prefix+"/projects/{id}/channels", channels.viewing(), channels.list(s, false, projectsChannels))
		s.handle("GET "+prefix+"/projects/{id}/channels/all", channels.viewing(), channels.list(s, true, projectsChannels))
		s.handle("GET "+prefix+"/projects/{id}/deploymentprocesses", processes.viewing(), processes.get(s))
		s.handle("PUT "+prefix+"/projects/{id}/deploymentprocesses", can(processes.perms.edit), processes.modify(s))
		s.handle("GET "+prefix+"/projects/{id}/variables", variables.viewing(), variables.get(s))
		s.handle("PUT "+prefix+"/projects/{id}/variables", can(variables.perms.edit), variables.modify(s))
		s.handle("GET "+prefix+"/projects/{id}/deploymentsettings", projects.viewing(), func(w http.ResponseWriter, r *http.Request) error {
			var p cuttle.Project
			err := s.store.Read(r.Context(), func(tx *collection.Tx) (err error) {
				if p, err = projects.find(r.Context(), tx, DefaultSpaceID, r.PathValue("id"), false); err != nil {
					return err
				}
				return projects.visible(r.Context(), tx, r, &p)
			})
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, deploymentSettingsOf(&p))
			return nil
		})
	}
}

// inProject returns the scope function of documents a project owns: the
// project and its group.
func inProject[T any](project func(*T) string) func(context.Context, *collection.Tx, *T) (resources.Scope, error) {
	return func(ctx context.Context, tx *collection.Tx, doc *T) (resources.Scope, error) {
		return resources.ProjectScope(ctx, tx, project(doc))
	}
}

// spacePath returns the API path of rest in the default space.
func spacePath(rest string) string { return "/api/" + DefaultSpaceID + "/" + rest }

func projectLinks(p *cuttle.Project) map[string]string {
	base := spacePath("projects/" + p.ID)
	return map[string]string{
		"Channels":           base + "/channels{/id}{?skip,take,partialName}",
		"Releases":           base + "/releases{/version}{?skip,take,searchByVersion}",
		"DeploymentProcess":  base + "/deploymentprocesses",
		"DeploymentSettings": base + "/deploymentsettings",
		"Variables":          base + "/variables",
	}
}

// lookupProject finds a project by its slug.
func lookupProject(ctx context.Context, tx *collection.Tx, sp, key string) (cuttle.Project, error) {
	ps, _, err := resources.Projects.List(ctx, tx, collection.Query{Space: sp, Where: map[string]any{"slug": key}, Take: 1})
	if err != nil {
		return cuttle.Project{}, err
	}
	if len(ps) == 0 {
		return cuttle.Project{}, cuttle.Errorf(cuttle.KindNotFound, "There is no project with the id or slug %q.", key)
	}
	return ps[0], nil
}

// checkProject validates a project and completes it with the defaults
// Octopus gives.
func checkProject(ctx context.Context, tx *collection.Tx, p, old *cuttle.Project) error {
	if err := cuttle.CheckName(&p.Name, "project"); err != nil {
		return err
	}
	if p.LifecycleId == "" {
		return cuttle.Errorf(cuttle.KindInvalid, "A project needs a LifecycleId.")
	}
	if p.ProjectGroupId == "" {
		return cuttle.Errorf(cuttle.KindInvalid, "A project needs a ProjectGroupId.")
	}
	g, err := resources.ProjectGroups.Get(ctx, tx, p.ProjectGroupId)
	if cuttle.IsKind(err, cuttle.KindNotFound) || (err == nil && g.SpaceID != p.SpaceID) {
		return cuttle.Errorf(cuttle.KindInvalid, "There is no project group %q (the ProjectGroupId of the project).", p.ProjectGroupId)
	}
	if err != nil {
		return err
	}
	p.ProjectGroupId = g.ID
	if p.Slug = cuttle.Slug(p.Slug); p.Slug == "" {
		p.Slug = cuttle.Slug(p.Name)
	}
	p.DeploymentProcessId, p.VariableSetId, p.ClonedFromProjectId = "", "", "" // set on insert (resources.Projects.Derive)
	if old != nil {
		p.DeploymentProcessId, p.VariableSetId, p.ClonedFromProjectId = old.DeploymentProcessId, old.VariableSetId, old.ClonedFromProjectId
	}
	if t := p.PersistenceSettings.Type; (t != "" && t != cuttle.PersistenceDatabase) || p.IsVersionControlled {
		return cuttle.Errorf(cuttle.KindInvalid, "cuttle keeps projects in its database: PersistenceSettings.Type %q and version control are not supported.", t)
	}
	p.PersistenceSettings.Type = cuttle.PersistenceDatabase
	if p.VersioningStrategy == nil {
		p.VersioningStrategy = &cuttle.VersioningStrategy{}
	}
	if vs := p.VersioningStrategy; vs.Template == "" && (len(vs.DonorPackage) == 0 || string(vs.DonorPackage) == "null") {
		vs.Template = cuttle.DefaultVersionTemplate
	}
	switch p.TenantedDeploymentMode {
	case "":
		p.TenantedDeploymentMode = cuttle.TenantedDeploymentUntenanted
	case cuttle.TenantedDeploymentUntenanted:
	default:
		return cuttle.Errorf(cuttle.KindInvalid, "The TenantedDeploymentMode %q is not supported: cuttle has no tenants, projects are %q.",
			p.TenantedDeploymentMode, cuttle.TenantedDeploymentUntenanted)
	}
	switch p.DefaultGuidedFailureMode {
	case "":
		p.DefaultGuidedFailureMode = cuttle.GuidedFailureEnvironmentDefault
	case cuttle.GuidedFailureEnvironmentDefault, cuttle.GuidedFailureOff, cuttle.GuidedFailureOn:
	default:
		return cuttle.Errorf(cuttle.KindInvalid, "The DefaultGuidedFailureMode %q is none of %s, %s, %s.", p.DefaultGuidedFailureMode,
			cuttle.GuidedFailureEnvironmentDefault, cuttle.GuidedFailureOff, cuttle.GuidedFailureOn)
	}
	if p.ProjectConnectivityPolicy == nil {
		p.ProjectConnectivityPolicy = &cuttle.ConnectivityPolicy{}
	}
	cp := p.ProjectConnectivityPolicy
	switch cp.SkipMachineBehavior {
	case "":
		cp.SkipMachineBehavior = "None"
	case "None", "SkipUnavailableMachines":
	default:
		return cuttle.Errorf(cuttle.KindInvalid, "The SkipMachineBehavior %q is neither None nor SkipUnavailableMachines.", cp.SkipMachineBehavior)
	}
	cp.TargetRoles = nonNil(cp.TargetRoles)
	p.IncludedLibraryVariableSetIds = nonNil(p.IncludedLibraryVariableSetIds)
	p.Templates, p.ExtensionSettings, p.AutoDeployReleaseOverrides = nonNil(p.Templates), nonNil(p.ExtensionSettings), nonNil(p.AutoDeployReleaseOverrides)
	return nil
}

// createProjectParts creates what a new project owns: its default
// channel, its deployment process and its variable set.
func createProjectParts(ctx context.Context, tx *collection.Tx, p *cuttle.Project) error {
	meta := func(id string) cuttle.Resource {
		return cuttle.Resource{ID: id, SpaceID: p.SpaceID, LastModifiedBy: p.LastModifiedBy, LastModifiedOn: p.LastModifiedOn}
	}
	channel := cuttle.Channel{Resource: meta(""), Name: cuttle.DefaultChannelName, ProjectId: p.ID, IsDefault: true,
		Type: cuttle.ChannelTypeLifecycle, Rules: []cuttle.ChannelRule{}, TenantTags: []string{}}
	if err := resources.Channels.Insert(ctx, tx, &channel); err != nil {
		return err
	}
	process := cuttle.DeploymentProcess{Resource: meta(p.DeploymentProcessId), ProjectId: p.ID, Steps: []cuttle.DeploymentStep{}}
	if err := resources.DeploymentProcesses.Insert(ctx, tx, &process); err != nil {
		return err
	}
	set := cuttle.VariableSet{Resource: meta(p.VariableSetId), OwnerId: p.ID, Variables: []variables.Variable{}, ScopeValues: cuttle.EmptyScopeValues()}
	return resources.VariableSets.Insert(ctx, tx, &set)
}

// deleteProjectParts deletes what a project owns, before the project: its
// interruptions and deployments (their tasks stay, in the task history),
// releases (with their snapshots), channels, process and variable set.
func deleteProjectParts(ctx context.Context, tx *collection.Tx, p *cuttle.Project) error {
	is, _, err := resources.Interruptions.List(ctx, tx, collection.Query{Space: p.SpaceID, Where: map[string]any{"related": p.ID}, Take: -1})
	if err != nil {
		return err
	}
	for _, i := range is {
		if err := resources.Interruptions.Delete(ctx, tx, i.ID); err != nil {
			return err
		}
	}
	ds, _, err := resources.Deployments.List(ctx, tx, collection.Query{Space: p.SpaceID, Where: map[string]any{"project_id": p.ID}, Take: -1})
	if err != nil {
		return err
	}
	for _, d := range ds {
		if err := resources.Deployments.Delete(ctx, tx, d.ID); err != nil {
			return err
		}
	}
	rs, _, err := resources.Releases.List(ctx, tx, collection.Query{Space: p.SpaceID, Where: map[string]any{"project_id": p.ID}, Take: -1})
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := resources.DeleteRelease(ctx, tx, r.ID); err != nil {
			return err
		}
	}
	channels, _, err := resources.Channels.List(ctx, tx, collection.Query{Space: p.SpaceID, Where: map[string]any{"project_id": p.ID}, Take: -1})
	if err != nil {
		return err
	}
	for _, c := range channels {
		if err := resources.Channels.Delete(ctx, tx, c.ID); err != nil {
			return err
		}
	}
	if err := resources.DeploymentProcesses.Delete(ctx, tx, p.DeploymentProcessId); err != nil {
		return err
	}
	return resources.VariableSets.Delete(ctx, tx, p.VariableSetId)
}

// checkChannel validates a channel and completes it. A channel made the
// default of its project takes over from the one that was.
func checkChannel(ctx context.Context, tx *collection.Tx, c, old *cuttle.Channel) error {
	if err := cuttle.CheckName(&c.Name, "channel"); err != nil {
		return err
	}
	if c.ProjectId == "" {
		return cuttle.Errorf(cuttle.KindInvalid, "A channel needs a ProjectId.")
	}
	if old != nil && !strings.EqualFold(c.ProjectId, old.ProjectId) {
		return cuttle.Errorf(cuttle.KindInvalid, "The channel %s is the project %s's: a channel cannot move to another project.", old.ID, old.ProjectId)
	}
	p, err := resources.Projects.Get(ctx, tx, c.ProjectId)
	if cuttle.IsKind(err, cuttle.KindNotFound) || (err == nil && p.SpaceID != c.SpaceID) {
		return cuttle.Errorf(cuttle.KindInvalid, "There is no project %q (the ProjectId of the channel).", c.ProjectId)
	}
	if err != nil {
		return err
	}
	c.ProjectId = p.ID
	switch c.Type {
	case "":
		c.Type = cuttle.ChannelTypeLifecycle
	case cuttle.ChannelTypeLifecycle:
	default:
		return cuttle.Errorf(cuttle.KindInvalid, "The channel Type %q is not supported: channels are of Type %q.", c.Type, cuttle.ChannelTypeLifecycle)
	}
	c.Rules, c.TenantTags = nonNil(c.Rules), nonNil(c.TenantTags)
	for i := range c.Rules {
		if c.Rules[i].Id == "" {
			c.Rules[i].Id = uuid.NewString()
		}
		c.Rules[i].ActionPackages = nonNil(c.Rules[i].ActionPackages)
	}
	siblings, _, err := resources.Channels.List(ctx, tx, collection.Query{Space: c.SpaceID, Where: map[string]any{"project_id": p.ID}, Take: -1})
	if err != nil {
		return err
	}
	for _, s := range siblings {
		if s.ID != c.ID && strings.EqualFold(s.Name, c.Name) {
			return cuttle.Errorf(cuttle.KindConflict, "The project %s has a channel named %q already (%s).", p.ID, s.Name, s.ID)
		}
	}
	if old != nil && old.IsDefault && !c.IsDefault {
		return cuttle.Errorf(cuttle.KindInvalid, "The channel %s stays the default of its project until another channel is made its default.", old.ID)
	}
	if !c.IsDefault || (old != nil && old.IsDefault) {
		return nil
	}
	for _, s := range siblings {
		if s.IsDefault && s.ID != c.ID {
			s.IsDefault, s.LastModifiedBy, s.LastModifiedOn = false, c.LastModifiedBy, c.LastModifiedOn
			if err := resources.Channels.Update(ctx, tx, &s); err != nil {
				return err
			}
		}
	}
	return nil
}

// deploymentSettings is a project's deployment settings, a view of the
// project (read-only in cuttle: they change with the project).
type deploymentSettings struct {
	Id                              string
	ProjectId                       string
	SpaceId                         string
	ConnectivityPolicy              *cuttle.ConnectivityPolicy
	DefaultGuidedFailureMode        string
	DefaultToSkipIfAlreadyInstalled bool
	VersioningStrategy              *cuttle.VersioningStrategy
	ReleaseNotesTemplate            string
	DeploymentChangesTemplate       string
	Links                           map[string]string
}

func deploymentSettingsOf(p *cuttle.Project) deploymentSettings {
	return deploymentSettings{
		Id: "deploymentsettings-" + p.ID, ProjectId: p.ID, SpaceId: p.SpaceID, ConnectivityPolicy: p.ProjectConnectivityPolicy,
		DefaultGuidedFailureMode: p.DefaultGuidedFailureMode, DefaultToSkipIfAlreadyInstalled: p.DefaultToSkipIfAlreadyInstalled,
		VersioningStrategy: p.VersioningStrategy, ReleaseNotesTemplate: p.ReleaseNotesTemplate,
		DeploymentChangesTemplate: p.DeploymentChangesTemplate,
		Links:                     map[string]string{"Self": spacePath("projects/" + p.ID + "/deploymentsettings"), "Project": spacePath("projects/" + p.ID)},
	}
}

// nonNil returns list, or an empty list for nil: answers never carry null
// lists.
func nonNil[E any](list []E) []E {
	if list == nil {
		return []E{}
	}
	return list
}
