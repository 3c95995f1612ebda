package api

import (
	"net/http"
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
// (PreviousItems, IsPrevious).
func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var (
		projects     []cuttle.Project
		environments []cuttle.Environment
		deployments  []cuttle.Deployment
		releases     = map[string]string{} // id to version
	)
	err := s.store.Read(ctx, func(tx *collection.Tx) (err error) {
		all := collection.Query{Space: DefaultSpaceID, Take: -1}
		if projects, _, err = resources.Projects.List(ctx, tx, all); err != nil {
			return err
		}
		if environments, _, err = resources.Environments.List(ctx, tx, all); err != nil {
			return err
		}
		if deployments, _, err = resources.Deployments.List(ctx, tx, all); err != nil { // newest first
			return err
		}
		rels, _, err := resources.Releases.List(ctx, tx, all)
		for _, rel := range rels {
			releases[rel.ID] = rel.Version
		}
		return err
	})
	if err != nil {
		return err
	}
	type pair struct{ project, env string }
	latest := map[pair]bool{}
	previous := map[pair]bool{}
	items, prev := []dashboardItem{}, []dashboardItem{}
	for _, d := range deployments {
		k := pair{d.ProjectId, d.EnvironmentId}
		if latest[k] && (previous[k] || d.State != cuttle.TaskSuccess) {
			continue
		}
		item, err := s.dashboardItem(r, d, releases[d.ReleaseId])
		if err != nil {
			return err
		}
		if !latest[k] {
			latest[k] = true
			item.IsCurrent = item.State == cuttle.TaskSuccess
			previous[k] = item.IsCurrent // nothing before a current one is shown
			items = append(items, item)
			continue
		}
		item.IsPrevious, previous[k] = true, true
		prev = append(prev, item)
	}
	out := struct {
		Projects      []dashboardProject
		Environments  []dashboardEnvironment
		Items         []dashboardItem
		PreviousItems []dashboardItem
		Tenants       []any
	}{Projects: []dashboardProject{}, Environments: []dashboardEnvironment{}, Items: items, PreviousItems: prev, Tenants: []any{}}
	for _, p := range projects {
		out.Projects = append(out.Projects, dashboardProject{Id: p.ID, Name: p.Name, Slug: p.Slug, ProjectGroupId: p.ProjectGroupId})
	}
	for _, e := range environments {
		out.Environments = append(out.Environments, dashboardEnvironment{Id: e.ID, Name: e.Name})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// dashboardItem makes the item of a deployment, with its task's state.
func (s *Server) dashboardItem(r *http.Request, d cuttle.Deployment, version string) (dashboardItem, error) {
	item := dashboardItem{ProjectId: d.ProjectId, EnvironmentId: d.EnvironmentId, ReleaseId: d.ReleaseId, ReleaseVersion: version,
		DeploymentId: d.ID, TaskId: d.TaskId, ChannelId: d.ChannelId, Created: d.Created, State: d.State}
	id, err := cuttle.ParseID(cuttle.TaskIDPrefix, d.TaskId)
	if err != nil {
		return item, nil
	}
	t, err := s.store.Task(r.Context(), id)
	if cuttle.IsKind(err, cuttle.KindNotFound) {
		return item, nil // deleted by retention: the deployment's own State stays
	}
	if err != nil {
		return item, err
	}
	res := toTaskResource(t)
	item.State, item.HasPendingInterruptions, item.HasWarningsOrErrors = res.State, res.HasPendingInterruptions, res.HasWarningsOrErrors
	item.IsCompleted, item.ErrorMessage, item.Duration = res.IsCompleted, res.ErrorMessage, res.Duration
	item.QueueTime, item.StartTime, item.CompletedTime = res.QueueTime, res.StartTime, res.CompletedTime
	return item, nil
}
