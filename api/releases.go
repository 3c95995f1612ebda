package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// releases is the releases' collection as the API serves it.
var releases = docs[cuttle.Release]{def: resources.Releases, path: "releases", link: "Releases", itemType: "Release",
	template: "{/id}{?skip,ignoreChannelRules,take,ids}",
	links: func(r *cuttle.Release) map[string]string {
		self := spacePath("releases/" + r.ID)
		return map[string]string{
			"Project":                          spacePath("projects/" + r.ProjectId),
			"Channel":                          spacePath("channels/" + r.ChannelId),
			"Progression":                      self + "/progression",
			"Deployments":                      self + "/deployments{?skip,take}",
			"DeploymentTemplate":               self + "/deployments/template",
			"ProjectDeploymentProcessSnapshot": spacePath("deploymentprocesses/" + r.ProjectDeploymentProcessSnapshotId),
			"ProjectVariableSnapshot":          spacePath("variables/" + r.ProjectVariableSetSnapshotId),
		}
	},
	check: checkRelease,
	perms: perms{view: "ReleaseView", create: "ReleaseCreate", edit: "ReleaseEdit", remove: "ReleaseDelete"},
	where: inProject(func(r *cuttle.Release) string { return r.ProjectId }),
	deleting: func(ctx context.Context, tx *collection.Tx, r *cuttle.Release) error {
		return resources.DeleteReleaseSnapshots(ctx, tx, r)
	},
}

// checkRelease completes a new release (resources.PrepareRelease: its
// channel, version and snapshots), or keeps of a changed one all but its
// notes and custom fields: what a release deploys never changes.
func checkRelease(ctx context.Context, tx *collection.Tx, r, old *cuttle.Release) error {
	if old != nil {
		notes, fields := r.ReleaseNotes, r.CustomFields
		*r = *old
		r.ReleaseNotes, r.CustomFields = notes, fields
		return nil
	}
	if r.ProjectId == "" {
		return cuttle.Errorf(cuttle.KindInvalid, "A release needs a ProjectId.")
	}
	return resources.PrepareRelease(ctx, tx, r)
}

// serveReleases serves the releases, the releases of a project (by version
// too), and the creation of a release by the project's name
// (releases/create/v1, as the official clients create them).
func (s *Server) serveReleases(projects docs[cuttle.Project]) {
	serveDocs(s, releases)
	s.serveDeployments(projects)
	s.serveDashboard()
	ofProject := func(ctx context.Context, tx *collection.Tx, r *http.Request) (map[string]any, string, error) {
		p, err := projects.find(ctx, tx, DefaultSpaceID, r.PathValue("id"), false)
		if err != nil {
			return nil, "", err
		}
		return map[string]any{"project_id": p.ID}, spacePath("projects/" + p.ID + "/releases"), nil
	}
	byVersion := func(w http.ResponseWriter, r *http.Request) error {
		var rel cuttle.Release
		err := s.store.Read(r.Context(), func(tx *collection.Tx) error {
			p, err := projects.find(r.Context(), tx, DefaultSpaceID, r.PathValue("id"), false)
			if err != nil {
				return err
			}
			if rel, err = releaseOf(r.Context(), tx, p, r.PathValue("version")); err != nil {
				return err
			}
			return releases.visible(r.Context(), tx, r, &rel)
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, releases.out(r, &rel))
		return nil
	}
	ofChannel := func(ctx context.Context, tx *collection.Tx, r *http.Request) (map[string]any, string, error) {
		p, err := projects.find(ctx, tx, DefaultSpaceID, r.PathValue("id"), false)
		if err != nil {
			return nil, "", err
		}
		c, err := channelOf(ctx, tx, p, r.PathValue("channel"))
		if err != nil {
			return nil, "", cuttle.Errorf(cuttle.KindNotFound, "The project %s has no channel %q.", p.Name, r.PathValue("channel"))
		}
		return map[string]any{"project_id": p.ID, "channel_id": c.ID}, spacePath("projects/" + p.ID + "/channels/" + c.ID + "/releases"), nil
	}
	for _, prefix := range []string{"/api", "/api/" + DefaultSpaceID} {
		s.handle("GET "+prefix+"/projects/{id}/releases", releases.viewing(), releases.list(s, false, ofProject))
		s.handle("GET "+prefix+"/projects/{id}/channels/{channel}/releases", releases.viewing(), releases.list(s, false, ofChannel))
		s.handle("GET "+prefix+"/projects/{id}/releases/{version}", releases.viewing(), byVersion)
		s.handle("POST "+prefix+"/releases/create/v1", can("ReleaseCreate"), s.createReleaseV1(projects))
		s.handle("GET "+prefix+"/releases/{id}/progression", releases.viewing(), s.handleProgression)
		s.handle("GET "+prefix+"/deploymentprocesses/{id}/template", can("ProcessView"), s.handleProcessTemplate)
	}
}

// releaseOf returns the release of project p with version (ignoring case).
// KindNotFound if it has none.
func releaseOf(ctx context.Context, tx *collection.Tx, p cuttle.Project, version string) (cuttle.Release, error) {
	rs, _, err := resources.Releases.List(ctx, tx, collection.Query{Space: p.SpaceID, Take: 1,
		Where: map[string]any{"project_version": cuttle.ReleaseKey(p.ID, version)}})
	if err != nil {
		return cuttle.Release{}, err
	}
	if len(rs) == 0 {
		return cuttle.Release{}, cuttle.Errorf(cuttle.KindNotFound, "The project %s has no release %q.", p.Name, version)
	}
	return rs[0], nil
}

// createReleaseV1Body is what releases/create/v1 takes (camelCase, as the
// official clients send it); git resources and custom fields are not kept.
type createReleaseV1Body struct {
	SpaceIdOrName         string            `json:"spaceIdOrName"`
	SpaceId               string            `json:"spaceId"`
	ProjectName           string            `json:"projectName"`
	PackageVersion        string            `json:"packageVersion"`
	GitCommit             string            `json:"gitCommit"`
	GitRef                string            `json:"gitRef"`
	ReleaseVersion        string            `json:"releaseVersion"`
	ChannelName           string            `json:"channelName"`
	Packages              []string          `json:"packages"`
	GitResources          []string          `json:"gitResources"`
	ReleaseNotes          string            `json:"releaseNotes"`
	IgnoreIfAlreadyExists bool              `json:"ignoreIfAlreadyExists"`
	IgnoreChannelRules    bool              `json:"ignoreChannelRules"`
	PackagePrerelease     string            `json:"packagePrerelease"`
	CustomFields          map[string]string `json:"customFields"`
}

// createReleaseV1 creates a release of a project named by id, slug or name,
// in a channel named by id or name (the default one when none is named),
// of the version given or the next one by the project's template. With
// ignoreIfAlreadyExists a version the project has already answers that
// release instead of 409.
func (s *Server) createReleaseV1(projects docs[cuttle.Project]) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var b createReleaseV1Body
		if err := decodeJSON(w, r, &b); err != nil {
			return err
		}
		if err := checkSpace(b.SpaceIdOrName, b.SpaceId); err != nil {
			return err
		}
		if strings.TrimSpace(b.ProjectName) == "" {
			return cuttle.Errorf(cuttle.KindInvalid, "projectName is required: the project's id, slug or name.")
		}
		var rel cuttle.Release
		err := s.store.Update(r.Context(), func(tx *collection.Tx) error {
			ctx := r.Context()
			p, err := findByIDOrName(ctx, tx, projects, b.ProjectName)
			if err != nil {
				return err
			}
			if b.ReleaseVersion != "" && b.IgnoreIfAlreadyExists {
				if existing, err := releaseOf(ctx, tx, p, b.ReleaseVersion); err == nil {
					rel = existing
					return nil
				} else if !cuttle.IsKind(err, cuttle.KindNotFound) {
					return err
				}
			}
			process, err := resources.DeploymentProcesses.Get(ctx, tx, p.DeploymentProcessId)
			if err != nil {
				return err
			}
			given, err := resources.GivenPackages(process, b.PackageVersion, b.Packages)
			if err != nil {
				return err
			}
			rel = cuttle.Release{Resource: cuttle.Resource{SpaceID: p.SpaceID}, ProjectId: p.ID, Version: b.ReleaseVersion,
				ReleaseNotes: b.ReleaseNotes, IgnoreChannelRules: b.IgnoreChannelRules, SelectedPackages: given}
			if b.ChannelName != "" {
				c, err := channelOf(ctx, tx, p, b.ChannelName)
				if err != nil {
					return err
				}
				rel.ChannelId = c.ID
			}
			stamp(r, &rel.Resource)
			if err := resources.PrepareRelease(ctx, tx, &rel); err != nil {
				return err
			}
			if err := releases.allowed(ctx, tx, r, "ReleaseCreate", &rel); err != nil {
				return err
			}
			return resources.Releases.Insert(ctx, tx, &rel)
		})
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, struct{ ReleaseId, ReleaseVersion string }{rel.ID, rel.Version})
		return nil
	}
}

// checkSpace returns KindInvalid unless the space a command names, by id
// or name, is the default space (or none is named).
func checkSpace(idOrName, id string) error {
	for _, v := range []string{idOrName, id} {
		if v != "" && !strings.EqualFold(v, DefaultSpaceID) && !strings.EqualFold(v, defaultSpaceName) {
			return cuttle.Errorf(cuttle.KindInvalid, "There is no space %q; this server has the one space %s (%s).", v, DefaultSpaceID, defaultSpaceName)
		}
	}
	return nil
}

// findByIDOrName finds a document of d by id (or its lookup, a slug) and
// then by name, ignoring case.
func findByIDOrName[T any](ctx context.Context, tx *collection.Tx, d docs[T], key string) (T, error) {
	doc, err := d.find(ctx, tx, DefaultSpaceID, key, false)
	if !cuttle.IsKind(err, cuttle.KindNotFound) {
		return doc, err
	}
	found, _, err := d.def.List(ctx, tx, collection.Query{Space: DefaultSpaceID, Name: key, Take: 1})
	if err != nil {
		return doc, err
	}
	if len(found) == 0 {
		return doc, cuttle.Errorf(cuttle.KindNotFound, "There is no %s with the id, slug or name %q.", d.def.Noun, key)
	}
	return found[0], nil
}

// channelOf returns the channel of project p named by id or name.
func channelOf(ctx context.Context, tx *collection.Tx, p cuttle.Project, key string) (cuttle.Channel, error) {
	cs, _, err := resources.Channels.List(ctx, tx, collection.Query{Space: p.SpaceID, Take: -1, Where: map[string]any{"project_id": p.ID}})
	if err != nil {
		return cuttle.Channel{}, err
	}
	for _, c := range cs {
		if strings.EqualFold(c.ID, key) || strings.EqualFold(c.Name, key) {
			return c, nil
		}
	}
	return cuttle.Channel{}, cuttle.Errorf(cuttle.KindInvalid, "The project %s has no channel %q.", p.Name, key)
}

// progressionPhase is a phase of a release's progression, in Octopus's
// shape.
type progressionPhase struct {
	Id                                 *string
	Name                               string
	Blocked                            bool
	Progress                           string
	Deployments                        []struct{}
	AutomaticDeploymentTargets         []string
	OptionalDeploymentTargets          []string
	MinimumEnvironmentsBeforePromotion int
	IsOptionalPhase                    bool
	DeployedTo                         []string // the phase's environments deployed to successfully
}

// handleProgression answers how far a release got through its lifecycle.
func (s *Server) handleProgression(w http.ResponseWriter, r *http.Request) error {
	var (
		phases []resources.PhaseProgress
		next   []string
	)
	err := s.store.Read(r.Context(), func(tx *collection.Tx) error {
		rel, err := releases.find(r.Context(), tx, DefaultSpaceID, r.PathValue("id"), false)
		if err != nil {
			return err
		}
		if err := releases.visible(r.Context(), tx, r, &rel); err != nil {
			return err
		}
		phases, next, err = resources.Progression(r.Context(), tx, rel)
		return err
	})
	if err != nil {
		return err
	}
	out := struct {
		Phases                         []progressionPhase
		NextDeployments                []string
		NextDeploymentsMinimumRequired int
		Links                          map[string]string
	}{Phases: []progressionPhase{}, NextDeployments: next, Links: map[string]string{}}
	for _, p := range phases {
		out.Phases = append(out.Phases, progressionPhase{Name: p.Phase.Name, Progress: p.Progress, Deployments: []struct{}{},
			AutomaticDeploymentTargets: p.Phase.AutomaticDeploymentTargets, OptionalDeploymentTargets: p.Phase.OptionalDeploymentTargets,
			MinimumEnvironmentsBeforePromotion: p.Phase.MinimumEnvironmentsBeforePromotion, IsOptionalPhase: p.Phase.IsOptionalPhase,
			DeployedTo: p.Deployed})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// templatePackage is a package a new release chooses a version of, as the
// process template lists it.
type templatePackage struct {
	ActionName, PackageReferenceName, StepName, PackageId, FeedId string
	VersionSelectedLastRelease                                    string
	IsResolvable                                                  bool
}

// handleProcessTemplate answers what a new release of a process's project
// chooses: the version it would get, and the packages it needs versions
// for.
func (s *Server) handleProcessTemplate(w http.ResponseWriter, r *http.Request) error {
	var next string
	pkgs := []templatePackage{}
	err := s.store.Read(r.Context(), func(tx *collection.Tx) error {
		process, err := resources.DeploymentProcesses.Get(r.Context(), tx, r.PathValue("id"))
		if err != nil {
			return err
		}
		p, err := resources.Projects.Get(r.Context(), tx, process.ProjectId)
		if err != nil {
			return err
		}
		if err := allow(r, "ProcessView", resources.Scope{Project: p.ID, ProjectGroup: p.ProjectGroupId}, process.ID); err != nil {
			return err
		}
		last, err := resources.LatestVersion(r.Context(), tx, p.ID)
		if err != nil {
			return err
		}
		var lastChosen []cuttle.SelectedPackage
		if last != "" {
			if rel, err := releaseOf(r.Context(), tx, p, last); err == nil {
				lastChosen = rel.SelectedPackages
			}
		}
		for _, ref := range resources.PackageRefs(process) {
			tp := templatePackage{ActionName: ref.ActionName, PackageReferenceName: ref.PackageReferenceName, StepName: ref.StepName,
				PackageId: ref.PackageId, FeedId: cuttle.BuiltinFeedID, IsResolvable: true}
			for _, c := range lastChosen {
				if strings.EqualFold(c.ActionName, ref.ActionName) && strings.EqualFold(c.PackageReferenceName, ref.PackageReferenceName) {
					tp.VersionSelectedLastRelease = c.Version
				}
			}
			pkgs = append(pkgs, tp)
		}
		template := ""
		if p.VersioningStrategy != nil {
			template = p.VersioningStrategy.Template
		}
		next, err = cuttle.NextVersion(template, last)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"NextVersionIncrement": next, "VersioningPackageStepName": nil,
		"Packages": pkgs, "GitResources": []struct{}{}})
	return nil
}
