package housekeeping

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/tasklog"
	"github.com/cuttledeploy/cuttle/tasks"
)

// Batches: agent commands one statement deletes; releases one unit of
// work deletes (with their deployments, interruptions and artifacts).
const (
	commandBatch = 1000
	releaseBatch = 100
)

// retention applies the retention policies: agent commands of tasks that
// ended over CommandRetention ago; releases beyond their lifecycle's
// release retention policy; packages no kept release uses, uploaded over
// PackageRetention ago; events of the audit log over EventRetention old.
func (h *keeper) retention(ctx context.Context, x *tasks.Execution) error {
	term, err := h.term(ctx)
	if err != nil {
		return err
	}
	x.Log.Logf(tasklog.Info, "Applying retention policies on node %s, under the leader's term %d.", x.Node, term)
	if err := h.commands(ctx, x); err != nil {
		return err
	}
	if err := h.releases(ctx, x, term); err != nil {
		return err
	}
	if err := h.packages(ctx, x, term); err != nil {
		return err
	}
	return h.events(ctx, x, term)
}

// eventBatch is how many events one unit of work deletes.
const eventBatch = 500

// events deletes the audit log's events older than EventRetention.
func (h *keeper) events(ctx context.Context, x *tasks.Execution, term int64) error {
	age := h.cfg.Limits.EventRetention
	before := time.Now().Add(-age).UnixMilli()
	total := 0
	for {
		n := 0
		err := h.fenced(ctx, term, func(tx *collection.Tx) error {
			old, _, err := resources.Events.List(ctx, tx, collection.Query{Space: resources.DefaultSpaceID, Take: eventBatch,
				Below: map[string]int64{"occurred": before}})
			for _, e := range old {
				if err == nil {
					err = resources.Events.Delete(ctx, tx, e.ID)
				}
			}
			n = len(old)
			return err
		})
		if err != nil {
			return fmt.Errorf("deleting events older than %v (%d deleted so far): %w", age, total, err)
		}
		total += n
		if n < eventBatch {
			break
		}
	}
	x.Log.Logf(tasklog.Info, "Deleted %d events of the audit log older than %v.", total, age)
	return nil
}

// commands deletes the agent commands, and their output, of tasks that
// ended more than CommandRetention ago (the tasks' logs keep the output).
// They are no one's to fence: any node may delete them.
func (h *keeper) commands(ctx context.Context, x *tasks.Execution) error {
	age := h.cfg.Limits.CommandRetention
	total := 0
	for {
		n, err := h.cfg.Store.DeleteEndedCommands(ctx, age, commandBatch)
		if err != nil {
			return fmt.Errorf("deleting the agent commands of tasks that ended over %v ago (%d deleted so far): %w", age, total, err)
		}
		total += n
		if n < commandBatch {
			break
		}
	}
	x.Log.Logf(tasklog.Info, "Deleted %d agent commands, and their output, of tasks that ended over %v ago.", total, age)
	return nil
}

// releases deletes, project by project, the releases their lifecycle's
// release retention policy lets go: beyond the newest QuantityToKeep
// (Items) or assembled over QuantityToKeep days ago (Days). Always kept:
// a release deployed to an environment now (its latest successful
// deployment there), and one with a deployment not yet ended.
func (h *keeper) releases(ctx context.Context, x *tasks.Execution, term int64) error {
	var doomed []cuttle.Release
	err := h.cfg.Store.Read(ctx, func(tx *collection.Tx) error {
		projects, _, err := resources.Projects.List(ctx, tx, collection.Query{Space: resources.DefaultSpaceID, Take: -1})
		if err != nil {
			return err
		}
		lifecycles := map[string]cuttle.Lifecycle{} // by channel id
		for _, p := range projects {
			d, err := h.doomedOf(ctx, tx, p, lifecycles)
			if err != nil {
				return err
			}
			doomed = append(doomed, d...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the releases: %w", err)
	}
	x.Log.Logf(tasklog.Info, "%d releases are beyond their lifecycle's retention policy.", len(doomed))
	deleted := 0
	for start := 0; start < len(doomed); start += releaseBatch {
		batch := doomed[start:min(start+releaseBatch, len(doomed))]
		n, err := h.deleteReleases(ctx, x, term, batch)
		deleted += n
		if err != nil {
			return fmt.Errorf("deleting releases (%d deleted so far): %w", deleted, err)
		}
	}
	x.Log.Logf(tasklog.Info, "Deleted %d releases, with their deployments, task logs and artifacts.", deleted)
	return nil
}

// doomedOf returns the releases of project p that retention deletes.
func (h *keeper) doomedOf(ctx context.Context, tx *collection.Tx, p cuttle.Project, lifecycles map[string]cuttle.Lifecycle) ([]cuttle.Release, error) {
	rels, _, err := resources.Releases.List(ctx, tx, collection.Query{Space: p.SpaceID, Take: -1, Where: map[string]any{"project_id": p.ID}})
	if err != nil {
		return nil, err
	}
	deps, _, err := resources.Deployments.List(ctx, tx, collection.Query{Space: p.SpaceID, Take: -1, Where: map[string]any{"project_id": p.ID}})
	if err != nil {
		return nil, err
	}
	pinned := map[string]bool{}
	deployedTo := map[string]bool{} // environments whose current release is pinned
	for _, d := range deps {        // newest first
		switch {
		case !d.State.Completed():
			pinned[d.ReleaseId] = true
		case d.State == cuttle.TaskSuccess && !deployedTo[d.EnvironmentId]:
			deployedTo[d.EnvironmentId] = true
			pinned[d.ReleaseId] = true
		}
	}
	var doomed []cuttle.Release
	newer := map[string]int{} // releases seen so far, by lifecycle
	for _, r := range rels {  // newest first
		l, ok := lifecycles[r.ChannelId]
		if !ok {
			if l, err = resources.LifecycleOf(ctx, tx, r); err != nil {
				return nil, fmt.Errorf("the lifecycle of release %s: %w", r.ID, err)
			}
			lifecycles[r.ChannelId] = l
		}
		policy := l.ReleaseRetentionPolicy
		index := newer[l.ID]
		newer[l.ID]++
		if pinned[r.ID] || policy == nil || policy.ShouldKeepForever || policy.QuantityToKeep <= 0 {
			continue
		}
		switch policy.Unit {
		case cuttle.RetentionItems:
			if index < policy.QuantityToKeep {
				continue
			}
		default: // days
			if since(r.Assembled) < time.Duration(policy.QuantityToKeep)*24*time.Hour {
				continue
			}
		}
		doomed = append(doomed, r)
	}
	return doomed, nil
}

// deleteReleases deletes a batch of releases in one fenced unit of work,
// then their task logs and artifact files. A release that a new deployment
// names meanwhile makes the batch go one release at a time, skipping it.
func (h *keeper) deleteReleases(ctx context.Context, x *tasks.Execution, term int64, batch []cuttle.Release) (int, error) {
	var (
		taskIDs []int64
		files   []string
	)
	del := func(rels []cuttle.Release) error {
		taskIDs, files = nil, nil
		return h.fenced(ctx, term, func(tx *collection.Tx) error {
			for _, r := range rels {
				ts, fs, err := deleteRelease(ctx, tx, r)
				if err != nil {
					return err
				}
				taskIDs, files = append(taskIDs, ts...), append(files, fs...)
			}
			return nil
		})
	}
	after := func(rels []cuttle.Release) {
		for _, r := range rels {
			x.Log.Logf(tasklog.Info, "Deleted release %s (%s) of %s.", r.Version, r.ID, r.ProjectId)
		}
		for _, id := range taskIDs {
			if err := h.cfg.Logs.Remove(ctx, id); err != nil {
				x.Log.Logf(tasklog.Warning, "The log of %s could not be deleted: %v", cuttle.FormatID(cuttle.TaskIDPrefix, id), err)
			}
		}
		h.deleteFiles(ctx, x, files, "artifact")
	}
	err := del(batch)
	if err == nil {
		after(batch)
		return len(batch), nil
	}
	if !cuttle.IsKind(err, cuttle.KindConflict) || len(batch) == 1 {
		return 0, err
	}
	n := 0
	for _, r := range batch {
		one := []cuttle.Release{r}
		switch err := del(one); {
		case err == nil:
			after(one)
			n++
		case cuttle.IsKind(err, cuttle.KindConflict):
			x.Log.Logf(tasklog.Info, "Kept release %s (%s): %v", r.Version, r.ID, err)
		default:
			return n, err
		}
	}
	return n, nil
}

// deleteRelease deletes a release, its snapshots, its deployments with
// their interruptions and artifact documents, in tx; it returns the
// deployments' task ids and the artifacts' storage keys.
func deleteRelease(ctx context.Context, tx *collection.Tx, r cuttle.Release) (taskIDs []int64, files []string, err error) {
	deps, _, err := resources.Deployments.List(ctx, tx, collection.Query{Space: r.SpaceID, Take: -1, Where: map[string]any{"release_id": r.ID}})
	if err != nil {
		return nil, nil, err
	}
	for _, d := range deps {
		if !d.State.Completed() {
			return nil, nil, cuttle.Errorf(cuttle.KindConflict, "its deployment %s has not ended", d.ID)
		}
		ins, _, err := resources.Interruptions.List(ctx, tx, collection.Query{Space: r.SpaceID, Take: -1, Where: map[string]any{"related": d.ID}})
		if err != nil {
			return nil, nil, err
		}
		for _, in := range ins {
			if err := resources.Interruptions.Delete(ctx, tx, in.ID); err != nil {
				return nil, nil, err
			}
		}
		as, _, err := resources.Artifacts.List(ctx, tx, collection.Query{Space: r.SpaceID, Take: -1, Where: map[string]any{"server_task_id": d.TaskId}})
		if err != nil {
			return nil, nil, err
		}
		for _, a := range as {
			if err := resources.Artifacts.Delete(ctx, tx, a.ID); err != nil {
				return nil, nil, err
			}
			files = append(files, a.StorageKey)
		}
		if err := resources.Deployments.Delete(ctx, tx, d.ID); err != nil {
			return nil, nil, err
		}
		if id, err := cuttle.ParseID(cuttle.TaskIDPrefix, d.TaskId); err == nil {
			taskIDs = append(taskIDs, id)
		}
	}
	if err := resources.DeleteRelease(ctx, tx, r.ID); err != nil && !cuttle.IsKind(err, cuttle.KindNotFound) {
		return nil, nil, err
	}
	return taskIDs, files, nil
}

// packages deletes the package versions of the built-in feed that no
// release uses (the releases left are the kept ones) and that were
// uploaded over PackageRetention ago.
func (h *keeper) packages(ctx context.Context, x *tasks.Execution, term int64) error {
	var ps []cuttle.Package
	err := h.cfg.Store.Read(ctx, func(tx *collection.Tx) error {
		var err error
		ps, err = resources.PackageVersions(ctx, tx, resources.DefaultSpaceID, "")
		return err
	})
	if err != nil {
		return fmt.Errorf("reading the feed: %w", err)
	}
	age := h.cfg.Limits.PackageRetention
	deleted := 0
	for _, p := range ps {
		if since(p.Published) < age {
			continue
		}
		gone := false
		err := h.fenced(ctx, term, func(tx *collection.Tx) error {
			// As it is now, locked: an upload may have replaced it.
			cur, err := resources.Packages.GetForUpdate(ctx, tx, p.ID)
			if err != nil || since(cur.Published) < age {
				return err
			}
			used, _, err := resources.Releases.List(ctx, tx, collection.Query{Space: p.SpaceID, Take: 1,
				Where: map[string]any{"packages": cuttle.PackageIdentity(p.PackageId, p.PackageVersion)}})
			if err != nil || len(used) > 0 {
				return err
			}
			gone, p = true, cur
			return resources.Packages.Delete(ctx, tx, p.ID)
		})
		if errors.Is(err, errTermLost) || (err != nil && !cuttle.IsKind(err, cuttle.KindNotFound)) {
			return fmt.Errorf("deleting package %s %s (%d deleted so far): %w", p.PackageId, p.PackageVersion, deleted, err)
		}
		if gone && err == nil {
			deleted++
			x.Log.Logf(tasklog.Info, "Deleted package %s %s: no kept release uses it, uploaded %s ago.", p.PackageId, p.PackageVersion,
				strings.TrimSuffix(since(p.Published).Round(time.Hour).String(), "0m0s"))
			h.deleteFiles(ctx, x, []string{p.StorageKey}, "package")
		}
	}
	x.Log.Logf(tasklog.Info, "Deleted %d package versions no kept release uses, uploaded over %v ago.", deleted, age)
	return nil
}
