package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// InitClusterCertificate stores c if the cluster has no certificate yet, and
// returns the one the database holds.
func (s *Store) InitClusterCertificate(ctx context.Context, c cuttle.ClusterCertificate) (cuttle.ClusterCertificate, error) {
	var got cuttle.ClusterCertificate
	err := s.inTx(ctx, "storing the cluster certificate", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO cluster_certificate (id, cert_pem, sealed_key, thumbprint) VALUES (1, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, string(c.CertPEM), c.SealedKey, c.Thumbprint); err != nil {
			return err
		}
		var cert string
		err := tx.QueryRowContext(ctx, `SELECT cert_pem, sealed_key, thumbprint FROM cluster_certificate WHERE id = 1`).
			Scan(&cert, &got.SealedKey, &got.Thumbprint)
		got.CertPEM = []byte(cert)
		return err
	})
	return got, err
}

// MachineOfEnvironment returns the id and name of a machine of the
// environment of envID, read in tx; found is false if it has none. SQLite
// has one writer, so no machine can join the environment before tx ends.
func (s *Store) MachineOfEnvironment(ctx context.Context, tx *collection.Tx, envID int64) (id int64, name string, found bool, err error) {
	found, err = collection.ScanOne(ctx, tx.Q, `
		SELECT m.id, m.name FROM machines m, json_each(m.environment_ids) AS e WHERE e.value = ? ORDER BY m.id LIMIT 1`, []any{envID}, &id, &name)
	return id, name, found, dbError(err, "finding the environment's machines")
}

const machineColumns = `id, space_id, name, roles, environment_ids, style, uri, thumbprint, is_disabled,
	health_status, status_summary, health_checked_at, agent_version, os`

func scanMachine(row scanner) (cuttle.Machine, error) {
	var (
		m             cuttle.Machine
		roles, envs   string
		style, health string
		checked       sql.NullInt64
	)
	if err := row.Scan(&m.ID, &m.SpaceID, &m.Name, &roles, &envs, &style, &m.URI, &m.Thumbprint, &m.IsDisabled,
		&health, &m.StatusSummary, &checked, &m.AgentVersion, &m.OS); err != nil {
		return cuttle.Machine{}, err
	}
	m.Roles, m.EnvironmentIDs = []string{}, []int64{}
	if err := json.Unmarshal([]byte(roles), &m.Roles); err != nil {
		return cuttle.Machine{}, fmt.Errorf("machine %d's roles: %w", m.ID, err)
	}
	if err := json.Unmarshal([]byte(envs), &m.EnvironmentIDs); err != nil {
		return cuttle.Machine{}, fmt.Errorf("machine %d's environments: %w", m.ID, err)
	}
	m.Style, m.HealthStatus, m.HealthCheckedAt = cuttle.CommunicationStyle(style), cuttle.HealthStatus(health), nullTime(checked)
	return m, nil
}

func machineNotFound(id int64) error {
	return cuttle.Errorf(cuttle.KindNotFound, "There is no machine with the id %q.", cuttle.FormatID(cuttle.MachineIDPrefix, id))
}

// machineArgs validates m, checks that its environments exist (through tx),
// and returns its roles and environments as the JSON the table keeps.
func machineArgs(ctx context.Context, tx *sql.Tx, m cuttle.Machine) (roles, envs string, err error) {
	if err := m.Validate(); err != nil {
		return "", "", err
	}
	rs := make([]string, 0, len(m.Roles))
	for _, r := range m.Roles {
		if r != "" && !slices.Contains(rs, r) {
			rs = append(rs, r)
		}
	}
	ids := slices.Compact(slices.Sorted(slices.Values(m.EnvironmentIDs)))
	for _, id := range ids {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM environments WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return "", "", cuttle.Errorf(cuttle.KindInvalid, "There is no environment with the id %q.", cuttle.FormatID(cuttle.EnvironmentIDPrefix, id))
		}
		if err != nil {
			return "", "", err
		}
	}
	if ids == nil {
		ids = []int64{}
	}
	rb, _ := json.Marshal(rs)
	eb, _ := json.Marshal(ids)
	return string(rb), string(eb), nil
}

// machineConflict maps a unique violation of machines to KindConflict.
func machineConflict(err error, m cuttle.Machine) error {
	if !isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return err
	}
	if m.Style == cuttle.Polling && strings.Contains(err.Error(), "uri") {
		return cuttle.Errorf(cuttle.KindConflict, "Another machine has the subscription id %q.", m.URI)
	}
	return cuttle.Errorf(cuttle.KindConflict, "A machine named %q exists already.", m.Name)
}

// CreateMachine creates a machine, health Unknown. KindInvalid if m is not
// valid or an environment does not exist; KindConflict if its space has a
// machine of that name or its subscription id is taken.
func (s *Store) CreateMachine(ctx context.Context, m cuttle.Machine) (cuttle.Machine, error) {
	var got cuttle.Machine
	err := s.inTx(ctx, "creating the machine", func(tx *sql.Tx) error {
		roles, envs, err := machineArgs(ctx, tx, m)
		if err != nil {
			return err
		}
		got, err = scanMachine(tx.QueryRowContext(ctx, `
			INSERT INTO machines (space_id, name, roles, environment_ids, style, uri, thumbprint, is_disabled)
			VALUES (?, ?, ?, ?, ?, ?, upper(?), ?) RETURNING `+machineColumns,
			m.SpaceID, m.Name, roles, envs, string(m.Style), m.URI, m.Thumbprint, m.IsDisabled))
		return machineConflict(err, m)
	})
	return got, err
}

// Machine returns one machine. KindNotFound if there is none.
func (s *Store) Machine(ctx context.Context, id int64) (cuttle.Machine, error) {
	m, err := scanMachine(s.rdb.QueryRowContext(ctx, `SELECT `+machineColumns+` FROM machines WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return cuttle.Machine{}, machineNotFound(id)
	}
	return m, dbError(err, "reading the machine")
}

// Machines returns the machines q selects, by name. A thumbprint or
// subscription id is looked up by its index; the other filters apply to
// what that finds.
func (s *Store) Machines(ctx context.Context, q cuttle.MachineQuery) ([]cuttle.Machine, error) {
	query, args := `SELECT `+machineColumns+` FROM machines`, []any{}
	switch {
	case q.Thumbprint != "":
		query, args = query+` WHERE thumbprint = upper(?)`, append(args, q.Thumbprint)
	case q.SubscriptionID != "":
		query, args = query+` WHERE style = 'TentacleActive' AND uri = ?`, append(args, q.SubscriptionID)
	}
	rows, err := s.rdb.QueryContext(ctx, query+` ORDER BY lower(name), id`, args...)
	if err != nil {
		return nil, dbError(err, "listing the machines")
	}
	defer rows.Close()
	var out []cuttle.Machine
	for rows.Next() {
		m, err := scanMachine(rows)
		if err != nil {
			return nil, dbError(err, "listing the machines")
		}
		if q.Matches(m) {
			out = append(out, m)
		}
	}
	return out, dbError(rows.Err(), "listing the machines")
}

// UpdateMachine replaces what a user may change of the machine of m.ID,
// keeping its health. Errors as CreateMachine's, and KindNotFound.
func (s *Store) UpdateMachine(ctx context.Context, m cuttle.Machine) (cuttle.Machine, error) {
	var got cuttle.Machine
	err := s.inTx(ctx, "updating the machine", func(tx *sql.Tx) error {
		roles, envs, err := machineArgs(ctx, tx, m)
		if err != nil {
			return err
		}
		got, err = scanMachine(tx.QueryRowContext(ctx, `
			UPDATE machines SET name = ?, roles = ?, environment_ids = ?, style = ?, uri = ?, thumbprint = upper(?),
				is_disabled = ?
			WHERE id = ? RETURNING `+machineColumns,
			m.Name, roles, envs, string(m.Style), m.URI, m.Thumbprint, m.IsDisabled, m.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return machineNotFound(m.ID)
		}
		return machineConflict(err, m)
	})
	return got, err
}

// DeleteMachine removes a machine. KindNotFound if there is none.
func (s *Store) DeleteMachine(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM machines WHERE id = ?`, id)
	return dbError(affected(res, err, machineNotFound(id)), "deleting the machine")
}

// SetMachineHealth records a health check's findings, dated now, unless a
// later task's findings are stored.
// KindNotFound if there is no such machine.
func (s *Store) SetMachineHealth(ctx context.Context, id int64, h cuttle.MachineHealth) error {
	res, err := s.db.ExecContext(ctx, `
		UPDATE machines SET health_status = ?, status_summary = ?, agent_version = ?, os = ?,
			health_checked_at = `+nowMS+`, health_task_id = ?
		WHERE id = ? AND health_task_id <= ?`, string(h.Status), h.StatusSummary, h.AgentVersion, h.OS, h.TaskID, id, h.TaskID)
	k, err := rowsAffected(res, err)
	if err == nil && k == 0 {
		_, err = s.Machine(ctx, id)
	}
	return dbError(err, "recording the machine's health")
}

const commandColumns = `id, uid, machine_id, task_id, key, kind, payload, state,
	created_at, dispatched_at, finished_at, dispatched_by, output_seq, cancel_requested,
	exit_code, result, error, output_lines, output_bytes, dropped_lines, dropped_bytes`

// scanCommand scans the commandColumns of row, and then into extra.
func scanCommand(row scanner, extra ...any) (cuttle.Command, error) {
	var (
		c                    cuttle.Command
		kind, payload, state string
		created              int64
		dispatched, finished sql.NullInt64
		result               sql.NullString
	)
	dest := []any{&c.ID, &c.UID, &c.MachineID, &c.TaskID, &c.Key, &kind, &payload, &state,
		&created, &dispatched, &finished, &c.DispatchedBy, &c.OutputSeq, &c.CancelRequested,
		&c.ExitCode, &result, &c.Error, &c.Output.Lines, &c.Output.Bytes, &c.Output.DroppedLines, &c.Output.DroppedBytes}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return cuttle.Command{}, err
	}
	c.Kind, c.Payload, c.State = cuttle.CommandKind(kind), json.RawMessage(payload), cuttle.CommandState(state)
	c.CreatedAt, c.DispatchedAt, c.FinishedAt = msTime(created), nullTime(dispatched), nullTime(finished)
	if result.Valid {
		c.Result = json.RawMessage(result.String)
	}
	return c, nil
}

func queryCommands(ctx context.Context, q queryer, query string, args ...any) ([]cuttle.Command, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []cuttle.Command
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// EnsureCommands queues each command unless its task already has one with
// its key, and returns every one of them in order, the existing ones as
// they are. KindInvalid for a command that is not valid.
func (s *Store) EnsureCommands(ctx context.Context, cmds []cuttle.NewCommand) ([]cuttle.Command, error) {
	for _, c := range cmds {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	out := make([]cuttle.Command, 0, len(cmds))
	err := s.inTx(ctx, "queuing commands", func(tx *sql.Tx) error {
		for _, n := range cmds {
			payload := string(n.Payload)
			if payload == "" {
				payload = "{}"
			}
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO commands (uid, machine_id, task_id, key, kind, payload, state, created_at)
				VALUES (?, ?, ?, ?, ?, ?, 'Pending', `+nowMS+`)
				ON CONFLICT (task_id, key) DO NOTHING`, uuid.NewString(), n.MachineID, n.TaskID, n.Key, string(n.Kind), payload); err != nil {
				return err
			}
			c, err := scanCommand(tx.QueryRowContext(ctx, `SELECT `+commandColumns+` FROM commands WHERE task_id = ? AND key = ?`, n.TaskID, n.Key))
			if err != nil {
				return err
			}
			out = append(out, c)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func commandNotFound(what string) error {
	return cuttle.Errorf(cuttle.KindNotFound, "There is no command %s.", what)
}

// Command returns one command. KindNotFound if there is none.
func (s *Store) Command(ctx context.Context, id int64) (cuttle.Command, error) {
	c, err := scanCommand(s.rdb.QueryRowContext(ctx, `SELECT `+commandColumns+` FROM commands WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return cuttle.Command{}, commandNotFound(fmt.Sprint(id))
	}
	return c, dbError(err, "reading the command")
}

// CommandByUID returns the command with that UID. KindNotFound if none.
func (s *Store) CommandByUID(ctx context.Context, uid string) (cuttle.Command, error) {
	c, err := scanCommand(s.rdb.QueryRowContext(ctx, `SELECT `+commandColumns+` FROM commands WHERE uid = ?`, uid))
	if errors.Is(err, sql.ErrNoRows) {
		return cuttle.Command{}, commandNotFound(fmt.Sprintf("%q", uid))
	}
	return c, dbError(err, "reading the command")
}

// dispatchable is SQL for a command a poll hands out now; the query carries
// the redelivery interval in milliseconds as :redeliver.
const dispatchable = `(state = 'Pending' OR (state = 'Dispatched' AND cancel_requested = 0
	AND dispatched_at <= ` + nowMS + ` - :redeliver))`

// cancelToTell is SQL for an unfinished handed-out command whose cancel the
// agent has not been told of within :redeliver.
const cancelToTell = `(state IN ('Dispatched', 'Running') AND cancel_requested <> 0
	AND (cancel_told_at IS NULL OR cancel_told_at <= ` + nowMS + ` - :redeliver))`

// DispatchCommands hands out up to limit of the machine's commands (see
// store.AgentStore). A machine with no unfinished command, as most polls
// find, costs one read and no write transaction.
func (s *Store) DispatchCommands(ctx context.Context, machineID int64, node string, limit int, redeliverAfter time.Duration) ([]cuttle.Command, []string, error) {
	var open bool
	if err := s.rdb.QueryRowContext(ctx, `
		SELECT EXISTS (SELECT 1 FROM commands WHERE machine_id = ? AND state IN ('Pending', 'Dispatched', 'Running'))`,
		machineID).Scan(&open); err != nil || !open {
		return nil, nil, dbError(err, "handing out commands")
	}
	var (
		cmds   []cuttle.Command
		cancel []string
	)
	args := []any{sql.Named("machine", machineID), sql.Named("redeliver", durationMS(redeliverAfter)), sql.Named("node", node),
		sql.Named("limit", limit), sql.Named("abandon", durationMS(store.AbandonAfter))}
	err := s.inTx(ctx, "handing out commands", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `
			UPDATE commands SET state = 'Canceled', finished_at = `+nowMS+`,
				error = 'The command was cancelled, and its agent never confirmed it.'
			WHERE machine_id = :machine AND state = 'Dispatched' AND cancel_requested <> 0
				AND dispatched_at <= `+nowMS+` - :abandon`, args...); err != nil {
			return err
		}
		var err error
		cmds, err = queryCommands(ctx, tx, `
			UPDATE commands SET state = 'Dispatched', dispatched_at = `+nowMS+`, dispatched_by = :node
			WHERE id IN (SELECT id FROM commands WHERE machine_id = :machine AND `+dispatchable+` ORDER BY id LIMIT :limit)
			RETURNING `+commandColumns, args...)
		if err != nil {
			return err
		}
		slices.SortFunc(cmds, func(a, b cuttle.Command) int { return cmp.Compare(a.ID, b.ID) })
		rows, err := tx.QueryContext(ctx, `
			UPDATE commands SET cancel_told_at = `+nowMS+`
			WHERE machine_id = :machine AND `+cancelToTell+`
			RETURNING uid`, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var uid string
			if err := rows.Scan(&uid); err != nil {
				return err
			}
			cancel = append(cancel, uid)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, nil, err
	}
	return cmds, cancel, nil
}

// DispatchableMachines returns the machines that DispatchCommands would
// give something now.
func (s *Store) DispatchableMachines(ctx context.Context, redeliverAfter time.Duration) ([]int64, error) {
	rows, err := s.rdb.QueryContext(ctx, `
		SELECT DISTINCT machine_id FROM commands
		WHERE state IN ('Pending', 'Dispatched', 'Running') AND (`+dispatchable+` OR `+cancelToTell+`)
		ORDER BY machine_id`, sql.Named("redeliver", durationMS(redeliverAfter)))
	if err != nil {
		return nil, dbError(err, "finding machines with work")
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, dbError(err, "finding machines with work")
		}
		ids = append(ids, id)
	}
	return ids, dbError(rows.Err(), "finding machines with work")
}

// RecordReport stores what the machine's agent reports of one of its
// commands (see store.AgentStore) and returns the command as stored.
func (s *Store) RecordReport(ctx context.Context, machineID int64, r cuttle.CommandReport) (cuttle.Command, error) {
	if err := r.Validate(); err != nil {
		return cuttle.Command{}, err
	}
	var got cuttle.Command
	err := s.inTx(ctx, "recording a report", func(tx *sql.Tx) error {
		var closed bool
		c, err := scanCommand(tx.QueryRowContext(ctx, `
			SELECT `+commandColumns+`, coalesce(finished_at < `+nowMS+` - ?, 0)
			FROM commands WHERE uid = ? AND machine_id = ?`, r.Bound.GraceOrDefault().Milliseconds(), r.UID, machineID), &closed)
		if errors.Is(err, sql.ErrNoRows) {
			return commandNotFound(fmt.Sprintf("%q for this machine", r.UID))
		}
		if err != nil {
			return err
		}
		plan, err := r.Plan(c, closed)
		if err != nil {
			return err
		}
		for _, l := range plan.Store {
			if _, err := tx.ExecContext(ctx, `
				INSERT INTO command_output (command_id, seq, time, stream, text) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT DO NOTHING`, c.ID, l.Seq, l.Time.UnixMilli(), l.Stream, l.Text); err != nil {
				return err
			}
		}
		update := `output_seq = :seq, output_lines = output_lines + :lines, output_bytes = output_bytes + :bytes,
			dropped_lines = dropped_lines + :dlines, dropped_bytes = dropped_bytes + :dbytes`
		switch {
		case c.State.Final():
		case r.State == cuttle.CommandRunning:
			update += `, state = 'Running'`
		default:
			update += `, state = :state, exit_code = :exit, result = :result, error = :error, finished_at = ` + nowMS
		}
		var result any
		if len(r.Result) > 0 {
			result = string(r.Result)
		}
		got, err = scanCommand(tx.QueryRowContext(ctx, `UPDATE commands SET `+update+` WHERE id = :id RETURNING `+commandColumns,
			sql.Named("id", c.ID), sql.Named("seq", plan.OutputSeq), sql.Named("lines", plan.Added.Lines), sql.Named("bytes", plan.Added.Bytes),
			sql.Named("dlines", plan.Added.DroppedLines), sql.Named("dbytes", plan.Added.DroppedBytes), sql.Named("state", string(r.State)), sql.Named("exit", r.ExitCode),
			sql.Named("result", result), sql.Named("error", r.Error)))
		return err
	})
	return got, err
}

// CommandOutput returns up to limit lines of the command's output after the
// line afterSeq, in order.
func (s *Store) CommandOutput(ctx context.Context, id, afterSeq int64, limit int) ([]cuttle.CommandLine, error) {
	rows, err := s.rdb.QueryContext(ctx, `
		SELECT seq, time, stream, text FROM command_output
		WHERE command_id = ? AND seq > ? ORDER BY seq LIMIT ?`, id, afterSeq, limit)
	if err != nil {
		return nil, dbError(err, "reading a command's output")
	}
	defer rows.Close()
	var lines []cuttle.CommandLine
	for rows.Next() {
		var (
			l  cuttle.CommandLine
			ms int64
		)
		if err := rows.Scan(&l.Seq, &ms, &l.Stream, &l.Text); err != nil {
			return nil, dbError(err, "reading a command's output")
		}
		l.Time = msTime(ms)
		lines = append(lines, l)
	}
	return lines, dbError(rows.Err(), "reading a command's output")
}

// CancelCommand asks for a command to be stopped (see store.AgentStore).
// KindNotFound if there is none.
func (s *Store) CancelCommand(ctx context.Context, id int64) (cuttle.Command, error) {
	c, err := scanCommand(s.db.QueryRowContext(ctx, `
		UPDATE commands SET
			cancel_requested = (state NOT IN ('Success', 'Failed', 'Canceled') OR cancel_requested <> 0),
			finished_at = CASE WHEN state = 'Pending' THEN `+nowMS+` ELSE finished_at END,
			error = CASE WHEN state = 'Pending' THEN 'The command was cancelled before it was handed out.' ELSE error END,
			state = CASE WHEN state = 'Pending' THEN 'Canceled' ELSE state END
		WHERE id = ?
		RETURNING `+commandColumns, id))
	if errors.Is(err, sql.ErrNoRows) {
		return cuttle.Command{}, commandNotFound(fmt.Sprint(id))
	}
	return c, dbError(err, "cancelling the command")
}

// DeleteEndedCommands deletes the commands of tasks completed more than age
// ago, with their output (see store.AgentStore).
func (s *Store) DeleteEndedCommands(ctx context.Context, age time.Duration, limit int) (int, error) {
	var n int
	err := s.inTx(ctx, "deleting the commands of ended tasks", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
			DELETE FROM commands WHERE id IN (
				SELECT c.id FROM commands c JOIN tasks t ON t.id = c.task_id
				WHERE t.completed_time < `+nowMS+` - ? ORDER BY c.id LIMIT ?)
			RETURNING id`, age.Milliseconds(), limit)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		n = len(ids)
		list, _ := json.Marshal(ids)
		_, err = tx.ExecContext(ctx, `DELETE FROM command_output WHERE command_id IN (SELECT value FROM json_each(?))`, string(list))
		return err
	})
	return n, err
}
