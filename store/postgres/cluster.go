package postgres

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cuttledeploy/cuttle"
)

// staleTimeout is SQL for the cluster's stale timeout as an interval: the
// default one until InitCluster has run.
var staleTimeout = interval(`coalesce((SELECT c.stale_timeout_us FROM cluster c WHERE c.id = 1), ` +
	strconv.FormatInt(cuttle.DefaultStaleTimeout.Microseconds(), 10) + `)`)

// offline is SQL for whether the node in table alias t is offline: stopped
// cleanly, never seen, or not seen for the stale timeout by the database's
// clock.
func offline(t string) string {
	return `(` + t + `.stopped OR ` + t + `.last_seen IS NULL OR ` + t + `.last_seen < clock_timestamp() - ` + staleTimeout + `)`
}

// InitCluster creates the cluster's identity, with a new random installation
// id (a version 4 UUID from gen_random_uuid()), keyFingerprint and
// cuttle.DefaultClusterSettings, if the database holds none yet. It returns
// the identity the database holds, whose fingerprint may differ from
// keyFingerprint: the caller compares. Nodes calling it at once agree on one
// identity.
func (s *Store) InitCluster(ctx context.Context, keyFingerprint string) (cuttle.Cluster, error) {
	def := cuttle.DefaultClusterSettings()
	_, err := s.pool.Exec(ctx, `
		INSERT INTO cluster (id, installation_id, key_fingerprint, created_at, `+settingsColumns+`)
		VALUES (1, gen_random_uuid()::text, $1, clock_timestamp(), $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO NOTHING`,
		append([]any{keyFingerprint}, settingsArgs(def)...)...)
	if err != nil {
		return cuttle.Cluster{}, dbError(err, "initializing the cluster")
	}
	// A statement of its own, so that it sees a row another node inserted
	// while this one waited.
	var c cuttle.Cluster
	err = s.pool.QueryRow(ctx, `SELECT installation_id, key_fingerprint, created_at FROM cluster WHERE id = 1`).
		Scan(&c.InstallationID, &c.KeyFingerprint, &c.CreatedAt)
	if err != nil {
		return cuttle.Cluster{}, dbError(err, "reading the cluster")
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}

// settingsColumns are the columns of the cluster's settings, in the order
// of settingsArgs and settingsFields.
const settingsColumns = `heartbeat_us, stale_timeout_us,
	retention_interval_us, package_cleanup_interval_us, health_check_interval_us, reindex_interval_us`

// settingsArgs returns the values of settingsColumns, in microseconds.
func settingsArgs(cs cuttle.ClusterSettings) []any {
	var args []any
	for _, d := range settingsFields(&cs) {
		args = append(args, d.Microseconds())
	}
	return args
}

// settingsFields returns pointers to the fields of cs, in the order of
// settingsColumns.
func settingsFields(cs *cuttle.ClusterSettings) []*time.Duration {
	return []*time.Duration{&cs.HeartbeatFrequency, &cs.StaleTimeout,
		&cs.RetentionInterval, &cs.PackageCleanupInterval, &cs.HealthCheckInterval, &cs.ReindexInterval}
}

// Settings returns the cluster's settings, or cuttle.DefaultClusterSettings
// before InitCluster has run. Durations have microsecond resolution.
func (s *Store) Settings(ctx context.Context) (cuttle.ClusterSettings, error) {
	var cs cuttle.ClusterSettings
	fields := settingsFields(&cs)
	us := make([]int64, len(fields))
	dest := make([]any, len(fields))
	for i := range us {
		dest[i] = &us[i]
	}
	err := s.pool.QueryRow(ctx, `SELECT `+settingsColumns+` FROM cluster WHERE id = 1`).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return cuttle.DefaultClusterSettings(), nil
	}
	if err != nil {
		return cuttle.ClusterSettings{}, dbError(err, "reading the cluster settings")
	}
	for i, f := range fields {
		*f = time.Duration(us[i]) * time.Microsecond
	}
	return cs, nil
}

// UpdateSettings replaces the cluster's settings, truncating durations to
// whole microseconds; the caller validates them. Liveness is computed when
// read, so a new stale timeout applies at once to every node. KindNotFound
// before InitCluster has run.
func (s *Store) UpdateSettings(ctx context.Context, cs cuttle.ClusterSettings) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE cluster SET (`+settingsColumns+`) = ($1, $2, $3, $4, $5, $6)
		WHERE id = 1`, settingsArgs(cs)...)
	if err != nil {
		return dbError(err, "updating the cluster settings")
	}
	if tag.RowsAffected() == 0 {
		return cuttle.Errorf(cuttle.KindNotFound, "The cluster has not been initialized.")
	}
	return nil
}

// runningTasks is SQL for the number of tasks the node aliased n executes
// now (Executing or Cancelling); the tasks_running index answers it.
const runningTasks = `(SELECT count(*) FROM tasks r WHERE r.owner_id = n.id AND r.state IN ('Executing', 'Cancelling'))`

// nodeColumns are the columns scanNode reads, from nodes aliased n.
var nodeColumns = `n.id, n.name, n.max_concurrent_tasks, n.draining, n.last_seen, ` + offline("n") + `,
	n.version, n.os, n.addresses, n.key_fingerprint, n.started_at, n.incarnation, ` + runningTasks

func scanNode(row pgx.Row) (cuttle.Node, error) {
	var (
		n                   cuttle.Node
		lastSeen, startedAt *time.Time
	)
	err := row.Scan(&n.ID, &n.Name, &n.MaxConcurrentTasks, &n.IsInMaintenanceMode, &lastSeen, &n.IsOffline,
		&n.Version, &n.OS, &n.Addresses, &n.KeyFingerprint, &startedAt, &n.Incarnation, &n.RunningTaskCount)
	if err != nil {
		return cuttle.Node{}, err
	}
	n.LastSeen = utc(lastSeen)
	n.StartedAt = utc(startedAt)
	if len(n.Addresses) == 0 {
		n.Addresses = nil
	}
	return n, nil
}

func nodeNotFound(id int64) error {
	return cuttle.Errorf(cuttle.KindNotFound, "There is no node with the id %q.", cuttle.FormatID(cuttle.NodeIDPrefix, id))
}

// oneNode scans the single node row, mapping no row to KindNotFound.
func oneNode(row pgx.Row, id int64, what string) (cuttle.Node, error) {
	n, err := scanNode(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return cuttle.Node{}, nodeNotFound(id)
	}
	if err != nil {
		return cuttle.Node{}, dbError(err, what)
	}
	return n, nil
}

// RegisterNode creates the node named reg.Name with cap reg.TaskCap, or
// cuttle.DefaultTaskCap when that is nil, or takes over the existing node of
// that name, keeping its id, its drain and, unless reg.TaskCap is set, its
// cap. Either way it records reg's version, operating system, addresses and
// key fingerprint, sets the start time and checks the node in, all in one
// statement. KindInvalid for an empty name.
func (s *Store) RegisterNode(ctx context.Context, reg cuttle.NodeRegistration) (cuttle.Node, error) {
	if reg.Name == "" {
		return cuttle.Node{}, cuttle.Errorf(cuttle.KindInvalid, "A node needs a name.")
	}
	addrs := reg.Addresses
	if addrs == nil {
		addrs = []string{}
	}
	var taskCap *int32
	if reg.TaskCap != nil {
		c := int32(*reg.TaskCap)
		taskCap = &c
	}
	row := s.pool.QueryRow(ctx, `
		INSERT INTO nodes AS n (name, max_concurrent_tasks, last_seen, stopped, version, os, addresses, key_fingerprint, started_at, incarnation)
		VALUES ($1, coalesce($2::integer, $3), clock_timestamp(), false, $4, $5, $6, $7, clock_timestamp(), 1)
		ON CONFLICT (name) DO UPDATE SET
			max_concurrent_tasks = coalesce($2::integer, n.max_concurrent_tasks),
			incarnation = n.incarnation + 1,
			last_seen = clock_timestamp(),
			stopped = false,
			version = excluded.version,
			os = excluded.os,
			addresses = excluded.addresses,
			key_fingerprint = excluded.key_fingerprint,
			started_at = clock_timestamp()
		RETURNING `+nodeColumns,
		reg.Name, taskCap, cuttle.DefaultTaskCap, reg.Version, reg.OS, addrs, reg.KeyFingerprint)
	n, err := scanNode(row)
	if err != nil {
		return cuttle.Node{}, dbError(err, "registering the node")
	}
	return n, nil
}

// CheckIn sets the node's last seen to the database's now and returns it,
// if ref is its live incarnation. KindNotFound if the node was removed,
// KindConflict if the incarnation ended.
func (s *Store) CheckIn(ctx context.Context, ref cuttle.NodeRef) (cuttle.Node, error) {
	row := s.pool.QueryRow(ctx, `
		UPDATE nodes AS n SET last_seen = clock_timestamp()
		WHERE n.id = $1 AND n.incarnation = $2 AND NOT n.stopped
		RETURNING `+nodeColumns, ref.ID, ref.Incarnation)
	n, err := oneNode(row, ref.ID, "checking the node in")
	if cuttle.IsKind(err, cuttle.KindNotFound) {
		if _, err := s.Node(ctx, ref.ID); err != nil {
			return cuttle.Node{}, err
		}
		return cuttle.Node{}, incarnationEnded(ref)
	}
	return n, err
}

func incarnationEnded(ref cuttle.NodeRef) error {
	return cuttle.Errorf(cuttle.KindConflict, "Incarnation %d of the node %s has ended: it was stopped, or the node was started again.",
		ref.Incarnation, cuttle.FormatID(cuttle.NodeIDPrefix, ref.ID))
}

// SetOffline ends the incarnation ref (a clean stop) and resigns the leader
// lease if the node holds it, in one transaction, and reports whether it
// resigned. An incarnation that already ended is left alone. KindNotFound if
// there is no such node.
//
// The lease is cleared by a second statement, whose snapshot is taken after
// the first has its row lock on the node: a bid still in flight either
// locked the node row first (BidLease reads it FOR SHARE), so that its win
// is visible to the second statement and resigned, or finds the node stopped.
func (s *Store) SetOffline(ctx context.Context, ref cuttle.NodeRef) (resigned bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE nodes SET stopped = true WHERE id = $1 AND incarnation = $2`, ref.ID, ref.Incarnation)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var one int
			if err := tx.QueryRow(ctx, `SELECT 1 FROM nodes WHERE id = $1`, ref.ID).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
				return nodeNotFound(ref.ID)
			}
			return err
		}
		tag, err = tx.Exec(ctx, `UPDATE leader_lease SET node_id = NULL, expires_at = NULL WHERE id = 1 AND node_id = $1`, ref.ID)
		resigned = tag.RowsAffected() == 1
		return err
	})
	return resigned, dbError(err, "marking the node offline")
}

// Nodes returns every node ordered by id, with IsOffline computed against the
// database clock and the cluster's stale timeout.
func (s *Store) Nodes(ctx context.Context) ([]cuttle.Node, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+nodeColumns+` FROM nodes n ORDER BY n.id`)
	if err != nil {
		return nil, dbError(err, "listing the nodes")
	}
	nodes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cuttle.Node, error) { return scanNode(r) })
	if err != nil {
		return nil, dbError(err, "listing the nodes")
	}
	return nodes, nil
}

// Node returns one node. KindNotFound if there is none.
func (s *Store) Node(ctx context.Context, id int64) (cuttle.Node, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+nodeColumns+` FROM nodes n WHERE n.id = $1`, id)
	return oneNode(row, id, "reading the node")
}

// UpdateNode applies the update, leaving nil fields alone, and returns the
// node. The caller validates the update. KindNotFound if there is no such
// node.
func (s *Store) UpdateNode(ctx context.Context, id int64, u cuttle.NodeUpdate) (cuttle.Node, error) {
	var taskCap *int32
	if u.MaxConcurrentTasks != nil {
		c := int32(*u.MaxConcurrentTasks)
		taskCap = &c
	}
	row := s.pool.QueryRow(ctx, `
		UPDATE nodes AS n SET
			max_concurrent_tasks = coalesce($2::integer, n.max_concurrent_tasks),
			draining = coalesce($3::boolean, n.draining)
		WHERE n.id = $1
		RETURNING `+nodeColumns, id, taskCap, u.IsInMaintenanceMode)
	return oneNode(row, id, "updating the node")
}

// DeleteNode removes an offline node, deciding offline in the same statement
// as the delete. KindConflict if it is online, KindNotFound if there is none.
// If the node held the lease, the lease is left with nobody (its term
// unchanged).
func (s *Store) DeleteNode(ctx context.Context, id int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM nodes AS n WHERE n.id = $1 AND `+offline("n"), id)
	if err != nil {
		return dbError(err, "deleting the node")
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var name string
	err = s.pool.QueryRow(ctx, `SELECT name FROM nodes WHERE id = $1`, id).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return nodeNotFound(id)
	}
	if err != nil {
		return dbError(err, "deleting the node")
	}
	return cuttle.Errorf(cuttle.KindConflict, "The node %s (%s) is online; drain and stop it first: only an offline node can be deleted.",
		cuttle.FormatID(cuttle.NodeIDPrefix, id), name)
}

// leaseColumns are the columns scanLease reads from leader_lease.
const leaseColumns = `term, node_id, expires_at`

func scanLease(row pgx.Row, extra ...any) (cuttle.Lease, error) {
	var (
		l      cuttle.Lease
		nodeID *int64
		exp    *time.Time
	)
	if err := row.Scan(append([]any{&l.Term, &nodeID, &exp}, extra...)...); err != nil {
		return cuttle.Lease{}, err
	}
	if nodeID != nil {
		l.NodeID = *nodeID
	}
	l.ExpiresAt = utc(exp)
	return l, nil
}

// Lease returns the leader lease as it stands, which may have expired, and
// the database's now. A lease nobody holds has NodeID 0 and a zero ExpiresAt.
func (s *Store) Lease(ctx context.Context) (cuttle.Lease, time.Time, error) {
	var now time.Time
	l, err := scanLease(s.pool.QueryRow(ctx, `SELECT `+leaseColumns+`, clock_timestamp() FROM leader_lease WHERE id = 1`), &now)
	if err != nil {
		return cuttle.Lease{}, time.Time{}, dbError(err, "reading the leader lease")
	}
	return l, now.UTC(), nil
}

// BidLease takes the lease for the node, with the next term, until the
// database's now plus d (truncated to a microsecond), if nobody holds it or
// it expired, and only if the node is online and not draining. It reports
// whether the node won; the returned lease is the current one either way
// (read after the bid, so it shows the winner of a concurrent bid). A bid by
// the node that holds an unexpired lease does not win; it should renew.
//
// The bid is one UPDATE of the lease row: under READ COMMITTED a concurrent
// bid waits for the row and re-checks the expiry against the winner's
// version, so two bids never both win. It reads the node's row FOR SHARE,
// so that it sees the latest committed version of it (a clean stop that
// committed after the bid's snapshot) and holds off a stop until it ends
// (see SetOffline).
func (s *Store) BidLease(ctx context.Context, nodeID int64, d time.Duration) (cuttle.Lease, bool, error) {
	l, err := scanLease(s.pool.QueryRow(ctx, `
		UPDATE leader_lease SET
			term = term + 1,
			node_id = $1,
			expires_at = clock_timestamp() + `+interval("$2::bigint")+`
		WHERE id = 1
			AND (node_id IS NULL OR expires_at IS NULL OR expires_at <= clock_timestamp())
			AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = $1 AND NOT n.draining AND NOT `+offline("n")+` FOR SHARE)
		RETURNING `+leaseColumns, nodeID, d.Microseconds()))
	if err == nil {
		return l, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return cuttle.Lease{}, false, dbError(err, "bidding for the leader lease")
	}
	l, _, err = s.Lease(ctx)
	return l, false, err
}

// RenewLease sets the expiry of the node's lease for term to the database's
// now plus d (truncated to a microsecond). KindConflict if the node no longer
// holds that term or is draining. A lease that expired but that nobody took
// since can be renewed: no other node held its term.
func (s *Store) RenewLease(ctx context.Context, nodeID, term int64, d time.Duration) (cuttle.Lease, error) {
	l, err := scanLease(s.pool.QueryRow(ctx, `
		UPDATE leader_lease SET expires_at = clock_timestamp() + `+interval("$3::bigint")+`
		WHERE id = 1 AND node_id = $1 AND term = $2
			AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = $1 AND NOT n.draining)
		RETURNING `+leaseColumns, nodeID, term, d.Microseconds()))
	if errors.Is(err, pgx.ErrNoRows) {
		return cuttle.Lease{}, cuttle.Errorf(cuttle.KindConflict, "The node no longer holds the leader lease of term %d.", term)
	}
	if err != nil {
		return cuttle.Lease{}, dbError(err, "renewing the leader lease")
	}
	return l, nil
}

// ResignLease gives the lease up if the node holds it for term, leaving the
// term as it is (the next bid takes term+1); otherwise it does nothing. It
// does not notify: the caller does.
func (s *Store) ResignLease(ctx context.Context, nodeID, term int64) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE leader_lease SET node_id = NULL, expires_at = NULL
		WHERE id = 1 AND node_id = $1 AND term = $2`, nodeID, term)
	return dbError(err, "resigning the leader lease")
}
