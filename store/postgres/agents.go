package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// InitClusterCertificate stores c if the cluster has no certificate yet, and
// returns the one the database holds (several nodes may start at once: the
// first insert wins).
func (s *Store) InitClusterCertificate(ctx context.Context, c cuttle.ClusterCertificate) (cuttle.ClusterCertificate, error) {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO cluster_certificate (id, cert_pem, sealed_key, thumbprint) VALUES (1, $1, $2, $3)
		ON CONFLICT (id) DO NOTHING`, string(c.CertPEM), c.SealedKey, c.Thumbprint)
	if err != nil {
		return cuttle.ClusterCertificate{}, dbError(err, "storing the cluster certificate")
	}
	var (
		got  cuttle.ClusterCertificate
		cert string
	)
	err = s.pool.QueryRow(ctx, `SELECT cert_pem, sealed_key, thumbprint FROM cluster_certificate WHERE id = 1`).
		Scan(&cert, &got.SealedKey, &got.Thumbprint)
	got.CertPEM = []byte(cert)
	return got, dbError(err, "reading the cluster certificate")
}

// MachineOfEnvironment returns the id and name of a machine of the
// environment of envID, read in tx; found is false if it has none. The
// caller holds the environment's row locked (GetForUpdate), and
// checkMachine shares that lock, so that no machine joins an environment
// being deleted.
func (s *Store) MachineOfEnvironment(ctx context.Context, tx *collection.Tx, envID int64) (id int64, name string, found bool, err error) {
	found, err = collection.ScanOne(ctx, tx.Q, `SELECT id, name FROM machines WHERE ? = ANY (environment_ids) ORDER BY id LIMIT 1`, []any{envID}, &id, &name)
	return id, name, found, dbError(err, "finding the environment's machines")
}

const machineColumns = `id, space_id, name, roles, environment_ids, style, uri, thumbprint, is_disabled,
	health_status, status_summary, health_checked_at, agent_version, os`

func scanMachine(row pgx.Row) (cuttle.Machine, error) {
	var (
		m             cuttle.Machine
		style, health string
		checked       *time.Time
	)
	err := row.Scan(&m.ID, &m.SpaceID, &m.Name, &m.Roles, &m.EnvironmentIDs, &style, &m.URI, &m.Thumbprint, &m.IsDisabled,
		&health, &m.StatusSummary, &checked, &m.AgentVersion, &m.OS)
	m.Style, m.HealthStatus, m.HealthCheckedAt = cuttle.CommunicationStyle(style), cuttle.HealthStatus(health), utc(checked)
	if m.Roles == nil {
		m.Roles = []string{}
	}
	if m.EnvironmentIDs == nil {
		m.EnvironmentIDs = []int64{}
	}
	return m, err
}

func machineNotFound(id int64) error {
	return cuttle.Errorf(cuttle.KindNotFound, "There is no machine with the id %q.", cuttle.FormatID(cuttle.MachineIDPrefix, id))
}

// checkMachine validates m and that its environments exist, in q.
func checkMachine(ctx context.Context, q pgx.Tx, m cuttle.Machine) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if len(m.EnvironmentIDs) == 0 {
		return nil
	}
	// FOR SHARE: an environment's delete locks its row, then looks for its
	// machines; this waits for it, or makes it wait and find this machine.
	rows, err := q.Query(ctx, `SELECT id FROM environments WHERE id = ANY ($1) FOR SHARE`, m.EnvironmentIDs)
	if err != nil {
		return err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	for _, want := range sortedIDs(m.EnvironmentIDs) {
		if !slices.Contains(found, want) {
			return cuttle.Errorf(cuttle.KindInvalid, "There is no environment with the id %q.", cuttle.FormatID(cuttle.EnvironmentIDPrefix, want))
		}
	}
	return nil
}

// machineConflict maps a unique violation of machines to KindConflict.
func machineConflict(err error, m cuttle.Machine) error {
	if pgCode(err) != codeUniqueViolation {
		return err
	}
	if m.Style == cuttle.Polling && constraintOf(err) == "machines_subscription" {
		return cuttle.Errorf(cuttle.KindConflict, "Another machine has the subscription id %q.", m.URI)
	}
	return cuttle.Errorf(cuttle.KindConflict, "A machine named %q exists already.", m.Name)
}

func uniqueRoles(roles []string) []string {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if r != "" && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// sortedIDs returns ids sorted, once each, never nil (the column is NOT NULL).
func sortedIDs(ids []int64) []int64 {
	return append([]int64{}, slices.Compact(slices.Sorted(slices.Values(ids)))...)
}

// CreateMachine creates a machine, health Unknown. KindInvalid if m is not
// valid or an environment does not exist; KindConflict if its space has a
// machine of that name or its subscription id is taken.
func (s *Store) CreateMachine(ctx context.Context, m cuttle.Machine) (cuttle.Machine, error) {
	var got cuttle.Machine
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkMachine(ctx, tx, m); err != nil {
			return err
		}
		var err error
		got, err = scanMachine(tx.QueryRow(ctx, `
			INSERT INTO machines (space_id, name, roles, environment_ids, style, uri, thumbprint, is_disabled)
			VALUES ($1, $2, $3, $4, $5, $6, upper($7), $8) RETURNING `+machineColumns,
			m.SpaceID, m.Name, uniqueRoles(m.Roles), sortedIDs(m.EnvironmentIDs),
			string(m.Style), m.URI, m.Thumbprint, m.IsDisabled))
		return machineConflict(err, m)
	})
	return got, dbError(err, "creating the machine")
}

// Machine returns one machine. KindNotFound if there is none.
func (s *Store) Machine(ctx context.Context, id int64) (cuttle.Machine, error) {
	m, err := scanMachine(s.pool.QueryRow(ctx, `SELECT `+machineColumns+` FROM machines WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return cuttle.Machine{}, machineNotFound(id)
	}
	return m, dbError(err, "reading the machine")
}

// Machines returns the machines q selects, by name. Ids, thumbprint and
// subscription id are looked up by index; the other filters apply to those.
func (s *Store) Machines(ctx context.Context, q cuttle.MachineQuery) ([]cuttle.Machine, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT `+machineColumns+` FROM machines
		WHERE (coalesce(cardinality($1::bigint[]), 0) = 0 OR id = ANY ($1))
			AND ($2 = '' OR thumbprint = upper($2))
			AND ($3 = '' OR (style = 'TentacleActive' AND uri = $3))
		ORDER BY lower(name), id`, q.IDs, q.Thumbprint, q.SubscriptionID)
	if err != nil {
		return nil, dbError(err, "listing the machines")
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cuttle.Machine, error) { return scanMachine(r) })
	if err != nil {
		return nil, dbError(err, "listing the machines")
	}
	return slices.DeleteFunc(all, func(m cuttle.Machine) bool { return !q.Matches(m) }), nil
}

// UpdateMachine replaces what a user may change of the machine of m.ID,
// keeping its health. Errors as CreateMachine's, and KindNotFound.
func (s *Store) UpdateMachine(ctx context.Context, m cuttle.Machine) (cuttle.Machine, error) {
	var got cuttle.Machine
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkMachine(ctx, tx, m); err != nil {
			return err
		}
		var err error
		got, err = scanMachine(tx.QueryRow(ctx, `
			UPDATE machines SET name = $2, roles = $3, environment_ids = $4, style = $5, uri = $6, thumbprint = upper($7),
				is_disabled = $8
			WHERE id = $1 RETURNING `+machineColumns,
			m.ID, m.Name, uniqueRoles(m.Roles), sortedIDs(m.EnvironmentIDs),
			string(m.Style), m.URI, m.Thumbprint, m.IsDisabled))
		if errors.Is(err, pgx.ErrNoRows) {
			return machineNotFound(m.ID)
		}
		return machineConflict(err, m)
	})
	return got, dbError(err, "updating the machine")
}

// DeleteMachine removes a machine. KindNotFound if there is none.
func (s *Store) DeleteMachine(ctx context.Context, id int64) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM machines WHERE id = $1`, id)
	if err != nil {
		return dbError(err, "deleting the machine")
	}
	if tag.RowsAffected() == 0 {
		return machineNotFound(id)
	}
	return nil
}

// SetMachineHealth records a health check's findings, dated now, unless a
// later task's findings are stored.
// KindNotFound if there is no such machine.
func (s *Store) SetMachineHealth(ctx context.Context, id int64, h cuttle.MachineHealth) error {
	tag, err := s.pool.Exec(ctx, `
		UPDATE machines SET health_status = $2, status_summary = $3, agent_version = $4, os = $5,
			health_checked_at = clock_timestamp(), health_task_id = $6
		WHERE id = $1 AND health_task_id <= $6`, id, string(h.Status), h.StatusSummary, h.AgentVersion, h.OS, h.TaskID)
	if err != nil {
		return dbError(err, "recording the machine's health")
	}
	if tag.RowsAffected() == 0 {
		_, err := s.Machine(ctx, id)
		return err
	}
	return nil
}

const commandColumns = `c.id, c.uid, c.machine_id, c.task_id, c.key, c.kind, c.payload::text, c.state,
	c.created_at, c.dispatched_at, c.finished_at, c.dispatched_by, c.output_seq, c.cancel_requested,
	c.exit_code, c.result::text, c.error, c.output_lines, c.output_bytes, c.dropped_lines, c.dropped_bytes`

// scanCommand scans the commandColumns of row, and then into extra.
func scanCommand(row pgx.Row, extra ...any) (cuttle.Command, error) {
	var (
		c                    cuttle.Command
		kind, payload, state string
		dispatched, finished *time.Time
		result               *string
	)
	dest := []any{&c.ID, &c.UID, &c.MachineID, &c.TaskID, &c.Key, &kind, &payload, &state,
		&c.CreatedAt, &dispatched, &finished, &c.DispatchedBy, &c.OutputSeq, &c.CancelRequested,
		&c.ExitCode, &result, &c.Error, &c.Output.Lines, &c.Output.Bytes, &c.Output.DroppedLines, &c.Output.DroppedBytes}
	err := row.Scan(append(dest, extra...)...)
	c.Kind, c.Payload, c.State = cuttle.CommandKind(kind), json.RawMessage(payload), cuttle.CommandState(state)
	c.CreatedAt, c.DispatchedAt, c.FinishedAt = c.CreatedAt.UTC(), utc(dispatched), utc(finished)
	if result != nil {
		c.Result = json.RawMessage(*result)
	}
	return c, err
}

func collectCommands(rows pgx.Rows, err error) ([]cuttle.Command, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cuttle.Command, error) { return scanCommand(r) })
}

// EnsureCommands queues each command unless its task already has one with
// its key, and returns every one of them in order, the existing ones as
// they are. KindInvalid for a command that is not valid.
func (s *Store) EnsureCommands(ctx context.Context, cmds []cuttle.NewCommand) ([]cuttle.Command, error) {
	n := len(cmds)
	uids, machines, tasks := make([]string, n), make([]int64, n), make([]int64, n)
	keys, kinds, payloads := make([]string, n), make([]string, n), make([]string, n)
	for i, c := range cmds {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		payload := string(c.Payload)
		if payload == "" {
			payload = "{}"
		}
		uids[i], machines[i], tasks[i], keys[i], kinds[i], payloads[i] = uuid.NewString(), c.MachineID, c.TaskID, c.Key, string(c.Kind), payload
	}
	// One batch: one round trip and one implicit transaction, in which the
	// SELECT sees what the INSERT wrote.
	b := &pgx.Batch{}
	b.Queue(`
		INSERT INTO commands (uid, machine_id, task_id, key, kind, payload, state, created_at)
		SELECT u, m, t, k, kd, p::jsonb, 'Pending', clock_timestamp()
		FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[]) AS n (u, m, t, k, kd, p)
		ON CONFLICT (task_id, key) DO NOTHING`, uids, machines, tasks, keys, kinds, payloads)
	b.Queue(`
		SELECT `+commandColumns+` FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS n (t, k, i)
		JOIN commands c ON c.task_id = n.t AND c.key = n.k
		ORDER BY n.i`, tasks, keys)
	out, err := func() (out []cuttle.Command, err error) {
		br := s.pool.SendBatch(ctx, b)
		defer func() {
			if cerr := br.Close(); err == nil {
				err = cerr
			}
		}()
		if _, err := br.Exec(); err != nil {
			return nil, invalidJSON(err, "command's payload")
		}
		return collectCommands(br.Query())
	}()
	return out, dbError(err, "queuing commands")
}

func commandNotFound(what string) error {
	return cuttle.Errorf(cuttle.KindNotFound, "There is no command %s.", what)
}

// Command returns one command. KindNotFound if there is none.
func (s *Store) Command(ctx context.Context, id int64) (cuttle.Command, error) {
	c, err := scanCommand(s.pool.QueryRow(ctx, `SELECT `+commandColumns+` FROM commands c WHERE c.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return cuttle.Command{}, commandNotFound(fmt.Sprint(id))
	}
	return c, dbError(err, "reading the command")
}

// CommandByUID returns the command with that UID. KindNotFound if none.
func (s *Store) CommandByUID(ctx context.Context, uid string) (cuttle.Command, error) {
	c, err := scanCommand(s.pool.QueryRow(ctx, `SELECT `+commandColumns+` FROM commands c WHERE c.uid = $1`, uid))
	if errors.Is(err, pgx.ErrNoRows) {
		return cuttle.Command{}, commandNotFound(fmt.Sprintf("%q", uid))
	}
	return c, dbError(err, "reading the command")
}

// dispatchable is SQL, over commands c and a redelivery interval in
// microseconds, for a command a poll hands out now.
var dispatchable = `(c.state = 'Pending' OR (c.state = 'Dispatched' AND NOT c.cancel_requested
	AND c.dispatched_at <= clock_timestamp() - ` + interval("%[1]s") + `))`

// cancelToTell is SQL, over commands c and a redelivery interval, for an
// unfinished handed-out command whose cancel the agent has not been told of
// within the interval.
var cancelToTell = `(c.state IN ('Dispatched', 'Running') AND c.cancel_requested
	AND (c.cancel_told_at IS NULL OR c.cancel_told_at <= clock_timestamp() - ` + interval("%[1]s") + `))`

// abandonable is SQL, over commands c and an interval in microseconds, for
// a cancelled command handed out so long ago that its agent is not waited
// for any more.
var abandonable = `(c.state = 'Dispatched' AND c.cancel_requested
	AND c.dispatched_at <= clock_timestamp() - ` + interval("%[1]s") + `)`

// DispatchCommands hands out up to limit of the machine's commands (see
// store.AgentStore). A poll that finds nothing to hand out, abandon or
// tell, as most polls do (a command running on its agent included), costs
// one read; otherwise the three updates go in one batch, one round trip
// and one implicit transaction.
func (s *Store) DispatchCommands(ctx context.Context, machineID int64, node string, limit int, redeliverAfter time.Duration) ([]cuttle.Command, []string, error) {
	redeliver, abandon := redeliverAfter.Microseconds(), store.AbandonAfter.Microseconds()
	var work bool
	if err := s.pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM commands c WHERE c.machine_id = $1 AND c.state IN ('Pending', 'Dispatched', 'Running')
			AND (`+fmt.Sprintf(dispatchable, "$2::bigint")+` OR `+fmt.Sprintf(cancelToTell, "$2::bigint")+`
				OR `+fmt.Sprintf(abandonable, "$3::bigint")+`))`,
		machineID, redeliver, abandon).Scan(&work); err != nil || !work {
		return nil, nil, dbError(err, "handing out commands")
	}
	b := &pgx.Batch{}
	b.Queue(`
		UPDATE commands c SET state = 'Canceled', finished_at = clock_timestamp(),
			error = 'The command was cancelled, and its agent never confirmed it.'
		WHERE c.machine_id = $1 AND `+fmt.Sprintf(abandonable, "$2::bigint"), machineID, abandon)
	b.Queue(`
		WITH picked AS (
			SELECT c.id FROM commands c
			WHERE c.machine_id = $1 AND `+fmt.Sprintf(dispatchable, "$2::bigint")+`
			ORDER BY c.id LIMIT $3 FOR UPDATE SKIP LOCKED)
		UPDATE commands c SET state = 'Dispatched', dispatched_at = clock_timestamp(), dispatched_by = $4
		FROM picked WHERE c.id = picked.id
		RETURNING `+commandColumns, machineID, redeliver, limit, node)
	b.Queue(`
		UPDATE commands c SET cancel_told_at = clock_timestamp()
		WHERE c.machine_id = $1 AND `+fmt.Sprintf(cancelToTell, "$2::bigint")+`
		RETURNING c.uid`, machineID, redeliver)
	cmds, cancel, err := func() (cmds []cuttle.Command, cancel []string, err error) {
		br := s.pool.SendBatch(ctx, b)
		defer func() {
			if cerr := br.Close(); err == nil {
				err = cerr
			}
		}()
		if _, err := br.Exec(); err != nil {
			return nil, nil, err
		}
		if cmds, err = collectCommands(br.Query()); err != nil {
			return nil, nil, err
		}
		slices.SortFunc(cmds, func(a, b cuttle.Command) int { return cmp.Compare(a.ID, b.ID) })
		rows, err := br.Query()
		if err != nil {
			return nil, nil, err
		}
		cancel, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return cmds, cancel, err
	}()
	if err != nil {
		return nil, nil, dbError(err, "handing out commands")
	}
	return cmds, cancel, nil
}

// DispatchableMachines returns the machines that DispatchCommands would
// give something now.
func (s *Store) DispatchableMachines(ctx context.Context, redeliverAfter time.Duration) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT c.machine_id FROM commands c
		WHERE c.state IN ('Pending', 'Dispatched', 'Running')
			AND (`+fmt.Sprintf(dispatchable, "$1::bigint")+` OR `+fmt.Sprintf(cancelToTell, "$1::bigint")+`)
		ORDER BY c.machine_id`, redeliverAfter.Microseconds())
	if err != nil {
		return nil, dbError(err, "finding machines with work")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	return ids, dbError(err, "finding machines with work")
}

// RecordReport stores what the machine's agent reports of one of its
// commands (see store.AgentStore) and returns the command as stored.
func (s *Store) RecordReport(ctx context.Context, machineID int64, r cuttle.CommandReport) (cuttle.Command, error) {
	if err := r.Validate(); err != nil {
		return cuttle.Command{}, err
	}
	var got cuttle.Command
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var closed bool
		c, err := scanCommand(tx.QueryRow(ctx, `
			SELECT `+commandColumns+`, coalesce(c.finished_at < clock_timestamp() - `+interval("$3")+`, false)
			FROM commands c WHERE c.uid = $1 AND c.machine_id = $2 FOR UPDATE`, r.UID, machineID, r.Bound.GraceOrDefault().Microseconds()), &closed)
		if errors.Is(err, pgx.ErrNoRows) {
			return commandNotFound(fmt.Sprintf("%q for this machine", r.UID))
		}
		if err != nil {
			return err
		}
		plan, err := r.Plan(c, closed)
		if err != nil {
			return err
		}
		if lines := plan.Store; len(lines) > 0 {
			seqs, times, streams, texts := make([]int64, len(lines)), make([]time.Time, len(lines)), make([]string, len(lines)), make([]string, len(lines))
			for i, l := range lines {
				seqs[i], times[i], streams[i], texts[i] = l.Seq, l.Time, l.Stream, l.Text
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO command_output (command_id, seq, time, stream, text)
				SELECT $1, s, t, st, tx FROM unnest($2::bigint[], $3::timestamptz[], $4::text[], $5::text[]) AS l (s, t, st, tx)
				ON CONFLICT DO NOTHING`, c.ID, seqs, times, streams, texts); err != nil {
				return err
			}
		}
		var result *string
		if len(r.Result) > 0 {
			s := string(r.Result)
			result = &s
		}
		got, err = scanCommand(tx.QueryRow(ctx, `
			UPDATE commands c SET output_seq = $2,
				output_lines = c.output_lines + $7, output_bytes = c.output_bytes + $8,
				dropped_lines = c.dropped_lines + $9, dropped_bytes = c.dropped_bytes + $10,
				state = CASE
					WHEN c.state IN ('Success', 'Failed', 'Canceled') THEN c.state
					WHEN $3 = 'Running' THEN 'Running'
					ELSE $3 END,
				exit_code = CASE WHEN c.state IN ('Success', 'Failed', 'Canceled') OR $3 = 'Running' THEN c.exit_code ELSE $4 END,
				result = CASE WHEN c.state IN ('Success', 'Failed', 'Canceled') OR $3 = 'Running' THEN c.result ELSE $5::jsonb END,
				error = CASE WHEN c.state IN ('Success', 'Failed', 'Canceled') OR $3 = 'Running' THEN c.error ELSE $6 END,
				finished_at = CASE WHEN c.state IN ('Success', 'Failed', 'Canceled') OR $3 = 'Running' THEN c.finished_at
					ELSE clock_timestamp() END
			WHERE c.id = $1
			RETURNING `+commandColumns, c.ID, plan.OutputSeq, string(r.State), r.ExitCode, result, r.Error,
			plan.Added.Lines, plan.Added.Bytes, plan.Added.DroppedLines, plan.Added.DroppedBytes))
		return invalidJSON(err, "report's result")
	})
	return got, dbError(err, "recording a report")
}

// CommandOutput returns up to limit lines of the command's output after the
// line afterSeq, in order.
func (s *Store) CommandOutput(ctx context.Context, id, afterSeq int64, limit int) ([]cuttle.CommandLine, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT seq, time, stream, text FROM command_output
		WHERE command_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, id, afterSeq, limit)
	if err != nil {
		return nil, dbError(err, "reading a command's output")
	}
	lines, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cuttle.CommandLine, error) {
		var l cuttle.CommandLine
		err := r.Scan(&l.Seq, &l.Time, &l.Stream, &l.Text)
		l.Time = l.Time.UTC()
		return l, err
	})
	return lines, dbError(err, "reading a command's output")
}

// CancelCommand asks for a command to be stopped (see store.AgentStore).
// KindNotFound if there is none.
func (s *Store) CancelCommand(ctx context.Context, id int64) (cuttle.Command, error) {
	c, err := scanCommand(s.pool.QueryRow(ctx, `
		UPDATE commands c SET
			cancel_requested = c.state NOT IN ('Success', 'Failed', 'Canceled') OR c.cancel_requested,
			state = CASE WHEN c.state = 'Pending' THEN 'Canceled' ELSE c.state END,
			finished_at = CASE WHEN c.state = 'Pending' THEN clock_timestamp() ELSE c.finished_at END,
			error = CASE WHEN c.state = 'Pending' THEN 'The command was cancelled before it was handed out.' ELSE c.error END
		WHERE c.id = $1
		RETURNING `+commandColumns, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return cuttle.Command{}, commandNotFound(fmt.Sprint(id))
	}
	return c, dbError(err, "cancelling the command")
}

// DeleteEndedCommands deletes the commands of tasks completed more than age
// ago, with their output (see store.AgentStore).
func (s *Store) DeleteEndedCommands(ctx context.Context, age time.Duration, limit int) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			DELETE FROM commands WHERE id IN (
				SELECT c.id FROM commands c JOIN tasks t ON t.id = c.task_id
				WHERE t.completed_time < clock_timestamp() - `+interval("$1")+`
				ORDER BY c.id LIMIT $2)
			RETURNING id`, age.Microseconds(), limit)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		n = len(ids)
		_, err = tx.Exec(ctx, `DELETE FROM command_output WHERE command_id = ANY($1)`, ids)
		return err
	})
	return n, dbError(err, "deleting the commands of ended tasks")
}
