// Package store defines the contract between cuttle's services and its
// database, and (in storetest) the conformance suite every implementation
// passes. Implementations: store/sqlite (embedded, one node) and
// store/postgres (a cluster of nodes).
//
// Every time that decides liveness or a lease comes from the database's clock
// (DESIGN.md invariant 7): implementations compare against it in SQL and
// never take a time from the caller for that.
package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// Store is a cuttle database. Its methods are safe for concurrent use. A
// node calls InitCluster before anything else. Times have at least
// millisecond resolution. The store never publishes notifications itself:
// the caller that changed something calls Notify. Errors
// are *cuttle.Error: KindNotFound for a missing row, KindConflict for a change
// the row's state forbids, KindUnavailable when the database cannot be reached,
// KindInternal otherwise.
type Store interface {
	// Close releases the store's connections.
	Close() error

	// Now returns the database's clock.
	Now(ctx context.Context) (time.Time, error)

	// InitCluster creates the cluster's identity with the given master-key
	// fingerprint and default settings if the database holds none yet, and
	// returns the identity the database holds (which may carry another
	// fingerprint: the caller compares).
	InitCluster(ctx context.Context, keyFingerprint string) (cuttle.Cluster, error)
	// Settings returns the cluster's settings.
	Settings(ctx context.Context) (cuttle.ClusterSettings, error)
	// UpdateSettings replaces the cluster's settings; the caller validates them.
	UpdateSettings(ctx context.Context, s cuttle.ClusterSettings) error

	// RegisterNode creates the node of that name, or takes over the existing
	// row of that name (keeping its id, cap and drain unless reg.TaskCap is
	// set), records the registration's facts, and checks it in. Each
	// registration starts a new incarnation of the node (Node.Incarnation one
	// more), which ends the one before: a late check-in of an older
	// incarnation changes nothing.
	RegisterNode(ctx context.Context, reg cuttle.NodeRegistration) (cuttle.Node, error)
	// CheckIn sets the node's last seen to the database's now and returns
	// it, if ref is the node's live incarnation. KindNotFound if the node was
	// removed; KindConflict if that incarnation ended (a clean stop, or a
	// later registration of the node), since a check-in that lost its
	// context may commit after the stop (DESIGN.md invariant 9).
	CheckIn(ctx context.Context, ref cuttle.NodeRef) (cuttle.Node, error)
	// SetOffline ends the incarnation ref at once (a clean stop): the node is
	// offline from then on, and the leader lease is resigned if the node
	// holds it, in the same transaction, so that a bid still in flight cannot
	// leave a stopped node leading. It reports whether it resigned the
	// lease. An incarnation that already ended is left alone. KindNotFound
	// if there is no such node.
	SetOffline(ctx context.Context, ref cuttle.NodeRef) (resigned bool, err error)
	// Nodes returns every node ordered by id, with IsOffline computed against
	// the database clock and the stale timeout.
	Nodes(ctx context.Context) ([]cuttle.Node, error)
	// Node returns one node. KindNotFound if there is none.
	Node(ctx context.Context, id int64) (cuttle.Node, error)
	// UpdateNode applies the update and returns the node. KindNotFound if there is none.
	UpdateNode(ctx context.Context, id int64, u cuttle.NodeUpdate) (cuttle.Node, error)
	// DeleteNode removes an offline node. KindConflict if it is online,
	// KindNotFound if there is none.
	DeleteNode(ctx context.Context, id int64) error

	// Lease returns the leader lease as it stands, and the database's now.
	Lease(ctx context.Context) (cuttle.Lease, time.Time, error)
	// BidLease takes the lease for the node with the next term, for d, if
	// nobody holds it or it expired, and only if the node is online and not
	// draining. It reports whether the node won (false also for the holder
	// of a valid lease, which renews instead); the returned lease is the
	// current one either way.
	BidLease(ctx context.Context, nodeID int64, d time.Duration) (cuttle.Lease, bool, error)
	// RenewLease sets the expiry of the node's lease for term to the
	// database's now plus d, even if it had expired, since nobody else took
	// the term meanwhile. KindConflict if the node no longer holds that term
	// or is draining.
	RenewLease(ctx context.Context, nodeID, term int64, d time.Duration) (cuttle.Lease, error)
	// ResignLease gives the lease up if the node holds it for term (NodeID
	// becomes 0 and ExpiresAt zero; the term stays, so the next bid takes
	// term+1); otherwise it does nothing.
	ResignLease(ctx context.Context, nodeID, term int64) error

	TaskStore
	AgentStore

	// Read runs fn with the document collections for reads outside a
	// transaction (see package collection and package resources).
	Read(ctx context.Context, fn func(tx *collection.Tx) error) error
	// Update runs fn as one unit of work over the collections: a
	// transaction that commits if fn returns nil, and only then publishes
	// the notifications fn queued, so a rolled-back change notifies nobody
	// (DESIGN.md invariant 10). It returns fn's error, or the database's.
	Update(ctx context.Context, fn func(tx *collection.Tx) error) error

	// Notify publishes a notification to every listener of every node. A
	// payload is small: an id, never a document (PostgreSQL caps it near 8 kB).
	Notify(ctx context.Context, channel, payload string) error
	// Listen delivers every notification published after it returns, until
	// ctx ends or the store closes, then closes the channel. It fails with
	// KindUnavailable if the database cannot be reached when it is called.
	// After a lost connection is restored it delivers a notification on
	// ChannelResync, since any number may have been missed. Notifications are
	// hints: a listener also polls, and never depends on receiving one.
	Listen(ctx context.Context) (<-chan Notification, error)
}

// Notification channels.
const (
	ChannelLeader   = "cuttle_leader"   // the lease was resigned or taken
	ChannelNodes    = "cuttle_nodes"    // a node's settings changed; payload: its id
	ChannelSettings = "cuttle_settings" // the cluster settings changed
	ChannelTasks    = "cuttle_tasks"    // a task was queued; payload: its id
	ChannelCancel   = "cuttle_cancel"   // a task is cancelling; payload: its id
	ChannelMachines = "cuttle_machines" // a machine was created, changed or deleted; payload: its id
	// ChannelAgentWork: a machine has a command to hand out or a cancel to
	// deliver; payload: the machine's id.
	ChannelAgentWork = "cuttle_agent_work"
	// ChannelCommands: a command's output or state changed; payload: its id.
	ChannelCommands = "cuttle_commands"
	// ChannelTaskLogs: a task's log grew; payload: the task's id
	// (live.LogNotifier).
	ChannelTaskLogs = "cuttle_task_logs"
	ChannelResync   = "cuttle_resync" // delivered locally after a reconnect
	// ChannelDocuments: a document was created, changed or deleted;
	// payload: its id. Units of work publish it after commit.
	ChannelDocuments = collection.Channel
)

// Channels lists the channels a listener receives.
var Channels = []string{ChannelLeader, ChannelNodes, ChannelSettings, ChannelTasks, ChannelCancel,
	ChannelMachines, ChannelAgentWork, ChannelCommands, ChannelDocuments, ChannelTaskLogs}

// Notification is one message from Notify.
type Notification struct {
	Channel string
	Payload string
}

// TaskStore is the durable task queue (see package tasks for the state
// machine). Every write by an owner is fenced: it names the task's owner and
// epoch (cuttle.TaskRef) and changes nothing if either moved on.
type TaskStore interface {
	// CreateTask queues a task: QueueTime is the database's now and
	// QueueTimeExpiry now plus t.QueueTimeout (cuttle.DefaultQueueTimeout if zero).
	CreateTask(ctx context.Context, t cuttle.NewTask) (cuttle.Task, error)
	// CreateTaskIn queues a task in the unit of work tx, as CreateTask:
	// with the document it runs for (a deployment), say.
	CreateTaskIn(ctx context.Context, tx *collection.Tx, t cuttle.NewTask) (cuttle.Task, error)
	// Task returns one task. KindNotFound if there is none.
	Task(ctx context.Context, id int64) (cuttle.Task, error)
	// Tasks returns the page of tasks q selects, newest first, and how many it selects in all.
	Tasks(ctx context.Context, q cuttle.TaskQuery) ([]cuttle.Task, int, error)

	// ClaimTasks claims for the node up to limit of the oldest queued tasks
	// whose expiry has not passed, not parked, and of a concurrency key
	// only the oldest, while no task of that key is Executing, Cancelling
	// or parked; and no more than its task cap less the
	// tasks it executes (Executing or Cancelling) now; none if the node is
	// offline or draining. Each claimed task becomes Executing with the
	// node as owner (ServerNode its name), its epoch one more, and its
	// StartTime set if it was zero. Concurrent claims never claim one task twice.
	ClaimTasks(ctx context.Context, nodeID int64, limit int) ([]cuttle.Task, error)
	// OwnedTasks returns the tasks the node owns that are Executing or Cancelling.
	OwnedTasks(ctx context.Context, nodeID int64) ([]cuttle.TaskRef, error)
	// SaveCheckpoint stores a resumable task's checkpoint. KindConflict if
	// the ref's owner and epoch no longer own the task.
	SaveCheckpoint(ctx context.Context, ref cuttle.TaskRef, checkpoint []byte) error
	// FinishTasks ends each task whose ref still owns it (Executing or
	// Cancelling) with its result and CompletedTime now, and returns the ids
	// of the results that were fenced out (changed nothing). A result of
	// State Queued hands the task back instead: it is queued again, keeping
	// its epoch and checkpoint, with its expiry pushed to now plus its queue
	// timeout if that is later (a Cancelling one ends Canceled). KindInvalid
	// for any other state, or two results for one task.
	FinishTasks(ctx context.Context, results []cuttle.TaskResult) (lost []int64, err error)

	// ParkTask parks a task that waits for a person (package tasks, "Parked
	// tasks"), in the unit of work tx that records what it waits for: it is
	// handed back Queued, its epoch kept and its checkpoint set to
	// checkpoint (nil keeps it), and marked Parked, so that no claim takes
	// it and no expiry ends it. It holds its concurrency key while it waits
	// unless releaseKey, which lets the next task of its key run meanwhile.
	// KindConflict if ref no longer owns the task or it is Cancelling;
	// KindInvalid if checkpoint is not JSON.
	ParkTask(ctx context.Context, tx *collection.Tx, ref cuttle.TaskRef, checkpoint []byte, releaseKey bool) error
	// ResumeTask makes a parked task claimable again, in the unit of work
	// tx that records the answer, and pushes its queue expiry to at least
	// now plus its queue timeout. KindConflict if it is not parked,
	// KindNotFound if there is no such task.
	ResumeTask(ctx context.Context, tx *collection.Tx, id int64) error

	// CancelTask cancels a task: a queued one ends Canceled at once, an
	// executing one becomes Cancelling (its owner finishes it), a cancelling
	// one stays so. It returns the task as it now is. KindConflict if it
	// has completed, KindNotFound if there is none.
	CancelTask(ctx context.Context, id int64) (cuttle.Task, error)
	// ExpireTasks ends TimedOut every queued task whose expiry has passed,
	// with a message saying no node had room, and returns how many.
	ExpireTasks(ctx context.Context) (int, error)
	// TakeOverTasks handles the Executing and Cancelling tasks whose owner
	// is offline: Cancelling ones end Canceled; resumable Executing ones go
	// back to Queued (keeping their checkpoint); other Executing ones end
	// Failed with a message naming the node. It returns the tasks as changed.
	TakeOverTasks(ctx context.Context) ([]cuttle.Task, error)

	// RunJob queues t for the leader-only job if the job is due (it never
	// ran, or its last run is at least interval old: a changed interval
	// applies to the next run) and the node holds the leader lease for
	// term, unexpired; then it sets the job's last run to now. All of it is one transaction, so a term that
	// moved on queues nothing and a run is never doubled. ok reports whether
	// it queued the task.
	RunJob(ctx context.Context, nodeID, term int64, job string, interval time.Duration, t cuttle.NewTask) (task cuttle.Task, ok bool, err error)
	// Schedules returns every job's schedule, ordered by job name.
	Schedules(ctx context.Context) ([]cuttle.Schedule, error)
}

// AbandonAfter is how long a command that was handed out, then cancelled
// before its agent confirmed it, is kept for its agent to learn of the
// cancel; then it ends Canceled (see DispatchCommands).
const AbandonAfter = time.Hour

// AgentStore holds what agent traffic needs: the cluster's certificate,
// machines, and the queue of agent commands with their output
// (see package comms for the command state machine).
type AgentStore interface {
	// InitClusterCertificate stores c if the cluster has no certificate yet,
	// and returns the one the database holds.
	InitClusterCertificate(ctx context.Context, c cuttle.ClusterCertificate) (cuttle.ClusterCertificate, error)

	// MachineOfEnvironment returns the id and name of a machine of the
	// environment numbered envID (environments are the collection
	// resources.Environments), read in the unit of work tx; found is false
	// if it has none. The caller locks the environment first
	// (GetForUpdate): CreateMachine and UpdateMachine share that lock, so a
	// machine cannot join an environment while it is being deleted.
	MachineOfEnvironment(ctx context.Context, tx *collection.Tx, envID int64) (id int64, name string, found bool, err error)

	// CreateMachine creates a machine and returns it with its id, health
	// Unknown. KindConflict if its space has a machine of that name or its
	// subscription id is taken; KindInvalid if an environment does not exist.
	CreateMachine(ctx context.Context, m cuttle.Machine) (cuttle.Machine, error)
	// Machine returns one machine. KindNotFound if there is none.
	Machine(ctx context.Context, id int64) (cuttle.Machine, error)
	// Machines returns the machines q selects, by name.
	Machines(ctx context.Context, q cuttle.MachineQuery) ([]cuttle.Machine, error)
	// UpdateMachine replaces what a user may change of the machine of m.ID
	// (name, roles, environments, endpoint, thumbprint, disabled), keeping
	// its health. Errors as CreateMachine's, and KindNotFound.
	UpdateMachine(ctx context.Context, m cuttle.Machine) (cuttle.Machine, error)
	// DeleteMachine removes a machine. KindNotFound if there is none.
	DeleteMachine(ctx context.Context, id int64) error
	// SetMachineHealth records a health check's findings, dated now, unless
	// the machine holds the findings of a later task (h.TaskID is lower than
	// theirs): then it changes nothing. KindNotFound if there is no such machine.
	SetMachineHealth(ctx context.Context, id int64, h cuttle.MachineHealth) error

	// EnsureCommands queues each command unless its task already has one
	// with its key, and returns every one of them in order, the existing
	// ones as they are: a resumed task finds what it queued before. New
	// commands are Pending with a fresh UID. KindInvalid for a command
	// without a machine, task, key or kind, or a payload that is not JSON.
	EnsureCommands(ctx context.Context, cmds []cuttle.NewCommand) ([]cuttle.Command, error)
	// Command returns one command. KindNotFound if there is none.
	Command(ctx context.Context, id int64) (cuttle.Command, error)
	// CommandByUID returns the command with that UID. KindNotFound if none.
	CommandByUID(ctx context.Context, uid string) (cuttle.Command, error)
	// DispatchCommands hands out up to limit of the machine's commands,
	// oldest first: Pending ones, and Dispatched ones handed out at least
	// redeliverAfter ago (by the database clock) with no report since and
	// no cancel requested. Each becomes Dispatched, dated now, by node. It
	// also returns the UIDs of the machine's Dispatched and Running
	// commands whose cancel was requested and its agent not told of within
	// redeliverAfter. A Dispatched command whose cancel was requested ends
	// Canceled once AbandonAfter has passed since it was handed out with no
	// report from its agent.
	DispatchCommands(ctx context.Context, machineID int64, node string, limit int, redeliverAfter time.Duration) (cmds []cuttle.Command, cancel []string, err error)
	// DispatchableMachines returns the machines that DispatchCommands would
	// give something now.
	DispatchableMachines(ctx context.Context, redeliverAfter time.Duration) ([]int64, error)
	// RecordReport stores what the agent of the machine reports of one of
	// its commands: output lines are kept once each by sequence number, and
	// a final state is kept by the first report that brings one (with
	// FinishedAt now); a report of Running moves a Pending or Dispatched
	// command to Running. It returns the command as stored. KindNotFound if
	// the machine has no command with that UID; KindConflict if the lines
	// start after the first one not yet stored (the agent must resend from
	// OutputSeq+1); KindInvalid for a state other than Running, Success,
	// Failed or Canceled, lines out of order or of an unknown stream, and
	// new lines more than r.Bound's grace after the outcome. Lines over
	// r.Bound are counted, not stored (cuttle.CommandReport.Plan).
	RecordReport(ctx context.Context, machineID int64, r cuttle.CommandReport) (cuttle.Command, error)
	// CommandOutput returns up to limit lines of the command's output after
	// the line afterSeq, in order.
	CommandOutput(ctx context.Context, id, afterSeq int64, limit int) ([]cuttle.CommandLine, error)
	// CancelCommand asks for a command to be stopped: a Pending one ends
	// Canceled at once; a Dispatched or Running one is marked, for the next
	// poll to tell its agent; a final one is left as it is. It returns the
	// command as it now is. KindNotFound if there is none.
	CancelCommand(ctx context.Context, id int64) (cuttle.Command, error)
	// DeleteEndedCommands deletes, with their output, up to limit commands
	// of tasks that completed more than age ago by the database clock, and
	// returns how many it deleted. The task's log keeps their output.
	DeleteEndedCommands(ctx context.Context, age time.Duration, limit int) (int, error)
}

// CheckpointArg returns a task's checkpoint as a statement's argument:
// its text, or nil for none. KindInvalid if it is not JSON.
func CheckpointArg(checkpoint []byte) (*string, error) {
	if checkpoint == nil {
		return nil, nil
	}
	if !json.Valid(checkpoint) {
		return nil, cuttle.Errorf(cuttle.KindInvalid, "A task's checkpoint must be JSON.")
	}
	text := string(checkpoint)
	return &text, nil
}
