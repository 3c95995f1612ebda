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
//   - Renew (Leader every heartbeat): extend where node = me and term = T.
//     Zero rows: the term was lost; step down.
//   - Trust: a leader trusts its term until start_of_last_successful_renew
//     (monotonic) + d - margin (d/6). The database set expires_at = its own
//     now + d after that start, so the node stops trusting before the
//     database lets any other node bid. Trust is checked on every use of
//     leadership, not only by a timer, so a node resumed after SIGSTOP does
//     not act on a term it no longer holds.
//   - Resign (drain, stop): clear node and expiry where node = me and term =
//     T, then notify; followers bid at once instead of waiting for expiry.
//
// Invariant 1 (at most one leader per term) holds because a term is only
// ever created by a bid that succeeded on an empty or expired row, and terms
// only grow. Leader-only work receives the term through Leadership and must
// carry it into its writes, which the store checks in the same statement.
//
// Notifications (PostgreSQL LISTEN/NOTIFY; in-process on SQLite) only make
// things fast: every decision is also taken on the heartbeat.
package cluster
