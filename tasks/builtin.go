package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/blob"
	"github.com/cuttledeploy/cuttle/tasklog"
)

// Builtin returns the kinds every node runs: AdHocScript, the diagnostic
// Noop and Wait, file transfers, and the health checks the leader
// schedules (package housekeeping adds the other scheduled jobs).
func Builtin(files blob.Store) Kinds {
	ks := Kinds{}
	ks.Add(adHocScript())
	ks.Add(Kind{
		Name:    "Noop",
		Prepare: noArguments("Noop", "Does nothing (measures the task queue)"),
		Run:     func(context.Context, *Execution) error { return nil },
	})
	ks.Add(waitKind())
	ks.Add(healthKind())
	ks.Add(transferFile(files))
	ks.Add(collectFile())
	return ks
}

// SystemKind returns a resumable kind of task the cluster queues itself (a
// scheduled job), which takes no arguments.
func SystemKind(name, description string, run func(ctx context.Context, x *Execution) error) Kind {
	return Kind{Name: name, System: true, Resumable: true, Prepare: noArguments(name, description), Run: run}
}

// noArguments is the Prepare of a kind that takes no arguments.
func noArguments(kind, description string) func(json.RawMessage) (Plan, error) {
	return func(args json.RawMessage) (Plan, error) {
		var none struct{}
		return Plan{Description: description}, decodeArguments(kind, args, &none)
	}
}

// Description returns what a task of the kind does, as its Prepare
// describes one with no arguments.
func (k Kind) Description() string {
	p, _ := k.Prepare(json.RawMessage(`{}`))
	return p.Description
}

// scheduled returns the arguments and the description of the task a
// leader queues when the kind is a scheduled job.
func (k Kind) scheduled() (args json.RawMessage, description string) {
	args = k.Scheduled
	if args == nil {
		args = json.RawMessage(`{}`)
	}
	p, _ := k.Prepare(args)
	return args, p.Description
}

// maxWait bounds the Seconds of a Wait task: one day.
const maxWait = 86400

// waitKind waits a number of seconds, checkpointing each one, so that a
// node taking it over resumes where it got to: a diagnostic for failover.
func waitKind() Kind {
	type args struct{ Seconds int }
	return Kind{
		Name:      "Wait",
		Resumable: true,
		Prepare: func(raw json.RawMessage) (Plan, error) {
			var a args
			if err := decodeArguments("Wait", raw, &a); err != nil {
				return Plan{}, err
			}
			if a.Seconds < 0 || a.Seconds > maxWait {
				return Plan{}, cuttle.Errorf(cuttle.KindInvalid, "Wait's Seconds must be between 0 and %d.", maxWait)
			}
			return Plan{Description: fmt.Sprintf("Wait %d seconds (resumable)", a.Seconds)}, nil
		},
		Run: func(ctx context.Context, x *Execution) error {
			var a args
			var done struct{ Elapsed int }
			if err := json.Unmarshal(x.Task.Arguments, &a); err != nil {
				return err
			}
			if len(x.Task.Checkpoint) > 0 {
				if err := json.Unmarshal(x.Task.Checkpoint, &done); err != nil {
					return fmt.Errorf("the checkpoint cannot be read: %v", err)
				}
				x.Log.Logf(tasklog.Info, "Resuming on node %s after %d of %d seconds.", x.Node, done.Elapsed, a.Seconds)
			} else {
				x.Log.Logf(tasklog.Info, "Waiting %d seconds on node %s.", a.Seconds, x.Node)
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for done.Elapsed < a.Seconds {
				select {
				case <-ctx.Done():
					return context.Cause(ctx)
				case <-tick.C:
				}
				done.Elapsed++
				b, _ := json.Marshal(done)
				if err := x.Checkpoint(ctx, b); err != nil {
					return err
				}
				x.Log.Logf(tasklog.Verbose, "%d of %d seconds.", done.Elapsed, a.Seconds)
			}
			return nil
		},
	}
}
