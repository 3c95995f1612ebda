package api

import (
	"cmp"
	"context"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// serveDashboard serves the dashboard: the latest deployment of each
// project to each environment.
func (s *Server) serveDashboard() {
	for _, prefix := range []string{"/api", "/api/" + DefaultSpaceID} {
		s.handle("GET "+prefix+"/dashboard", user, s.handleDashboard)
	}
	s.links["Dashboard"] = spacePath("dashboard")
}

// dashboardItem is one deployment on the dashboard, in Octopus's shape.
type dashboardItem struct {
	ProjectId, EnvironmentId, ReleaseId, ReleaseVersion, DeploymentId, TaskId, ChannelId string
	State                                                                                cuttle.TaskState
	HasPendingInterruptions, HasWarningsOrErrors, IsCompleted, IsCurrent, IsPrevious     bool
	ErrorMessage, Duration                                                               string
	Created                                                                              time.Time
	QueueTime, StartTime, CompletedTime                                                  *time.Time
}

type dashboardProject struct{ Id, Name, Slug, ProjectGroupId string }

type dashboardEnvironment struct{ Id, Name string }

// handleDashboard answers the projects, the environments, and for each
// project and environment its latest deployment (Items; IsCurrent if it
// succeeded) and, when that one did not succeed, the latest that did
// (PreviousItems, IsPrevious): of each, what the caller may view
// (ProjectView, EnvironmentView, DeploymentView in its scope).
func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var (
		projects     []cuttle.Project
		environments []cuttle.Environment
		latest       []cuttle.Deployment
		succeeded    map[dashboardPair]cuttle.Deployment
	)
	err := s.store.Read(ctx, func(tx *collection.Tx) (err error) {
		all := collection.Query{Space: DefaultSpaceID, Take: -1}
		if projects, _, err = resources.Projects.List(ctx, tx, all); err != nil {
			return err
		}
		if environments, _, err = resources.Environments.List(ctx, tx, all); err != nil {
			return err
		}
		latest, succeeded, err = latestDeployments(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	tasks, err := s.deploymentTasks(ctx, slices.Concat(latest, slices.Collect(maps.Values(succeeded))))
	if err != nil {
		return err
	}
	var previous []cuttle.Deployment
	for _, d := range latest {
		if dashboardState(d, tasks) == cuttle.TaskSuccess {
			continue // current: nothing before it is shown
		}
		p, ok := succeeded[dashboardPair{d.ProjectId, d.EnvironmentId}]
		if !ok && d.State == cuttle.TaskSuccess {
			// It ended well but its task has not ended yet: the latest
			// success is the one before it.
			if p, ok, err = s.succeededBefore(ctx, d); err != nil {
				return err
			}
			if ok {
				more, err := s.deploymentTasks(ctx, []cuttle.Deployment{p})
				if err != nil {
					return err
				}
				maps.Copy(tasks, more)
			}
		}
		if ok {
			previous = append(previous, p)
		}
	}
	slices.SortFunc(previous, func(a, b cuttle.Deployment) int { return cmp.Compare(deploymentNumber(b), deploymentNumber(a)) })
	versions, err := s.releaseVersions(ctx, slices.Concat(latest, previous))
	if err != nil {
		return err
	}
	out := struct {
		Projects      []dashboardProject
		Environments  []dashboardEnvironment
		Items         []dashboardItem
		PreviousItems []dashboardItem
		Tenants       []any
	}{Projects: []dashboardProject{}, Environments: []dashboardEnvironment{}, Items: []dashboardItem{}, PreviousItems: []dashboardItem{}, Tenants: []any{}}
	// What the caller may view: projects, environments, and deployments in
	// both.
	perms := callerOf(r).perms
	groups := map[string]string{} // a shown project's group
	for _, p := range projects {
		if perms.Allows("ProjectView", resources.Scope{Project: p.ID, ProjectGroup: p.ProjectGroupId}) {
			groups[p.ID] = p.ProjectGroupId
			out.Projects = append(out.Projects, dashboardProject{Id: p.ID, Name: p.Name, Slug: p.Slug, ProjectGroupId: p.ProjectGroupId})
		}
	}
	shownEnvs := map[string]bool{}
	for _, e := range environments {
		if perms.Allows("EnvironmentView", resources.Scope{Environment: e.ID}) {
			shownEnvs[e.ID] = true
			out.Environments = append(out.Environments, dashboardEnvironment{Id: e.ID, Name: e.Name})
		}
	}
	shown := func(d cuttle.Deployment) bool {
		group, ok := groups[d.ProjectId]
		return ok && shownEnvs[d.EnvironmentId] && perms.Allows("DeploymentView",
			resources.Scope{Project: d.ProjectId, ProjectGroup: group, Environment: d.EnvironmentId, Tenant: d.TenantId})
	}
	for _, d := range latest {
		if !shown(d) {
			continue
		}
		item := newDashboardItem(d, versions[d.ReleaseId], tasks)
		item.IsCurrent = item.State == cuttle.TaskSuccess
		out.Items = append(out.Items, item)
	}
	for _, d := range previous {
		if !shown(d) {
			continue
		}
		item := newDashboardItem(d, versions[d.ReleaseId], tasks)
		item.IsPrevious = true
		out.PreviousItems = append(out.PreviousItems, item)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// dashboardPair is a project and an environment.
type dashboardPair struct{ project, env string }

// latestDeployments returns the latest deployment of each project and
// environment, newest first, and, for each pair whose latest deployment's
// own State is not Success, the latest one whose State is. It reads those
// deployments only: the database finds them from the extracted columns.
func latestDeployments(ctx context.Context, tx *collection.Tx) ([]cuttle.Deployment, map[dashboardPair]cuttle.Deployment, error) {
	q := collection.Query{Space: DefaultSpaceID, Take: -1}
	newest, err := resources.Deployments.Newest(ctx, tx, q, "project_id", "environment_id")
	if err != nil || len(newest) == 0 {
		return nil, nil, err
	}
	q.Where = map[string]any{"state": string(cuttle.TaskSuccess)}
	good, err := resources.Deployments.Newest(ctx, tx, q, "project_id", "environment_id")
	if err != nil {
		return nil, nil, err
	}
	isLatest := map[string]bool{}
	ids := make([]string, 0, len(newest)+len(good))
	for _, g := range newest {
		isLatest[g.ID] = true
		ids = append(ids, g.ID)
	}
	for _, g := range good {
		if !isLatest[g.ID] {
			ids = append(ids, g.ID)
		}
	}
	docs, _, err := resources.Deployments.List(ctx, tx, collection.Query{Space: DefaultSpaceID, IDs: ids, Take: -1}) // newest first
	if err != nil {
		return nil, nil, err
	}
	var latest []cuttle.Deployment
	succeeded := map[dashboardPair]cuttle.Deployment{}
	for _, d := range docs {
		if isLatest[d.ID] {
			latest = append(latest, d)
		} else {
			succeeded[dashboardPair{d.ProjectId, d.EnvironmentId}] = d
		}
	}
	return latest, succeeded, nil
}

// succeededBefore returns the latest deployment of d's project and
// environment before d whose own State is Success; ok is false if there
// is none.
func (s *Server) succeededBefore(ctx context.Context, d cuttle.Deployment) (p cuttle.Deployment, ok bool, err error) {
	err = s.store.Read(ctx, func(tx *collection.Tx) error {
		ds, _, err := resources.Deployments.List(ctx, tx, collection.Query{Space: d.SpaceID, Take: 2, Where: map[string]any{
			"project_id": d.ProjectId, "environment_id": d.EnvironmentId, "state": string(cuttle.TaskSuccess)}})
		for _, o := range ds {
			if !ok && deploymentNumber(o) < deploymentNumber(d) {
				p, ok = o, true
			}
		}
		return err
	})
	return p, ok, err
}

// deploymentNumber is the number of a deployment's id.
func deploymentNumber(d cuttle.Deployment) int64 {
	n, _ := resources.Deployments.ParseID(d.ID)
	return n
}

// deploymentTasks returns the tasks of the deployments, by task id, in one
// read and without their checkpoints; a task deleted by retention is
// missing.
func (s *Server) deploymentTasks(ctx context.Context, ds []cuttle.Deployment) (map[string]cuttle.Task, error) {
	var ids []int64
	for _, d := range ds {
		if id, err := cuttle.ParseID(cuttle.TaskIDPrefix, d.TaskId); err == nil {
			ids = append(ids, id)
		}
	}
	tasks := map[string]cuttle.Task{}
	if len(ids) == 0 {
		return tasks, nil
	}
	list, _, err := s.store.Tasks(ctx, cuttle.TaskQuery{IDs: ids, NoCheckpoints: true})
	for _, t := range list {
		tasks[cuttle.FormatID(cuttle.TaskIDPrefix, t.ID)] = t
	}
	return tasks, err
}

// releaseVersions returns the versions of the deployments' releases, by
// release id.
func (s *Server) releaseVersions(ctx context.Context, ds []cuttle.Deployment) (map[string]string, error) {
	versions := map[string]string{}
	ids := []string{}
	for _, d := range ds {
		if _, ok := versions[d.ReleaseId]; !ok {
			versions[d.ReleaseId] = ""
			ids = append(ids, d.ReleaseId)
		}
	}
	if len(ids) == 0 {
		return versions, nil
	}
	err := s.store.Read(ctx, func(tx *collection.Tx) error {
		rels, _, err := resources.Releases.List(ctx, tx, collection.Query{Space: DefaultSpaceID, IDs: ids, Take: -1})
		for _, rel := range rels {
			versions[rel.ID] = rel.Version
		}
		return err
	})
	return versions, err
}

// dashboardState is the state a deployment shows: its task's, or its own
// when its task is gone.
func dashboardState(d cuttle.Deployment, tasks map[string]cuttle.Task) cuttle.TaskState {
	if t, ok := tasks[d.TaskId]; ok {
		return t.Shown()
	}
	return d.State
}

// newDashboardItem makes the item of a deployment, with its task's state
// (the deployment's own State when its task is gone).
func newDashboardItem(d cuttle.Deployment, version string, tasks map[string]cuttle.Task) dashboardItem {
	item := dashboardItem{ProjectId: d.ProjectId, EnvironmentId: d.EnvironmentId, ReleaseId: d.ReleaseId, ReleaseVersion: version,
		DeploymentId: d.ID, TaskId: d.TaskId, ChannelId: d.ChannelId, Created: d.Created, State: d.State}
	t, ok := tasks[d.TaskId]
	if !ok {
		return item // deleted by retention: the deployment's own State stays
	}
	res := toTaskResource(t)
	item.State, item.HasPendingInterruptions, item.HasWarningsOrErrors = res.State, res.HasPendingInterruptions, res.HasWarningsOrErrors
	item.IsCompleted, item.ErrorMessage, item.Duration = res.IsCompleted, res.ErrorMessage, res.Duration
	item.QueueTime, item.StartTime, item.CompletedTime = res.QueueTime, res.StartTime, res.CompletedTime
	return item
}
