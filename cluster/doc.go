// Package cluster keeps one node's membership of a cuttle cluster: it checks
// the node in, follows the cluster settings, elects one leader through a
// lease in the database, and drains. It never imports the api package.
//
// # Check-in
//
// Every heartbeat (cluster setting, default 1 s) a Member writes its node's
// last seen with the database's clock, re-reads its own row (task cap, drain)
// and the cluster settings. A node is online while its last seen is within
// the stale timeout (default 10 s) of the database's now; a clean stop marks
// it offline at once. The node itself is healthy (its ping answers 200 or
// 418) while its last successful check-in, measured on its own monotonic
// clock, is less than one lease duration old; otherwise ping answers 503.
//
// Each registration starts a new incarnation of the node's row, and the
// clean stop ends it (store.Store.SetOffline, which also resigns a lease the
// node holds). A check-in writes only into its own live incarnation: a
// check-in that lost its context to the stop may still commit after the
// stop (DESIGN.md invariant 9), and must not bring the node back online.
//
// # Leadership
//
// One row holds the lease: (term, node, expires_at). Lease duration d is
// three heartbeats. Each node runs this state machine once per heartbeat and
// at once on a leadership or node notification:
//
//	            bid won (term T)                   renew ok
//	Follower ─────────────────────────▶ Leader(T) ◀────────┐
//	   ▲  ▲                               │  │  └──────────┘
//	   │  │  renew refused (term moved,   │  │
//	   │  └── or node draining)  ◀────────┘  │ draining / stopping:
//	   │                                     │ resign (clear the row, notify)
//	   └─────────────────────────────────────┘
//	   also: trust window passed without a successful renew
//
// The steps:
//
//   - Bid (Follower, online, not draining, healthy): one statement sets
//     node = me, term = term+1, expires = db_now + d where the row is empty
//     or expired and my node row is online and not draining. At most one
//     bidder can win a term.
//   - Renew (Leader every heartbeat, first thing in the tick, since the
//     trust window is the tick's tightest deadline; ticks keep their rate
//     however long one takes): extend where node = me and term = T. Zero
//     rows: the term was lost, or the node drains; step down and resign.
//   - Trust: a leader trusts its term until start_of_last_successful_renew
//     (monotonic) + d - margin (d/6). The database set expires_at = its own
//     now + d after that start, so the node stops trusting before the
//     database lets any other node bid. Trust is checked on every use of
//     leadership, not only by a timer, so a node resumed after SIGSTOP does
//     not act on a term it no longer holds.
//   - Lapse: when the trust window passes without a successful renew (a
//     slow database, a busy machine), the node steps down but remembers
//     the term, and renews it on its next tick (at once): if nobody bid
//     meanwhile, the database still holds the term for it and it leads
//     again, so a slow renewal does not hand leadership to another node. No
//     other node can have led that term, so invariant 1 holds.
//   - Resign (drain, stop): clear node and expiry where node = me and term =
//     T, then notify; followers bid at once instead of waiting for expiry.
//     A clean stop also clears the lease in the transaction that ends the
//     incarnation, and bids read the node's row FOR SHARE, so a bid still in
//     flight at the stop cannot leave a stopped node holding the lease.
//
// Invariant 1 (at most one leader per term) holds because a term is only
// ever created by a bid that succeeded on an empty or expired row, and terms
// only grow. Leader-only work receives the term through Leadership and must
// carry it into its writes, which the store checks in the same statement.
//
// Notifications (PostgreSQL LISTEN/NOTIFY; in-process on SQLite) only make
// things fast: every decision is also taken on the heartbeat.
package cluster
