package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/deploy"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// serveDeployments serves the deployments: created by POST (one
// environment) or by deployments/create/untenanted/v1 (by names, several
// environments), each with its Deploy task in the same unit of work.
func (s *Server) serveDeployments(projects docs[cuttle.Project]) {
	deployments := docs[cuttle.Deployment]{def: resources.Deployments, path: "deployments", link: "Deployments", itemType: "Deployment",
		template: "{/id}{?skip,take,ids,projects,environments,tenants,channels,taskState}",
		perms:    perms{view: "DeploymentView", create: "DeploymentCreate", edit: "DeploymentCreate", remove: "DeploymentDelete"},
		where:    resources.DeploymentScope,
		links: func(d *cuttle.Deployment) map[string]string {
			return map[string]string{
				"Release":       spacePath("releases/" + d.ReleaseId),
				"Environment":   spacePath("environments/" + d.EnvironmentId),
				"Project":       spacePath("projects/" + d.ProjectId),
				"Task":          "/api/tasks/" + d.TaskId,
				"Interruptions": spacePath("interruptions?regarding=" + d.ID),
			}
		},
		present: func(_ *http.Request, d *cuttle.Deployment) { d.Secrets = nil },
		query: func(r *http.Request, q *collection.Query) error {
			if q.Where == nil {
				q.Where = map[string]any{}
			}
			for param, column := range map[string]string{"projects": "project_id", "environments": "environment_id", "channels": "channel_id"} {
				if v := r.URL.Query().Get(param); v != "" {
					if strings.Contains(v, ",") {
						return cuttle.Errorf(cuttle.KindInvalid, "%s takes one id here.", param)
					}
					q.Where[column] = v
				}
			}
			if v := r.URL.Query().Get("taskState"); v != "" {
				return s.deploymentsInState(r.Context(), q, v)
			}
			return nil
		},
		check: func(ctx context.Context, tx *collection.Tx, d, old *cuttle.Deployment) error {
			if old != nil {
				return cuttle.Errorf(cuttle.KindInvalid, "A deployment cannot be changed; deploy the release again.")
			}
			return s.prepareDeployment(ctx, tx, d)
		},
		created: func(ctx context.Context, tx *collection.Tx, d *cuttle.Deployment) error {
			return s.queueDeployment(ctx, tx, d)
		},
		deleting: func(ctx context.Context, tx *collection.Tx, d *cuttle.Deployment) error {
			return cuttle.Errorf(cuttle.KindInvalid, "A deployment is deleted with its project, not alone.")
		}}
	serveDocs(s, deployments)
	ofRelease := func(ctx context.Context, tx *collection.Tx, r *http.Request) (map[string]any, string, error) {
		rel, err := releases.find(ctx, tx, DefaultSpaceID, r.PathValue("id"), false)
		if err != nil {
			return nil, "", err
		}
		return map[string]any{"release_id": rel.ID}, spacePath("releases/" + rel.ID + "/deployments"), nil
	}
	for _, prefix := range []string{"/api", "/api/" + DefaultSpaceID} {
		s.handle("POST "+prefix+"/deployments/create/untenanted/v1", can("DeploymentCreate"), s.createDeploymentV1(projects))
		s.handle("GET "+prefix+"/releases/{id}/deployments", deployments.viewing(), deployments.list(s, false, ofRelease))
	}
}

// prepareDeployment completes a new deployment in tx: its release must
// exist, and gives it its project and channel; its environment must exist
// and be one the release's lifecycle lets it reach now; its snapshot ids;
// defaults. KindInvalid otherwise.
func (s *Server) prepareDeployment(ctx context.Context, tx *collection.Tx, d *cuttle.Deployment) error {
	if d.ReleaseId == "" || d.EnvironmentId == "" {
		return cuttle.Errorf(cuttle.KindInvalid, "A deployment needs a ReleaseId and an EnvironmentId.")
	}
	rel, err := resources.Releases.Get(ctx, tx, d.ReleaseId)
	if cuttle.IsKind(err, cuttle.KindNotFound) {
		return cuttle.Errorf(cuttle.KindInvalid, "There is no release %q to deploy.", d.ReleaseId)
	}
	if err != nil {
		return err
	}
	env, err := resources.Environments.Get(ctx, tx, d.EnvironmentId)
	if cuttle.IsKind(err, cuttle.KindNotFound) {
		return cuttle.Errorf(cuttle.KindInvalid, "There is no environment %q to deploy to.", d.EnvironmentId)
	}
	if err != nil {
		return err
	}
	if err := resources.CheckProgression(ctx, tx, rel, env); err != nil {
		return err
	}
	d.ProjectId, d.ChannelId, d.EnvironmentId = rel.ProjectId, rel.ChannelId, env.ID
	d.DeploymentProcessId, d.ManifestVariableSetId = rel.ProjectDeploymentProcessSnapshotId, rel.ProjectVariableSetSnapshotId
	d.Name = fmt.Sprintf("Deploy to %s", env.Name)
	d.Created = time.Now().UTC()
	d.DeployedToMachineIds, d.FailureEncountered, d.TaskId = []string{}, false, ""
	for _, l := range []*[]string{&d.SkipActions, &d.SpecificMachineIds, &d.ExcludedMachineIds} {
		if *l == nil {
			*l = []string{}
		}
	}
	if d.FormValues == nil {
		d.FormValues = map[string]string{}
	}
	if d.QueueTimeExpiry != nil {
		start := d.Created
		if d.QueueTime != nil && d.QueueTime.After(start) {
			start = *d.QueueTime
		}
		if !d.QueueTimeExpiry.After(start) {
			return cuttle.Errorf(cuttle.KindInvalid, "QueueTimeExpiry (%s) must be after the time the deployment is to start (%s).",
				d.QueueTimeExpiry.UTC().Format(time.RFC3339), start.Format(time.RFC3339))
		}
	}
	d.Secrets = nil
	return nil
}

// queueDeployment queues the Deploy task of a deployment just inserted in
// tx, one at a time per project and environment, and records its id.
func (s *Server) queueDeployment(ctx context.Context, tx *collection.Tx, d *cuttle.Deployment) error {
	args, _ := json.Marshal(map[string]string{"DeploymentId": d.ID})
	p, err := resources.Projects.Get(ctx, tx, d.ProjectId)
	if err != nil {
		return err
	}
	rel, err := resources.Releases.Get(ctx, tx, d.ReleaseId)
	if err != nil {
		return err
	}
	env, err := resources.Environments.Get(ctx, tx, d.EnvironmentId)
	if err != nil {
		return err
	}
	nt := cuttle.NewTask{SpaceID: d.SpaceID, Name: deploy.TaskName, Arguments: args, Resumable: true,
		Description:    fmt.Sprintf("Deploy %s release %s to %s", p.Name, rel.Version, env.Name),
		ConcurrencyKey: cuttle.DeploymentKey(d.ProjectId, d.EnvironmentId)}
	start := time.Now()
	if d.QueueTime != nil && d.QueueTime.After(start) {
		nt.NotBefore, start = *d.QueueTime, *d.QueueTime // a scheduled deployment
	}
	if d.QueueTimeExpiry != nil {
		nt.QueueTimeout = d.QueueTimeExpiry.Sub(start)
	}
	t, err := s.store.CreateTaskIn(ctx, tx, nt)
	if err != nil {
		return err
	}
	d.TaskId = cuttle.FormatID(cuttle.TaskIDPrefix, t.ID)
	d.QueueTime, d.QueueTimeExpiry = &t.QueueTime, &t.QueueTimeExpiry
	tx.Notify(store.ChannelTasks, d.TaskId)
	return resources.Deployments.Update(ctx, tx, d)
}

// createDeploymentV1Body is what deployments/create/untenanted/v1 takes
// (camelCase, as the official clients send it).
type createDeploymentV1Body struct {
	SpaceIdOrName            string            `json:"spaceIdOrName"`
	SpaceId                  string            `json:"spaceId"`
	ProjectName              string            `json:"projectName"`
	ReleaseVersion           string            `json:"releaseVersion"`
	EnvironmentNames         []string          `json:"environmentNames"`
	ForcePackageRedeployment bool              `json:"forcePackageRedeployment"`
	UpdateVariableSnapshot   bool              `json:"updateVariableSnapshot"`
	ForcePackageDownload     bool              `json:"forcePackageDownload"`
	UseGuidedFailure         *bool             `json:"useGuidedFailure"`
	SpecificMachineNames     []string          `json:"specificMachineNames"`
	ExcludedMachineNames     []string          `json:"excludedMachineNames"`
	SkipStepNames            []string          `json:"skipStepNames"`
	RunAt                    string            `json:"runAt"`
	NoRunAfter               string            `json:"noRunAfter"`
	Variables                map[string]string `json:"variables"`
	// Of the tenanted form, refused here.
	Tenants    []string `json:"tenants"`
	TenantTags []string `json:"tenantTags"`
	// Deployment freezes are not kept.
	DeploymentFreezeNames          []string `json:"deploymentFreezeNames"`
	DeploymentFreezeOverrideReason string   `json:"deploymentFreezeOverrideReason"`
}

// createDeploymentV1 deploys a release, named by its project (id, slug or
// name) and version, to environments named by id or name: one deployment,
// with its task, per environment, all or none. Machines are named by id or
// name, steps to skip by name.
func (s *Server) createDeploymentV1(projects docs[cuttle.Project]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var b createDeploymentV1Body
		if err := decodeJSON(w, r, &b); err != nil {
			return err
		}
		if err := checkSpace(b.SpaceIdOrName, b.SpaceId); err != nil {
			return err
		}
		switch {
		case strings.TrimSpace(b.ProjectName) == "":
			return cuttle.Errorf(cuttle.KindInvalid, "projectName is required: the project's id, slug or name.")
		case strings.TrimSpace(b.ReleaseVersion) == "":
			return cuttle.Errorf(cuttle.KindInvalid, "releaseVersion is required.")
		case len(b.EnvironmentNames) == 0:
			return cuttle.Errorf(cuttle.KindInvalid, "environmentNames is required: one environment at least.")
		case len(b.Tenants) > 0 || len(b.TenantTags) > 0:
			return cuttle.Errorf(cuttle.KindInvalid, "Tenanted deployments are not supported yet.")
		}
		runAt, err := optionalTime("runAt", b.RunAt)
		if err != nil {
			return err
		}
		noRunAfter, err := optionalTime("noRunAfter", b.NoRunAfter)
		if err != nil {
			return err
		}
		type created struct{ DeploymentId, ServerTaskId string }
		var out []created
		err = s.store.Update(r.Context(), func(tx *collection.Tx) error {
			ctx := r.Context()
			p, err := findByIDOrName(ctx, tx, projects, b.ProjectName)
			if err != nil {
				return err
			}
			rel, err := releaseOf(ctx, tx, p, b.ReleaseVersion)
			if err != nil {
				return err
			}
			specific, err := machineIDs(ctx, s.store, b.SpecificMachineNames)
			if err != nil {
				return err
			}
			excluded, err := machineIDs(ctx, s.store, b.ExcludedMachineNames)
			if err != nil {
				return err
			}
			skip, err := actionIDs(ctx, tx, rel, b.SkipStepNames)
			if err != nil {
				return err
			}
			guided := guidedFailure(ctx, tx, p, b.UseGuidedFailure)
			for _, name := range b.EnvironmentNames {
				env, err := findByIDOrName(ctx, tx, environmentDocs, name)
				if cuttle.IsKind(err, cuttle.KindNotFound) {
					return cuttle.Errorf(cuttle.KindInvalid, "There is no environment %q.", name)
				}
				if err != nil {
					return err
				}
				if err := allow(r, "DeploymentCreate", resources.Scope{Project: p.ID, ProjectGroup: p.ProjectGroupId, Environment: env.ID}, env.Name); err != nil {
					return err
				}
				d := cuttle.Deployment{Resource: cuttle.Resource{SpaceID: p.SpaceID}, ReleaseId: rel.ID, EnvironmentId: env.ID,
					SpecificMachineIds: specific, ExcludedMachineIds: excluded, SkipActions: skip,
					UseGuidedFailure: guided(env), ForcePackageDownload: b.ForcePackageDownload,
					ForcePackageRedeployment: b.ForcePackageRedeployment, FormValues: b.Variables, QueueTime: runAt, QueueTimeExpiry: noRunAfter}
				stamp(r, &d.Resource)
				if err := s.prepareDeployment(ctx, tx, &d); err != nil {
					return err
				}
				if err := resources.Deployments.Insert(ctx, tx, &d); err != nil {
					return err
				}
				if err := s.queueDeployment(ctx, tx, &d); err != nil {
					return err
				}
				out = append(out, created{d.ID, d.TaskId})
			}
			return nil
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, struct{ DeploymentServerTasks []created }{out})
		return nil
	}
}

// machineIDs returns the ids of machines named by id or name.
// KindInvalid for one that does not exist.
func machineIDs(ctx context.Context, st store.Store, names []string) ([]string, error) {
	out := []string{}
	for _, n := range names {
		q := cuttle.MachineQuery{Name: n}
		if id, err := cuttle.ParseID(cuttle.MachineIDPrefix, n); err == nil {
			q = cuttle.MachineQuery{IDs: []int64{id}}
		}
		ms, err := st.Machines(ctx, q)
		if err != nil {
			return nil, err
		}
		if len(ms) == 0 {
			return nil, cuttle.Errorf(cuttle.KindInvalid, "There is no deployment target %q.", n)
		}
		out = append(out, cuttle.FormatID(cuttle.MachineIDPrefix, ms[0].ID))
	}
	return out, nil
}

// actionIDs returns the ids of the actions of the release's steps named
// (by step or action name, ignoring case). KindInvalid for a name the
// release's process does not have.
func actionIDs(ctx context.Context, tx *collection.Tx, rel cuttle.Release, names []string) ([]string, error) {
	out := []string{}
	if len(names) == 0 {
		return out, nil
	}
	process, err := resources.ProcessSnapshots.Get(ctx, tx, rel.ProjectDeploymentProcessSnapshotId)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		found := false
		for _, st := range process.Steps {
			for _, a := range st.Actions {
				if strings.EqualFold(st.Name, n) || strings.EqualFold(a.Name, n) {
					if !slices.Contains(out, a.Id) {
						out = append(out, a.Id)
					}
					found = true
				}
			}
		}
		if !found {
			return nil, cuttle.Errorf(cuttle.KindInvalid, "The release %s has no step %q to skip.", rel.Version, n)
		}
	}
	return out, nil
}

// guidedFailure returns how a deployment decides guided failure: what the
// command asks, else the project's default mode, else the environment's.
func guidedFailure(ctx context.Context, tx *collection.Tx, p cuttle.Project, asked *bool) func(env cuttle.Environment) bool {
	return func(env cuttle.Environment) bool {
		switch {
		case asked != nil:
			return *asked
		case p.DefaultGuidedFailureMode == cuttle.GuidedFailureOn:
			return true
		case p.DefaultGuidedFailureMode == cuttle.GuidedFailureOff:
			return false
		}
		return env.UseGuidedFailure
	}
}

// deploymentsInState narrows q to the deployments whose tasks are in one
// of the states (comma-separated, as shown: a deployment waiting for a
// person is Executing), and to those of q.IDs already asked for.
func (s *Server) deploymentsInState(ctx context.Context, q *collection.Query, states string) error {
	var want []cuttle.TaskState
	for _, v := range strings.Split(states, ",") {
		st := cuttle.TaskState(strings.TrimSpace(v))
		if !st.Valid() {
			return cuttle.Errorf(cuttle.KindInvalid, "taskState holds %q, which is not a task state; the states are %v.", st, cuttle.TaskStates)
		}
		want = append(want, st)
	}
	ts, _, err := s.store.Tasks(ctx, cuttle.TaskQuery{Name: deploy.TaskName, States: want})
	if err != nil {
		return err
	}
	asked := q.IDs
	ids := []string{"none"} // selects nothing when no task is in the states
	for _, t := range ts {
		var a struct{ DeploymentId string }
		if json.Unmarshal(t.Arguments, &a) == nil && a.DeploymentId != "" &&
			(len(asked) == 0 || slices.ContainsFunc(asked, func(id string) bool { return strings.EqualFold(id, a.DeploymentId) })) {
			ids = append(ids, a.DeploymentId)
		}
	}
	q.IDs = ids
	return nil
}

// optionalTime parses a time of the create call (RFC 3339, as the official
// clients send it); nil for "". KindInvalid names the field otherwise.
func optionalTime(field, v string) (*time.Time, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
	if err != nil {
		return nil, cuttle.Errorf(cuttle.KindInvalid, "%s %q is not a time in RFC 3339 (such as 2026-12-24T18:00:00Z).", field, v)
	}
	return &t, nil
}
