package tasks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
	"github.com/cuttledeploy/cuttle/tasklog"
)

// Kind is one kind of task, such as AdHocScript.
type Kind struct {
	Name string
	// Resumable kinds continue on another node from their checkpoint when
	// their owner dies; others end Failed, unless Prepare finds a task of
	// theirs resumable.
	Resumable bool
	// System kinds are queued by the cluster itself, never through the API.
	System bool
	// Prepare checks the arguments of a new task and returns its plan. Its
	// errors are KindInvalid and say what is wrong.
	Prepare func(args json.RawMessage) (Plan, error)
	// Scheduled is the arguments of the task a leader queues when the kind
	// is a scheduled job (cuttle.Jobs); nil means none, `{}`.
	Scheduled json.RawMessage
	// Run does the work. It returns nil for Success and an error, whose text
	// becomes the task's error message, for Failed. ctx ends when the task is
	// cancelled or this node loses it; Run must then stop promptly.
	Run func(ctx context.Context, x *Execution) error
}

// Execution is what a running task sees.
type Execution struct {
	Task cuttle.Task
	Log  *tasklog.Writer
	Node string // the name of the node running it
	ref  cuttle.TaskRef
	e    *Executor
	run  *run
	ctx  context.Context // the run's, whose cause tells a lost ownership

	copiedOnce sync.Once
	copied     tasklog.Cursor // the end of the log as this execution began
	copiedErr  error

	checkpointMu  sync.Mutex
	checkpointErr error // the first failed checkpoint write, sticky
}

// owns reports whether this node may still act as the task's owner (as
// for a write of its log): the database confirmed the ownership since the
// node was last cut off, and the run was not stopped as lost. Writes of
// the task's effects that the database does not fence by (owner, epoch)
// check it first.
func (x *Execution) owns() bool { return x.e.mayLog(x.ctx, x.run) }

// copiedSoFar returns the end of the task's log as this execution first
// asked: what earlier owners copied into it (tasklog.Cursor.LastSeq).
func (x *Execution) copiedSoFar() (tasklog.Cursor, error) {
	x.copiedOnce.Do(func() { x.copied, x.copiedErr = x.e.logs.End(x.Task.ID) })
	return x.copied, x.copiedErr
}

// Checkpoint stores where a resumable task has got to, so that a node taking
// it over resumes from there (x.Task.Checkpoint). KindConflict if this node
// no longer owns the task. Once a write fails, every later call returns its
// error and writes nothing: a failed write may still commit in the database
// (DESIGN.md invariant 9), and a later checkpoint must never be overtaken by
// it, so the run ends instead and its next owner resumes from what is stored.
func (x *Execution) Checkpoint(ctx context.Context, checkpoint []byte) error {
	x.checkpointMu.Lock()
	defer x.checkpointMu.Unlock()
	if x.checkpointErr != nil {
		return x.checkpointErr
	}
	err := x.e.store.SaveCheckpoint(ctx, x.ref, checkpoint)
	if cuttle.IsKind(err, cuttle.KindConflict) {
		x.e.cancelRun(x.Task.ID, errLost)
	}
	x.checkpointErr = err
	return err
}

// ErrParked is what Run returns after Park: the task waits for a person,
// owned by no node, and its run is over without a result.
var ErrParked = errors.New("the task waits for a person")

// Park parks the task (package doc, "Parked tasks") in one unit of work
// with its checkpoint (nil keeps the last) and record, which stores what
// it waits for; with releaseKey the next task of its concurrency key may
// run while it waits. Run must then return ErrParked, having nothing more to do
// until a node claims the task again (its checkpoint tells that node where
// the task got to). While the database is away it tries again until ctx
// ends. KindConflict if this node no longer owns the task, or it is being
// cancelled (the run is then cancelled: lost, or Canceled); the error of a
// checkpoint write that failed before.
func (x *Execution) Park(ctx context.Context, checkpoint []byte, releaseKey bool, record func(ctx context.Context, tx *collection.Tx) error) error {
	x.checkpointMu.Lock()
	defer x.checkpointMu.Unlock()
	if x.checkpointErr != nil {
		return x.checkpointErr
	}
	err := retryUnavailable(ctx, func() error {
		return x.e.store.Update(ctx, func(tx *collection.Tx) error {
			if err := record(ctx, tx); err != nil {
				return err
			}
			return x.e.store.ParkTask(ctx, tx, x.ref, checkpoint, releaseKey)
		})
	})
	if err != nil && checkpoint != nil {
		x.checkpointErr = err // as Checkpoint: a failed write may still commit
	}
	if cuttle.IsKind(err, cuttle.KindConflict) {
		// Cancelled while it parked, or lost: the run ends so, as the
		// monitor would end it, so that a cancel ends it Canceled.
		cause := errLost
		if t, rerr := x.e.store.Task(context.WithoutCancel(ctx), x.Task.ID); rerr == nil &&
			t.State == cuttle.TaskCancelling && t.OwnerID == x.ref.Owner && t.Epoch == x.ref.Epoch {
			cause = errCanceled
		}
		x.e.cancelRun(x.Task.ID, cause)
	}
	return err
}

// Plan is what Prepare makes of a new task.
type Plan struct {
	Description string
	// Resumable makes this task resumable, whatever its kind's Resumable.
	Resumable bool
}

// Kinds is a set of task kinds by name.
type Kinds map[string]Kind

// Add adds a kind; it panics on a duplicate name, a programming error.
func (ks Kinds) Add(k Kind) {
	if _, dup := ks[k.Name]; dup {
		panic("tasks: duplicate kind " + k.Name)
	}
	ks[k.Name] = k
}

// Names returns the names of the kinds a user may queue, sorted.
func (ks Kinds) Names() []string {
	var names []string
	for n, k := range ks {
		if !k.System {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Prepare checks a task a user asks to queue and returns it ready for the
// store. KindInvalid for an unknown or system kind, or bad arguments.
func (ks Kinds) Prepare(t cuttle.NewTask) (cuttle.NewTask, error) {
	k, ok := ks[t.Name]
	if !ok || k.System {
		return t, cuttle.Errorf(cuttle.KindInvalid, "There is no task named %q; the tasks you can queue are %v.", t.Name, ks.Names())
	}
	if len(t.Arguments) == 0 || string(t.Arguments) == "null" {
		t.Arguments = json.RawMessage(`{}`)
	}
	plan, err := k.Prepare(t.Arguments)
	if err != nil {
		return t, err
	}
	if t.Description == "" {
		t.Description = plan.Description
	}
	t.Resumable = k.Resumable || plan.Resumable
	return t, nil
}

// decodeArguments decodes task arguments strictly into v: unknown
// arguments and wrong types are KindInvalid errors naming the task.
func decodeArguments(kind string, args json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return cuttle.Errorf(cuttle.KindInvalid, "The arguments of %s are invalid: %s.", kind, describe(err))
	}
	return nil
}

func describe(err error) string {
	if typ, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("%s must be a JSON %s", typ.Field, typ.Type.Kind())
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
