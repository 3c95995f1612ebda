// Package housekeeping is the leader's scheduled jobs that keep a
// cluster's storage tidy by itself: Retention (agent commands, releases
// with their deployments, task logs and artifacts, then packages no kept
// release uses), PackageCacheCleanup (the agents' package caches) and
// PackageReindex (package documents against the files in storage).
//
// The leader queues each job when it is due (tasks, "leader"); any node
// may run it. A job is fenced by the term it began in: every unit of work
// that deletes first reads the leader lease FOR SHARE and goes on only
// while its term is the one the job read when it started, so a leader that
// lost its term in the middle of a run stops deleting there (the next
// deletion fails, and with it the run), and a new leader's election waits
// for a deletion in flight to commit. Files in shared storage are deleted
// after the unit of work that removed their documents commits; a node
// that dies in between leaves files no document names, which re-indexing
// removes (orphans older than feed.OrphanAge).
//
// Every removal is written to the job's task log.
package housekeeping

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/tasklog"
	"github.com/cuttledeploy/cuttle/tasks"
)

// Config is what the jobs act on.
type Config struct {
	Store  store.Store
	Files  blob.Store    // shared storage, keys with their kind's prefix
	Logs   tasklog.Store // task logs, deleted with their deployments
	Limits cuttle.Limits // CommandRetention, PackageRetention, AgentRetention
}

// Kinds returns the three jobs' kinds.
func Kinds(cfg Config) []tasks.Kind {
	cfg.Limits = cfg.Limits.WithDefaults()
	h := &keeper{cfg: cfg}
	return []tasks.Kind{
		tasks.SystemKind(cuttle.JobRetention, "Apply retention policies", h.retention),
		tasks.SystemKind(cuttle.JobPackageCleanup, "Clean up the package caches of deployment targets", h.cacheCleanup),
		tasks.SystemKind(cuttle.JobReindex, "Re-index the built-in package repository", h.reindex),
	}
}

type keeper struct{ cfg Config }

// errTermLost ends a job whose term is no longer the leader's.
var errTermLost = errors.New("the leader's term changed: this run stops deleting; the next leader's run goes on")

// term returns the leader lease's term now.
func (h *keeper) term(ctx context.Context) (int64, error) {
	var term int64
	err := h.cfg.Store.Read(ctx, func(tx *collection.Tx) error {
		_, err := collection.ScanOne(ctx, tx.Q, "SELECT term FROM leader_lease WHERE id = 1", nil, &term)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("reading the leader's term: %w", err)
	}
	return term, nil
}

// fenced runs fn in a unit of work that first checks, holding the lease's
// row FOR SHARE, that the leader's term is still term.
func (h *keeper) fenced(ctx context.Context, term int64, fn func(tx *collection.Tx) error) error {
	return h.cfg.Store.Update(ctx, func(tx *collection.Tx) error {
		ok, err := collection.Exists(ctx, tx.Q, "SELECT 1 FROM leader_lease WHERE id = 1 AND term = ?"+tx.D.ShareLock(), term)
		if err != nil {
			return err
		}
		if !ok {
			return errTermLost
		}
		return fn(tx)
	})
}

// deleteFiles deletes files whose documents are gone, logging each.
func (h *keeper) deleteFiles(ctx context.Context, x *tasks.Execution, keys []string, what string) {
	for _, k := range keys {
		if err := h.cfg.Files.Delete(ctx, k); err != nil {
			x.Log.Logf(tasklog.Warning, "The %s file %s could not be deleted (re-indexing will): %v", what, k, err)
			continue
		}
		x.Log.Logf(tasklog.Verbose, "Deleted the %s file %s.", what, k)
	}
}

// since returns how long ago t was, on this node's clock: retention
// decides by days, so a clock a few seconds off does not matter.
func since(t time.Time) time.Duration { return time.Since(t) }
