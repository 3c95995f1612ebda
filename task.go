package cuttle

import (
	"encoding/json"
	"time"
)

// TaskState is where a task is in its life (see package tasks for the
// state machine).
type TaskState string

// Task states, as the Octopus API names them.
const (
	TaskQueued     TaskState = "Queued"
	TaskExecuting  TaskState = "Executing"
	TaskCancelling TaskState = "Cancelling"
	TaskSuccess    TaskState = "Success"
	TaskFailed     TaskState = "Failed"
	TaskCanceled   TaskState = "Canceled"
	TaskTimedOut   TaskState = "TimedOut"
)

// TaskStates lists every state.
var TaskStates = []TaskState{TaskQueued, TaskExecuting, TaskCancelling, TaskSuccess, TaskFailed, TaskCanceled, TaskTimedOut}

// Completed reports whether a task in this state has ended.
func (s TaskState) Completed() bool {
	return s == TaskSuccess || s == TaskFailed || s == TaskCanceled || s == TaskTimedOut
}

// Valid reports whether s is a known state.
func (s TaskState) Valid() bool {
	for _, v := range TaskStates {
		if s == v {
			return true
		}
	}
	return false
}

// TaskIDPrefix is the prefix of a task's API id, as in "ServerTasks-42".
const TaskIDPrefix = "ServerTasks-"

// DefaultQueueTimeout is how long a task may wait for a node with room
// before it ends TimedOut: one day.
const DefaultQueueTimeout = 24 * time.Hour

// Task is a durable unit of server work.
type Task struct {
	ID          int64
	SpaceID     string
	Name        string // the kind, such as "AdHocScript"
	Description string
	Arguments   json.RawMessage // a JSON object
	State       TaskState
	// Resumable tasks continue on another node from their checkpoint when
	// their owner dies; others end Failed.
	Resumable  bool
	Checkpoint json.RawMessage // nil if none

	QueueTime       time.Time
	QueueTimeExpiry time.Time
	StartTime       time.Time // zero until first claimed
	CompletedTime   time.Time // zero until completed
	LastUpdatedTime time.Time

	// OwnerID is the node that executes the task, or executed it last; 0 if none.
	OwnerID int64
	// ServerNode is the name of that node, kept after the node is removed.
	ServerNode string
	// Epoch counts the claims of the task; with OwnerID it fences every write.
	Epoch int64

	ErrorMessage        string
	HasWarningsOrErrors bool

	// Parked is set on a task that waits for a person (package tasks,
	// "Parked tasks"): it is Queued, but no claim takes it, no expiry ends
	// it, and the API shows it Executing with pending interruptions.
	Parked bool
	// ConcurrencyKey, when set, lets one task of the key run (or be
	// parked) at a time.
	ConcurrencyKey string
}

// Shown returns the state the API shows: a parked task is Executing.
func (t Task) Shown() TaskState {
	if t.Parked && t.State == TaskQueued {
		return TaskExecuting
	}
	return t.State
}

// NewTask is a task to queue.
type NewTask struct {
	SpaceID     string
	Name        string
	Description string
	Arguments   json.RawMessage // a JSON object; nil for {}
	Resumable   bool
	// QueueTimeout is how long the task may stay queued (from NotBefore,
	// if later than now); zero means DefaultQueueTimeout.
	QueueTimeout time.Duration
	// NotBefore, if later than the database's now, is when the task may
	// first be claimed (a scheduled deployment): its QueueTime.
	NotBefore time.Time
	// ConcurrencyKey: see Task.
	ConcurrencyKey string
}

// TaskRef names one ownership of a task: the task, its owner and its epoch.
type TaskRef struct {
	ID    int64
	Owner int64
	Epoch int64
	State TaskState // as last read: Executing or Cancelling
}

// TaskResult is how an owner ends a task, or hands it back.
type TaskResult struct {
	TaskRef
	State               TaskState // Success, Failed or Canceled; Queued hands it back
	ErrorMessage        string
	HasWarningsOrErrors bool
}

// TaskQuery selects tasks; zero fields select all. Tasks are ordered newest first.
type TaskQuery struct {
	IDs        []int64
	States     []TaskState // as shown (Task.Shown): a parked task is Executing
	Name       string      // the kind
	NodeName   string      // ServerNode
	OwnerID    int64
	Skip, Take int // Take 0: no limit
	// NoCheckpoints leaves every listed task's Checkpoint nil: a
	// deployment's can be large, and a list seldom needs it.
	NoCheckpoints bool
}

// Leader-only scheduled jobs: each enqueues a system task of the same name.
const (
	JobRetention      = "Retention"
	JobPackageCleanup = "PackageCacheCleanup"
	JobHealthCheck    = "Health" // queues a Health task (package tasks)
	JobReindex        = "PackageReindex"
)

// Jobs lists the scheduled jobs.
var Jobs = []string{JobRetention, JobPackageCleanup, JobHealthCheck, JobReindex}

// Schedule is when a leader-only job last ran (database time). It is next
// due one interval (a cluster setting) after its last run.
type Schedule struct {
	Job      string
	LastRun  time.Time // zero if never
	LastTask int64     // the task the last run queued; 0 if none
}

// NextRun returns when the job is due, given its interval: at once (the zero
// time) if it never ran.
func (sc Schedule) NextRun(interval time.Duration) time.Time {
	if sc.LastRun.IsZero() {
		return time.Time{}
	}
	return sc.LastRun.Add(interval)
}

// CheckResults returns a KindInvalid error unless every result ends its task
// Success, Failed or Canceled, or hands it back (Queued), and no task has
// two results.
func CheckResults(results []TaskResult) error {
	seen := make(map[int64]bool, len(results))
	for _, r := range results {
		switch r.State {
		case TaskSuccess, TaskFailed, TaskCanceled, TaskQueued:
		default:
			return Errorf(KindInvalid, "A task cannot end %q: only Success, Failed or Canceled, or go back to Queued.", r.State)
		}
		if seen[r.ID] {
			return Errorf(KindInvalid, "The task %s has more than one result.", FormatID(TaskIDPrefix, r.ID))
		}
		seen[r.ID] = true
	}
	return nil
}
