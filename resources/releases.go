package resources

import (
	"context"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/semver"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// Releases are the projects' releases; a version is unique in its project,
// ignoring case. Newest first.
var Releases = &collection.Def[cuttle.Release]{
	Table: "releases", Prefix: "Releases-", Noun: "release", Spaced: true,
	Columns: []collection.Column[cuttle.Release]{
		{Name: "project_id", Refers: Projects, Value: func(r *cuttle.Release) any { return r.ProjectId }},
		{Name: "channel_id", Refers: Channels, Value: func(r *cuttle.Release) any { return r.ChannelId }},
		{Name: "release_version", Fold: true, Value: func(r *cuttle.Release) any { return r.Version }},
		{Name: "project_version", Fold: true, Unique: true, Label: "version in its project",
			Value: func(r *cuttle.Release) any { return cuttle.ReleaseKey(r.ProjectId, r.Version) }},
		// The package versions it chose, by cuttle.PackageIdentity.
		{Name: "packages", Kind: collection.IDs, Value: func(r *cuttle.Release) any {
			var ids []string
			for _, p := range r.SelectedPackages {
				if p.PackageId != "" {
					ids = append(ids, cuttle.PackageIdentity(p.PackageId, p.Version))
				}
			}
			return ids
		}},
	},
	Order: "id DESC",
}

// ProcessSnapshots and VariableSetSnapshots are the deployment processes
// and variable sets as releases froze them: written when a release is
// created, never changed, deleted with their release.
var (
	ProcessSnapshots = &collection.Def[cuttle.DeploymentProcess]{
		Table: "process_snapshots", Prefix: "DeploymentProcessSnapshots-", Noun: "deployment process snapshot", Spaced: true,
		Columns: []collection.Column[cuttle.DeploymentProcess]{
			{Name: "project_id", Refers: Projects, Value: func(p *cuttle.DeploymentProcess) any { return p.ProjectId }},
		},
	}
	VariableSetSnapshots = &collection.Def[cuttle.VariableSet]{
		Table: "variable_set_snapshots", Prefix: "VariableSetSnapshots-", Noun: "variable set snapshot", Spaced: true,
		Columns: []collection.Column[cuttle.VariableSet]{
			{Name: "owner_id", Refers: Projects, Value: func(v *cuttle.VariableSet) any { return v.OwnerId }},
		},
	}
)

// PrepareRelease completes a release about to be created in tx, whose
// ProjectId is set: its channel (the project's default channel when
// ChannelId is empty; KindInvalid for a channel of another project), its
// version (from the project's versioning template when Version is empty),
// its assembly time and empty lists, and snapshots of the project's
// deployment process and variable set, which it inserts. KindInvalid for
// an unknown project or a version that is not one.
func PrepareRelease(ctx context.Context, tx *collection.Tx, r *cuttle.Release) error {
	p, err := Projects.Get(ctx, tx, r.ProjectId)
	if cuttle.IsKind(err, cuttle.KindNotFound) {
		return cuttle.Errorf(cuttle.KindInvalid, "There is no project %q to release.", r.ProjectId)
	}
	if err != nil {
		return err
	}
	if r.ChannelId == "" {
		if r.ChannelId, err = DefaultChannel(ctx, tx, p.ID); err != nil {
			return err
		}
	} else if c, err := Channels.Get(ctx, tx, r.ChannelId); err != nil || !strings.EqualFold(c.ProjectId, p.ID) {
		return cuttle.Errorf(cuttle.KindInvalid, "The channel %q is not one of the project %s's.", r.ChannelId, p.Name)
	}
	if strings.TrimSpace(r.Version) == "" {
		last, err := LatestVersion(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		template := ""
		if p.VersioningStrategy != nil {
			template = p.VersioningStrategy.Template
		}
		if r.Version, err = cuttle.NextVersion(template, last); err != nil {
			return err
		}
	}
	r.Version = strings.TrimSpace(r.Version)
	if err := cuttle.CheckReleaseVersion(r.Version); err != nil {
		return err
	}
	r.ProjectId, r.Assembled = p.ID, time.Now().UTC()
	if r.LibraryVariableSetSnapshotIds == nil {
		r.LibraryVariableSetSnapshotIds = []string{}
	}
	process, err := DeploymentProcesses.Get(ctx, tx, p.DeploymentProcessId)
	if err != nil {
		return err
	}
	vars, err := VariableSets.Get(ctx, tx, p.VariableSetId)
	if err != nil {
		return err
	}
	channel, err := Channels.Get(ctx, tx, r.ChannelId)
	if err != nil {
		return err
	}
	if err := choosePackages(ctx, tx, r, process, channel); err != nil {
		return err
	}
	process.Resource = cuttle.Resource{SpaceID: process.SpaceID}
	vars.Resource = cuttle.Resource{SpaceID: vars.SpaceID}
	if err := ProcessSnapshots.Insert(ctx, tx, &process); err != nil {
		return err
	}
	if err := VariableSetSnapshots.Insert(ctx, tx, &vars); err != nil {
		return err
	}
	r.ProjectDeploymentProcessSnapshotId, r.ProjectVariableSetSnapshotId = process.ID, vars.ID
	return nil
}

// DeleteReleaseSnapshots deletes the snapshots of release r, which is
// being deleted.
func DeleteReleaseSnapshots(ctx context.Context, tx *collection.Tx, r *cuttle.Release) error {
	if err := ProcessSnapshots.Delete(ctx, tx, r.ProjectDeploymentProcessSnapshotId); err != nil && !cuttle.IsKind(err, cuttle.KindNotFound) {
		return err
	}
	if err := VariableSetSnapshots.Delete(ctx, tx, r.ProjectVariableSetSnapshotId); err != nil && !cuttle.IsKind(err, cuttle.KindNotFound) {
		return err
	}
	return nil
}

// DeleteRelease deletes a release and its snapshots. KindNotFound if there
// is no such release.
func DeleteRelease(ctx context.Context, tx *collection.Tx, id string) error {
	r, err := Releases.Get(ctx, tx, id)
	if err != nil {
		return err
	}
	if err := Releases.Delete(ctx, tx, id); err != nil {
		return err
	}
	return DeleteReleaseSnapshots(ctx, tx, &r)
}

// LatestVersion returns the highest version of the project's releases, ""
// if it has none.
func LatestVersion(ctx context.Context, tx *collection.Tx, projectID string) (string, error) {
	rs, _, err := Releases.List(ctx, tx, collection.Query{Space: DefaultSpaceID, Take: -1, Where: map[string]any{"project_id": projectID}})
	if err != nil {
		return "", err
	}
	var best *semver.Version
	for _, r := range rs {
		v, err := semver.Parse(r.Version)
		if err == nil && (best == nil || semver.Compare(v, *best) > 0) {
			best = &v
		}
	}
	if best == nil {
		return "", nil
	}
	return best.String(), nil
}

// DefaultChannel returns the id of the project's default channel.
func DefaultChannel(ctx context.Context, tx *collection.Tx, projectID string) (string, error) {
	cs, _, err := Channels.List(ctx, tx, collection.Query{Space: DefaultSpaceID, Take: -1, Where: map[string]any{"project_id": projectID}})
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		if c.IsDefault {
			return c.ID, nil
		}
	}
	return "", cuttle.Errorf(cuttle.KindInvalid, "The project %s has no default channel.", projectID)
}
