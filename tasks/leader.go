package tasks

import (
	"context"
	"time"

	"github.com/cuttledeploy/cuttle"
)

// leader, while this node leads, sweeps the queue at every heartbeat and as
// soon as it starts leading (queued tasks past their expiry end TimedOut;
// tasks of offline nodes are taken over) and queues each scheduled job when
// it is due. The job schedules
// live in the database and each run is fenced by the leader's term, so a
// change of leader neither skips nor doubles a run.
func (e *Executor) leader(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-e.leading:
			timer.Stop()
		}
		started := time.Now()
		if l, ok := e.member.Leadership(); ok {
			e.sweep(l.Context, l.Term)
		}
		// One sweep per heartbeat, counted from the start of this one: a
		// slow sweep (a loaded database) does not push the next one, and
		// the job due, later.
		timer.Reset(max(0, e.member.State().Settings.HeartbeatFrequency-time.Since(started)))
	}
}

func (e *Executor) sweep(ctx context.Context, term int64) {
	st := e.member.State()
	ctx, cancel := context.WithTimeout(ctx, max(st.Settings.HeartbeatFrequency, time.Second))
	defer cancel()
	if n, err := e.store.ExpireTasks(ctx); err != nil {
		e.log.Warn("expiring queued tasks failed", "err", err)
	} else if n > 0 {
		e.log.Info("queued tasks timed out: no node had room for them", "tasks", n)
	}
	taken, err := e.store.TakeOverTasks(ctx)
	if err != nil {
		e.log.Warn("taking over the tasks of offline nodes failed", "err", err)
	}
	for _, t := range taken {
		e.log.Warn("took over a task of an offline node", "task", cuttle.FormatID(cuttle.TaskIDPrefix, t.ID),
			"node", t.ServerNode, "state", t.State)
		if t.State == cuttle.TaskQueued {
			e.notifyTasks(ctx, t.ID)
		}
	}
	for _, job := range cuttle.Jobs {
		k, ok := e.kinds[job]
		if !ok {
			continue // not run by this node's configuration (tests)
		}
		args, description := k.scheduled()
		t, ok, err := e.store.RunJob(ctx, st.Node.ID, term, job, st.Settings.JobInterval(job), cuttle.NewTask{
			SpaceID: "Spaces-1", Name: job, Description: description, Arguments: args, Resumable: k.Resumable,
		})
		if err != nil {
			e.log.Warn("queuing a scheduled job failed", "job", job, "err", err)
			continue
		}
		if ok {
			e.log.Info("queued a scheduled job", "job", job, "task", cuttle.FormatID(cuttle.TaskIDPrefix, t.ID), "term", term)
			e.notifyTasks(ctx, t.ID)
		}
	}
}
