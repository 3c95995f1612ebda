package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/google/uuid"
)

// InitCluster creates the cluster's identity, with a new random installation
// id (a version 4 UUID), keyFingerprint and cuttle.DefaultClusterSettings, if
// the database holds none yet. It returns the identity the database holds,
// whose fingerprint may differ from keyFingerprint: the caller compares.
func (s *Store) InitCluster(ctx context.Context, keyFingerprint string) (cuttle.Cluster, error) {
	var c cuttle.Cluster
	err := s.inTx(ctx, "initializing the cluster", func(tx *sql.Tx) error {
		def := cuttle.DefaultClusterSettings()
		_, err := tx.ExecContext(ctx, `
			INSERT INTO cluster (id, installation_id, key_fingerprint, created_at, `+settingsColumns+`)
			VALUES (1, ?, ?, `+nowMS+`, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`,
			append([]any{uuid.NewString(), keyFingerprint}, settingsArgs(def)...)...)
		if err != nil {
			return err
		}
		var created int64
		err = tx.QueryRowContext(ctx, `SELECT installation_id, key_fingerprint, created_at FROM cluster WHERE id = 1`).
			Scan(&c.InstallationID, &c.KeyFingerprint, &created)
		c.CreatedAt = msTime(created)
		return err
	})
	return c, err
}

// settingsColumns are the columns of the cluster's settings, in the order
// of settingsArgs and settingsFields.
const settingsColumns = `heartbeat_ms, stale_timeout_ms,
	retention_interval_ms, package_cleanup_interval_ms, health_check_interval_ms, reindex_interval_ms`

// settingsArgs returns the values of settingsColumns, in milliseconds
// rounded up.
func settingsArgs(cs cuttle.ClusterSettings) []any {
	var args []any
	for _, d := range settingsFields(&cs) {
		args = append(args, durationMS(*d))
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
// before InitCluster has run. Durations have millisecond resolution.
func (s *Store) Settings(ctx context.Context) (cuttle.ClusterSettings, error) {
	var cs cuttle.ClusterSettings
	fields := settingsFields(&cs)
	ms := make([]int64, len(fields))
	dest := make([]any, len(fields))
	for i := range ms {
		dest[i] = &ms[i]
	}
	err := s.rdb.QueryRowContext(ctx, `SELECT `+settingsColumns+` FROM cluster WHERE id = 1`).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return cuttle.DefaultClusterSettings(), nil
	}
	if err != nil {
		return cuttle.ClusterSettings{}, dbError(err, "reading the cluster settings")
	}
	for i, f := range fields {
		*f = time.Duration(ms[i]) * time.Millisecond
	}
	return cs, nil
}

// UpdateSettings replaces the cluster's settings, rounding durations up to
// whole milliseconds; the caller validates them. A node's liveness is computed
// when read, so a new stale timeout applies at once to every node. It returns
// a KindNotFound error before InitCluster has run.
func (s *Store) UpdateSettings(ctx context.Context, cs cuttle.ClusterSettings) error {
	res, err := s.db.ExecContext(ctx, `
		UPDATE cluster SET (`+settingsColumns+`) = (?, ?, ?, ?, ?, ?)
		WHERE id = 1`, settingsArgs(cs)...)
	if err != nil {
		return dbError(err, "updating the cluster settings")
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbError(err, "updating the cluster settings")
	} else if n == 0 {
		return cuttle.Errorf(cuttle.KindNotFound, "The cluster has not been initialized.")
	}
	return nil
}

// runningTasks is SQL for the number of tasks the node aliased n executes
// now (Executing or Cancelling); the tasks_running index answers it.
const runningTasks = `(SELECT count(*) FROM tasks r WHERE r.owner_id = n.id AND r.state IN ('Executing', 'Cancelling'))`

// nodeSelect selects the columns scanNode reads from nodes aliased n; the
// query must carry defaultStale.
var nodeSelect = `SELECT n.id, n.name, n.max_concurrent_tasks, n.draining, n.last_seen, ` + offline("n") + `,
	n.version, n.os, n.addresses, n.key_fingerprint, n.started_at, n.incarnation, ` + runningTasks + `
	FROM nodes n`

type scanner interface{ Scan(dest ...any) error }

func scanNode(row scanner) (cuttle.Node, error) {
	var (
		n                   cuttle.Node
		lastSeen, startedAt sql.NullInt64
		addresses           string
	)
	err := row.Scan(&n.ID, &n.Name, &n.MaxConcurrentTasks, &n.IsInMaintenanceMode, &lastSeen, &n.IsOffline,
		&n.Version, &n.OS, &addresses, &n.KeyFingerprint, &startedAt, &n.Incarnation, &n.RunningTaskCount)
	if err != nil {
		return cuttle.Node{}, err
	}
	n.LastSeen = nullTime(lastSeen)
	n.StartedAt = nullTime(startedAt)
	if err := json.Unmarshal([]byte(addresses), &n.Addresses); err != nil {
		return cuttle.Node{}, fmt.Errorf("node %d: addresses: %w", n.ID, err)
	}
	if len(n.Addresses) == 0 {
		n.Addresses = nil
	}
	return n, nil
}

// queryRower is a *sql.DB or a *sql.Tx.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// node reads the node id through q. KindNotFound if there is none.
func node(ctx context.Context, q queryRower, id int64) (cuttle.Node, error) {
	n, err := scanNode(q.QueryRowContext(ctx, nodeSelect+` WHERE n.id = :id`, sql.Named("id", id), defaultStale))
	if errors.Is(err, sql.ErrNoRows) {
		return cuttle.Node{}, nodeNotFound(id)
	}
	return n, err
}

func incarnationEnded(ref cuttle.NodeRef) error {
	return cuttle.Errorf(cuttle.KindConflict, "Incarnation %d of the node %s has ended: it was stopped, or the node was started again.",
		ref.Incarnation, cuttle.FormatID(cuttle.NodeIDPrefix, ref.ID))
}

func nodeNotFound(id int64) error {
	return cuttle.Errorf(cuttle.KindNotFound, "There is no node with the id %q.", cuttle.FormatID(cuttle.NodeIDPrefix, id))
}

// RegisterNode creates the node named reg.Name with cap reg.TaskCap, or
// cuttle.DefaultTaskCap when that is nil, or takes over the existing node of
// that name, keeping its id, its drain and, unless reg.TaskCap is set, its
// cap. Either way it records reg's version, operating system, addresses and
// key fingerprint, sets the start time and checks the node in. It returns a
// KindInvalid error for an empty name.
func (s *Store) RegisterNode(ctx context.Context, reg cuttle.NodeRegistration) (cuttle.Node, error) {
	if reg.Name == "" {
		return cuttle.Node{}, cuttle.Errorf(cuttle.KindInvalid, "A node needs a name.")
	}
	addrs := reg.Addresses
	if addrs == nil {
		addrs = []string{}
	}
	addresses, err := json.Marshal(addrs)
	if err != nil {
		return cuttle.Node{}, cuttle.Wrap(err, "registering the node")
	}
	var taskCap sql.NullInt64
	if reg.TaskCap != nil {
		taskCap = sql.NullInt64{Int64: int64(*reg.TaskCap), Valid: true}
	}
	var n cuttle.Node
	err = s.inTx(ctx, "registering the node", func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `
			INSERT INTO nodes (name, max_concurrent_tasks, draining, last_seen, stopped, version, os, addresses, key_fingerprint, started_at, incarnation)
			VALUES (:name, COALESCE(:cap, :default_cap), 0, `+nowMS+`, 0, :version, :os, :addresses, :fingerprint, `+nowMS+`, 1)
			ON CONFLICT (name) DO UPDATE SET
				max_concurrent_tasks = COALESCE(:cap, nodes.max_concurrent_tasks),
				incarnation = nodes.incarnation + 1,
				last_seen = excluded.last_seen,
				stopped = 0,
				version = excluded.version,
				os = excluded.os,
				addresses = excluded.addresses,
				key_fingerprint = excluded.key_fingerprint,
				started_at = excluded.started_at
			RETURNING id`,
			sql.Named("name", reg.Name), sql.Named("cap", taskCap), sql.Named("default_cap", cuttle.DefaultTaskCap),
			sql.Named("version", reg.Version), sql.Named("os", reg.OS), sql.Named("addresses", string(addresses)),
			sql.Named("fingerprint", reg.KeyFingerprint)).Scan(&id)
		if err != nil {
			return err
		}
		n, err = node(ctx, tx, id)
		return err
	})
	return n, err
}

// CheckIn sets the node's last seen to the database's now and returns it,
// if ref is its live incarnation. KindNotFound if the node was removed,
// KindConflict if the incarnation ended.
func (s *Store) CheckIn(ctx context.Context, ref cuttle.NodeRef) (cuttle.Node, error) {
	var n cuttle.Node
	err := s.inTx(ctx, "checking the node in", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE nodes SET last_seen = `+nowMS+`
			WHERE id = ? AND incarnation = ? AND stopped = 0`, ref.ID, ref.Incarnation)
		k, err := rowsAffected(res, err)
		if err != nil {
			return err
		}
		if n, err = node(ctx, tx, ref.ID); err == nil && k == 0 {
			err = incarnationEnded(ref)
		}
		return err
	})
	return n, err
}

// affected returns err if the statement failed, and notFound if it changed no
// row.
// rowsAffected returns the rows res changed, or err.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func affected(res sql.Result, err error, notFound error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound
	}
	return nil
}

// SetOffline ends the incarnation ref (a clean stop) and resigns the leader
// lease if the node holds it, in one transaction, and reports whether it
// resigned. An incarnation that already ended is left alone. KindNotFound if
// there is no such node.
func (s *Store) SetOffline(ctx context.Context, ref cuttle.NodeRef) (resigned bool, err error) {
	err = s.inTx(ctx, "marking the node offline", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE nodes SET stopped = 1 WHERE id = ? AND incarnation = ?`, ref.ID, ref.Incarnation)
		k, err := rowsAffected(res, err)
		if err != nil || k == 0 {
			if err == nil {
				_, err = node(ctx, tx, ref.ID)
			}
			return err
		}
		res, err = tx.ExecContext(ctx, `UPDATE leader_lease SET node_id = NULL, expires_at = NULL WHERE id = 1 AND node_id = ?`, ref.ID)
		k, err = rowsAffected(res, err)
		resigned = k == 1
		return err
	})
	return resigned, err
}

// Nodes returns every node ordered by id, with IsOffline computed against the
// database clock and the cluster's stale timeout.
func (s *Store) Nodes(ctx context.Context) ([]cuttle.Node, error) {
	rows, err := s.rdb.QueryContext(ctx, nodeSelect+` ORDER BY n.id`, defaultStale)
	if err != nil {
		return nil, dbError(err, "listing the nodes")
	}
	defer rows.Close()
	var nodes []cuttle.Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, dbError(err, "listing the nodes")
		}
		nodes = append(nodes, n)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err, "listing the nodes")
	}
	return nodes, nil
}

// Node returns one node. KindNotFound if there is none.
func (s *Store) Node(ctx context.Context, id int64) (cuttle.Node, error) {
	n, err := node(ctx, s.rdb, id)
	return n, dbError(err, "reading the node")
}

// UpdateNode applies the update, leaving nil fields alone, and returns the
// node. The caller validates the update. KindNotFound if there is no such
// node.
func (s *Store) UpdateNode(ctx context.Context, id int64, u cuttle.NodeUpdate) (cuttle.Node, error) {
	var taskCap, drain sql.NullInt64
	if u.MaxConcurrentTasks != nil {
		taskCap = sql.NullInt64{Int64: int64(*u.MaxConcurrentTasks), Valid: true}
	}
	if u.IsInMaintenanceMode != nil {
		drain = sql.NullInt64{Valid: true}
		if *u.IsInMaintenanceMode {
			drain.Int64 = 1
		}
	}
	var n cuttle.Node
	err := s.inTx(ctx, "updating the node", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE nodes SET
				max_concurrent_tasks = COALESCE(:cap, max_concurrent_tasks),
				draining = COALESCE(:drain, draining)
			WHERE id = :id`,
			sql.Named("cap", taskCap), sql.Named("drain", drain), sql.Named("id", id))
		if err := affected(res, err, nodeNotFound(id)); err != nil {
			return err
		}
		n, err = node(ctx, tx, id)
		return err
	})
	return n, err
}

// DeleteNode removes an offline node. KindConflict if it is online,
// KindNotFound if there is none. If the node held the lease, the lease is left
// with nobody (its term unchanged).
func (s *Store) DeleteNode(ctx context.Context, id int64) error {
	return s.inTx(ctx, "deleting the node", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM nodes AS n WHERE n.id = :id AND `+offline("n"),
			sql.Named("id", id), defaultStale)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil || k == 1 {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM nodes WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nodeNotFound(id)
		}
		if err != nil {
			return err
		}
		return cuttle.Errorf(cuttle.KindConflict, "The node %s is online; only an offline node can be deleted.", cuttle.FormatID(cuttle.NodeIDPrefix, id))
	})
}

// lease reads the lease and the database's now through q.
func lease(ctx context.Context, q queryRower) (cuttle.Lease, time.Time, error) {
	var (
		l         cuttle.Lease
		node, exp sql.NullInt64
		now       int64
	)
	err := q.QueryRowContext(ctx, `SELECT term, node_id, expires_at, `+nowMS+` FROM leader_lease WHERE id = 1`).
		Scan(&l.Term, &node, &exp, &now)
	if err != nil {
		return cuttle.Lease{}, time.Time{}, err
	}
	l.NodeID = node.Int64
	l.ExpiresAt = nullTime(exp)
	return l, msTime(now), nil
}

// Lease returns the leader lease as it stands, which may have expired, and
// the database's now. A lease nobody holds has NodeID 0 and a zero ExpiresAt.
func (s *Store) Lease(ctx context.Context) (cuttle.Lease, time.Time, error) {
	l, now, err := lease(ctx, s.rdb)
	return l, now, dbError(err, "reading the leader lease")
}

// BidLease takes the lease for the node, with the next term, until the
// database's now plus d (rounded up to a millisecond), if nobody holds it or
// it expired, and only if the node is online and not draining. It reports
// whether the node won; the returned lease is the current one either way. A
// bid by the node that already holds an unexpired lease does not win either
// (the holder renews instead).
func (s *Store) BidLease(ctx context.Context, nodeID int64, d time.Duration) (cuttle.Lease, bool, error) {
	var (
		l   cuttle.Lease
		won bool
	)
	err := s.inTx(ctx, "bidding for the leader lease", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE leader_lease SET term = term + 1, node_id = :node, expires_at = `+nowMS+` + :d
			WHERE id = 1
				AND (node_id IS NULL OR expires_at IS NULL OR expires_at <= `+nowMS+`)
				AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = :node AND n.draining = 0 AND NOT `+offline("n")+`)`,
			sql.Named("node", nodeID), sql.Named("d", durationMS(d)), defaultStale)
		if err != nil {
			return err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return err
		}
		won = k == 1
		l, _, err = lease(ctx, tx)
		return err
	})
	return l, won, err
}

// RenewLease sets the expiry of the node's lease for term to the database's
// now plus d (rounded up to a millisecond). KindConflict if the node no longer
// holds that term or is draining. A lease that expired but that nobody took
// since can be renewed: its term fences out nobody.
func (s *Store) RenewLease(ctx context.Context, nodeID, term int64, d time.Duration) (cuttle.Lease, error) {
	var l cuttle.Lease
	err := s.inTx(ctx, "renewing the leader lease", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE leader_lease SET expires_at = `+nowMS+` + :d
			WHERE id = 1 AND term = :term AND node_id = :node
				AND EXISTS (SELECT 1 FROM nodes n WHERE n.id = :node AND n.draining = 0)`,
			sql.Named("node", nodeID), sql.Named("term", term), sql.Named("d", durationMS(d)))
		if err := affected(res, err, cuttle.Errorf(cuttle.KindConflict, "The node no longer holds the leader lease of term %d.", term)); err != nil {
			return err
		}
		l, _, err = lease(ctx, tx)
		return err
	})
	return l, err
}

// ResignLease gives the lease up if the node holds it for term, leaving the
// term as it is (the next bid takes term+1); otherwise it does nothing. It
// does not notify: the caller does.
func (s *Store) ResignLease(ctx context.Context, nodeID, term int64) error {
	_, err := s.db.ExecContext(ctx, `
		UPDATE leader_lease SET node_id = NULL, expires_at = NULL
		WHERE id = 1 AND term = ? AND node_id = ?`, term, nodeID)
	return dbError(err, "resigning the leader lease")
}
