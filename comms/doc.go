// Package comms is the server side of agent traffic: the endpoint polling
// agents reach on every node (default port 10943), the sessions a node opens
// to listening agents, and the queue of agent commands that a task uses to
// run work on its targets. The protocol is package agentapi's; the commands
// live in the database (store.AgentStore), so any node can hand a command
// to its agent and record what comes back, whichever node runs the task.
//
// # A command's life
//
//	          poll hands it out                first report           final report
//	Pending ────────────────────▶ Dispatched ─────────────▶ Running ─────────────▶ Success | Failed | Canceled
//	   │                           │    ▲  no report within            (the first final report wins;
//	   │ cancel                    │    └─ RedeliverAfter: handed       later ones are acknowledged
//	   ▼                           │       out again by a poll          and change nothing)
//	Canceled                       │
//	                               └─ cancel, no report an hour after it was handed out ──▶ Canceled
//
// A cancel of a Dispatched or Running command marks it; the next poll of its
// agent (and every acknowledgement of a report) tells the agent, which stops
// the work, or keeps it from starting, and reports Canceled. A Dispatched
// command with a cancel is not handed out again: its agent may hold it,
// waiting to start it, and must hear of the cancel first.
//
// A task that ends, whoever ends it (its owner, a cancel or an expiry while
// it is queued, a takeover after its node died), stops its unfinished
// commands in the statement that ends it: pending ones end Canceled,
// handed-out ones are marked as cancelled and their agents told as above
// (found by every node's once-a-second look), so that no command runs on
// for a task that has ended. A task handed back to the queue keeps its
// commands running for its next owner.
//
// # Invariants (DESIGN.md 6)
//
//   - An agent runs a command at most once: it journals each UID before it
//     starts the work and answers a UID handed out again with what it has,
//     never by running it again. Handing out again is therefore safe, and is
//     how a command survives the loss of the answer to a poll.
//   - A poll hands out only commands of the machine whose certificate the
//     connection presented (and, for a polling agent, whose subscription id
//     the poll named); a report or a file transfer touches only a command
//     of a machine with that certificate. When the node cannot tell (its
//     database is away), it answers 503 and the agent tries again: it never
//     takes a refusal it would give up on.
//   - Output lines are stored once each by sequence number, with no gaps: a
//     report whose lines start after the first one not stored is refused and
//     answered with what is stored, so the agent resends from there.
//   - Nothing about a command lives only in a node's memory. A task resumed
//     on another node finds its commands by (task, key) and follows them on;
//     its agent reports through whichever node it can reach. A listening
//     agent is reached by the node that runs the task, which opens a
//     session to it while it has commands to follow.
//
// # Bounds (DESIGN.md 13)
//
// What an agent sends is bounded before it costs the node: connections per
// remote address, a deadline on request bodies that moves while data
// arrives (netguard); a report's owner is checked before its body is read,
// and reports are decoded under a gate of a few places per core, a quarter
// of them at most for one agent (report.go), within agentapi's bounds on
// bodies, lines and line length. A command keeps at most the node's
// output bound (what comes after is counted, not stored) and takes no new
// line more than cuttle.OutputGrace after its outcome; an upload is
// bounded by the artifact limit. Refusals that an agent can repeat at will
// are logged through a ratelog.Logger.
//
// # Wake-ups
//
// A queued command or a requested cancel notifies ChannelAgentWork (payload:
// the machine), which wakes the polls of that machine waiting on any node;
// a stored report notifies ChannelCommands (payload: the command), which
// wakes the task following it. Notifications are hints: each node also
// looks for dispatchable machines once a second, and a follower re-reads its
// command once a second.
//
// # Giving up
//
// A follower gives up on an agent that has not confirmed its command
// PickupTimeout after it began following (the task withdraws the command),
// and on a command whose machine was deleted or given another certificate
// (the agent's reports would be refused). A running command has no other
// limit than its own timeout.
package comms
