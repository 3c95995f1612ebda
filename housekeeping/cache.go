package housekeeping

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/agentapi"
	"github.com/cuttledeploy/cuttle/resources"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/tasklog"
	"github.com/cuttledeploy/cuttle/tasks"
)

// cacheParallelism is how many agents PackageCacheCleanup asks at once.
const cacheParallelism = 10

// cacheCleanup asks every enabled deployment target's agent to apply the
// agent retention policy (agentapi.PrunePackages): cached package files
// not deployed from for AgentCacheRetention, and extracted packages beyond
// the default lifecycle's deployment-target retention policy when it
// counts items. An agent that cannot be reached is a warning: the next
// run asks it again.
func (h *keeper) cacheCleanup(ctx context.Context, x *tasks.Execution) error {
	enabled := false
	ms, err := h.cfg.Store.Machines(ctx, cuttle.MachineQuery{IsDisabled: &enabled})
	if err != nil {
		return fmt.Errorf("reading the deployment targets: %w", err)
	}
	prune := agentapi.PrunePackages{MaxAgeDays: max(1, int(h.cfg.Limits.AgentCacheRetention.Hours()/24))}
	err = h.cfg.Store.Read(ctx, func(tx *collection.Tx) error {
		ls, _, err := resources.Lifecycles.List(ctx, tx, collection.Query{Space: resources.DefaultSpaceID, Name: cuttle.DefaultLifecycleName, Take: 1})
		if err == nil && len(ls) == 1 {
			if p := ls[0].TentacleRetentionPolicy; p != nil && !p.ShouldKeepForever && p.Unit == cuttle.RetentionItems {
				prune.KeepFolders = p.QuantityToKeep
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	x.Log.Logf(tasklog.Info, "Asking %d deployment targets to delete cached packages unused for %d days (and to keep the newest %d extracted packages; 0 keeps all).",
		len(ms), prune.MaxAgeDays, prune.KeepFolders)
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, cacheParallelism)
	)
	for _, m := range ms {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			cmd, err := x.RunCommand(ctx, m, "prune/"+cuttle.FormatID(cuttle.MachineIDPrefix, m.ID), cuttle.CommandPrunePackages, prune, tasks.CommandOptions{Block: m.Name})
			if err == nil && cmd.State != cuttle.CommandSuccess {
				err = fmt.Errorf("%s", cmd.Error)
			}
			if err != nil {
				x.Log.Write(tasklog.Line{Category: tasklog.Warning, Block: m.Name, Text: fmt.Sprintf("%s did not clean its package cache: %v", m.Name, err)})
				return
			}
			var r agentapi.PrunePackagesResult
			json.Unmarshal(cmd.Result, &r)
			x.Log.Write(tasklog.Line{Category: tasklog.Info, Block: m.Name, Source: "outcome/" + cmd.UID, Seq: 1,
				Text: fmt.Sprintf("%s deleted %d cached packages (%s) and %d extracted packages.", m.Name, len(r.Files), cuttle.FormatSize(r.Bytes), len(r.Folders))})
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}
