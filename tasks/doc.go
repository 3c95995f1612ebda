// Package tasks runs cuttle's server tasks: a durable queue in the database
// that every node of a cluster draws from, with task caps, drain, queue
// expiry, cancellation from any node, live logs in shared storage, and
// takeover of a dead node's work. It never imports the api package.
//
// # States
//
//	          claim (owner = node, epoch+1)          finish (fenced)
//	Queued ────────────────────────────────▶ Executing ─────────────────▶ Success | Failed
//	  │  ▲                                     │     │
//	  │  └──── owner offline, kind resumable ──┘     │ cancel requested (any node)
//	  │        (keeps its checkpoint)                ▼
//	  │                                          Cancelling ──owner stops──▶ Canceled
//	  │                                              │
//	  │                                              └──owner offline──────▶ Canceled
//	  ├── cancel ──────────────────────────────────────────────────────────▶ Canceled
//	  └── still queued at QueueTimeExpiry ─────────────────────────────────▶ TimedOut
//	Executing ── owner offline, kind not resumable ──────────────────────▶ Failed
//
//	Executing ── park (fenced; waits for a person) ──▶ Queued+parked ── resume ──▶ Queued
//	                                                        └── cancel ─────────▶ Canceled
//
// # Parked tasks
//
// A task that waits for a person (a deployment's manual intervention or
// guided failure) is parked: its owner hands it back (as at a clean stop:
// Queued, its epoch and checkpoint kept) marked parked, in the unit of work
// that records what it waits for. A parked task is owned by no node and
// counts in no cap; no claim takes it and no queue expiry ends it, however
// long it waits; the API shows it Executing with HasPendingInterruptions.
// Resuming it (in the unit of work that records the person's answer) takes
// the mark off and pushes its expiry on by its queue timeout, and the next
// claim, on any node, runs it from its checkpoint. A cancel ends a parked
// task Canceled at once, as a queued one.
//
// # One at a time
//
// A task may name a concurrency key (a deployment: its project and
// environment). A claim takes a keyed task only when no task of its key is
// Executing, Cancelling or parked holding its key, and only the oldest
// queued one of a key that is due; a unique partial index over the keys of
// running tasks and of parked ones that hold their key is the fence that
// refuses a second one whatever two claims race. A task parks holding its
// key unless it releases it (Execution.Park's releaseKey: a manual
// intervention that does not block concurrent deployments); resumed, it is
// again the oldest of its key, and runs once the one that ran meanwhile
// has ended.
//
// # Invariants (DESIGN.md 2, 3, 4)
//
//   - Ownership is (owner node, epoch). A claim sets both in one statement;
//     every later write of the task (progress, checkpoint, log segment,
//     final state) is conditional on both, and a write that changes no row
//     means ownership was lost: the executor stops the task's work at once,
//     killing its processes. So a task executes on at most one node.
//   - Takeover happens only for a task whose owner the database clock says
//     is offline (last seen older than the stale timeout, or stopped), and
//     bumps the epoch, fencing the old owner out. An owner stops its own
//     work when it has not checked in for the stale timeout, measured on its
//     monotonic clock, so it has stopped before anyone can take over.
//   - Log segments are files, outside the database's fencing, so a run
//     writes its log only while its node has stayed Alive since the
//     database last confirmed the run's ownership (its claim, or a
//     reconcile that found it). A node resumed after a pause checks in and
//     counts itself Alive again before its monitor learns that it lost its
//     tasks; in between, their writes wait for the monitor, which ends
//     them, instead of reaching the segment.
//   - A claim counts the node's Executing and Cancelling tasks in the
//     database, the only truth; a node runs one claimer at a time, so
//     concurrent claims of one node cannot overshoot its cap.
//   - Every task ends Success, Failed, Canceled or TimedOut: the leader's
//     sweep (each heartbeat) takes over tasks of offline owners and expires
//     queued tasks, so nothing stays Executing or Cancelling without a live
//     owner, nor Queued past its expiry.
//
// # Logs
//
// An owner writes the log lines of its epoch to its own segment file in
// the task-logs storage (one writer per file, never shared); a reader
// merges a task's segments in epoch order and streams them, never holding
// a whole log in memory.
package tasks
