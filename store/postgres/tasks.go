package postgres

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// taskColumns are the columns scanTask reads, from tasks aliased t.
const taskColumns = `t.id, t.space_id, t.name, t.description, t.arguments::text, t.state, t.resumable, t.checkpoint::text,
	t.queue_time, t.queue_time_expiry, t.start_time, t.completed_time, t.last_updated_time,
	t.owner_id, t.server_node, t.epoch, t.error_message, t.has_warnings_or_errors, t.parked, t.concurrency_key`

// running is SQL for the states of a task its owner executes.
const running = `('Executing', 'Cancelling')`

// stopCommands is SQL for a data-modifying CTE named stopped: of the tasks
// in CTE ended (their rows as changed), those that have ended have their
// unfinished agent commands stopped, in the statement that ends them, so
// that no command runs for a task that has ended, whoever ended it (a
// cancel or an expiry of a task no node runs, a takeover): a pending
// command ends Canceled, a handed-out one is to be cancelled (as
// CancelCommand does).
const stopCommands = `stopped AS (
		UPDATE commands c SET
			cancel_requested = c.state <> 'Pending' OR c.cancel_requested,
			state = CASE WHEN c.state = 'Pending' THEN 'Canceled' ELSE c.state END,
			finished_at = CASE WHEN c.state = 'Pending' THEN clock_timestamp() ELSE c.finished_at END,
			error = CASE WHEN c.state = 'Pending' THEN 'The command was cancelled before it was handed out: its task ended.' ELSE c.error END
		FROM ended e
		WHERE c.task_id = e.id AND e.state IN ('Success', 'Failed', 'Canceled', 'TimedOut')
			AND c.state IN ('Pending', 'Dispatched', 'Running'))`

// utcText is the to_char pattern of a time in messages: RFC 3339 in UTC, to
// the millisecond, as in 2026-01-02T03:04:05.678Z. Apply it to a timestamptz
// AT TIME ZONE 'UTC'.
const utcText = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`

func scanTask(row pgx.Row) (cuttle.Task, error) {
	var (
		t                cuttle.Task
		args, state      string
		checkpoint       *string
		start, completed *time.Time
		owner            *int64
	)
	err := row.Scan(&t.ID, &t.SpaceID, &t.Name, &t.Description, &args, &state, &t.Resumable, &checkpoint,
		&t.QueueTime, &t.QueueTimeExpiry, &start, &completed, &t.LastUpdatedTime,
		&owner, &t.ServerNode, &t.Epoch, &t.ErrorMessage, &t.HasWarningsOrErrors, &t.Parked, &t.ConcurrencyKey)
	if err != nil {
		return cuttle.Task{}, err
	}
	t.Arguments = json.RawMessage(args)
	t.State = cuttle.TaskState(state)
	if checkpoint != nil {
		t.Checkpoint = json.RawMessage(*checkpoint)
	}
	t.QueueTime = t.QueueTime.UTC()
	t.QueueTimeExpiry = t.QueueTimeExpiry.UTC()
	t.StartTime = utc(start)
	t.CompletedTime = utc(completed)
	t.LastUpdatedTime = t.LastUpdatedTime.UTC()
	if owner != nil {
		t.OwnerID = *owner
	}
	return t, nil
}

// collectTasks reads every task of rows, in the order of the rows.
func collectTasks(rows pgx.Rows, err error) ([]cuttle.Task, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (cuttle.Task, error) { return scanTask(r) })
}

// sortTasks orders tasks oldest first (queue time, then id).
func sortTasks(tasks []cuttle.Task) {
	slices.SortFunc(tasks, func(a, b cuttle.Task) int {
		if c := a.QueueTime.Compare(b.QueueTime); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

func taskNotFound(id int64) error {
	return cuttle.Errorf(cuttle.KindNotFound, "There is no task with the id %q.", cuttle.FormatID(cuttle.TaskIDPrefix, id))
}

// newTaskArgs validates t and returns its arguments (a JSON object, "{}"
// for none) and its queue timeout in microseconds. KindInvalid for a task
// without a name, arguments that are not a JSON object, or a negative
// queue timeout.
func newTaskArgs(t cuttle.NewTask) (args string, timeoutUS int64, err error) {
	if t.Name == "" {
		return "", 0, cuttle.Errorf(cuttle.KindInvalid, "A task needs a name.")
	}
	a := bytes.TrimSpace(t.Arguments)
	if len(a) == 0 || string(a) == "null" {
		a = []byte("{}")
	}
	if !json.Valid(a) || a[0] != '{' {
		return "", 0, cuttle.Errorf(cuttle.KindInvalid, "The arguments of a task must be a JSON object.")
	}
	if t.QueueTimeout < 0 {
		return "", 0, cuttle.Errorf(cuttle.KindInvalid, "The queue timeout of a task must not be negative.")
	}
	timeout := t.QueueTimeout
	if timeout == 0 {
		timeout = cuttle.DefaultQueueTimeout
	}
	return string(a), timeout.Microseconds(), nil
}

// notBefore is a new task's NotBefore as an argument: nil for none.
func notBefore(t cuttle.NewTask) *time.Time {
	if t.NotBefore.IsZero() {
		return nil
	}
	return &t.NotBefore
}

// invalidJSON maps PostgreSQL's refusal of a JSON document it cannot store
// (such as a string holding \u0000, which jsonb refuses) to KindInvalid.
func invalidJSON(err error, what string) error {
	if code := pgCode(err); code == "22P02" || code == "22P05" {
		return &cuttle.Error{Kind: cuttle.KindInvalid, Message: "The " + what + " is JSON that the database cannot store.", Err: err}
	}
	return err
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// insertTask queues t through q and returns it.
func insertTask(ctx context.Context, q querier, t cuttle.NewTask) (cuttle.Task, error) {
	args, timeout, err := newTaskArgs(t)
	if err != nil {
		return cuttle.Task{}, err
	}
	task, err := scanTask(q.QueryRow(ctx, insertTaskSQL,
		t.SpaceID, t.Name, t.Description, args, t.Resumable, timeout, t.ConcurrencyKey, notBefore(t)))
	return task, invalidJSON(err, "arguments")
}

var insertTaskSQL = `
	WITH clock AS (SELECT clock_timestamp() AS ts)
	INSERT INTO tasks AS t (space_id, name, description, arguments, state, resumable,
		queue_time, queue_time_expiry, last_updated_time, concurrency_key)
	SELECT $1, $2, $3, $4::jsonb, 'Queued', $5, greatest(clock.ts, $8::timestamptz),
		greatest(clock.ts, $8::timestamptz) + ` + interval("$6::bigint") + `, clock.ts, $7
	FROM clock
	RETURNING ` + taskColumns

// CreateTaskIn queues a task in the unit of work tx, as CreateTask.
func (s *Store) CreateTaskIn(ctx context.Context, tx *collection.Tx, t cuttle.NewTask) (cuttle.Task, error) {
	args, timeout, err := newTaskArgs(t)
	if err != nil {
		return cuttle.Task{}, err
	}
	rows, err := tx.Q.Query(ctx, insertTaskSQL, t.SpaceID, t.Name, t.Description, args, t.Resumable, timeout, t.ConcurrencyKey, notBefore(t))
	if err != nil {
		return cuttle.Task{}, dbError(invalidJSON(err, "arguments"), "queuing the task")
	}
	defer rows.Close()
	if !rows.Next() {
		return cuttle.Task{}, dbError(rows.Err(), "queuing the task")
	}
	task, err := scanTask(rows)
	return task, dbError(err, "queuing the task")
}

// CreateTask queues a task: QueueTime is the database's now and
// QueueTimeExpiry now plus t.QueueTimeout (cuttle.DefaultQueueTimeout if
// zero). Arguments nil (or JSON null) are stored as {}. KindInvalid for a
// task without a name, arguments that are not a JSON object, or a negative
// queue timeout.
func (s *Store) CreateTask(ctx context.Context, t cuttle.NewTask) (cuttle.Task, error) {
	task, err := insertTask(ctx, s.pool, t)
	if err != nil {
		return cuttle.Task{}, dbError(err, "queuing the task")
	}
	return task, nil
}

// Task returns one task. KindNotFound if there is none.
func (s *Store) Task(ctx context.Context, id int64) (cuttle.Task, error) {
	t, err := scanTask(s.pool.QueryRow(ctx, `SELECT `+taskColumns+` FROM tasks t WHERE t.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return cuttle.Task{}, taskNotFound(id)
	}
	if err != nil {
		return cuttle.Task{}, dbError(err, "reading the task")
	}
	return t, nil
}

// Tasks returns the page of tasks q selects, newest first (queue time, then
// id, descending), and how many it selects in all. Zero fields of q select
// all; a negative Skip or Take counts as zero. The count and the page are
// read in one round trip, each at its own instant.
func (s *Store) Tasks(ctx context.Context, q cuttle.TaskQuery) ([]cuttle.Task, int, error) {
	var (
		conds []string
		args  []any
	)
	add := func(cond string, arg any) {
		args = append(args, arg)
		conds = append(conds, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if len(q.IDs) > 0 {
		add(`t.id = ANY($?::bigint[])`, q.IDs)
	}
	if len(q.States) > 0 {
		states := make([]string, len(q.States))
		for i, st := range q.States {
			states[i] = string(st)
		}
		add(`(CASE WHEN t.parked AND t.state = 'Queued' THEN 'Executing' ELSE t.state END) = ANY($?::text[])`, states)
	}
	if q.Name != "" {
		add(`t.name = $?`, q.Name)
	}
	if q.NodeName != "" {
		add(`t.server_node = $?`, q.NodeName)
	}
	if q.OwnerID != 0 {
		add(`t.owner_id = $?`, q.OwnerID)
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	var limit *int
	if q.Take > 0 {
		limit = &q.Take
	}
	n := len(args)
	b := &pgx.Batch{}
	b.Queue(`SELECT count(*) FROM tasks t`+where, args...)
	columns := taskColumns
	if q.NoCheckpoints {
		columns = strings.Replace(columns, "t.checkpoint::text", "NULL::text", 1)
	}
	b.Queue(`SELECT `+columns+` FROM tasks t`+where+`
		ORDER BY t.queue_time DESC, t.id DESC
		OFFSET $`+strconv.Itoa(n+1)+` LIMIT $`+strconv.Itoa(n+2),
		append(args, max(q.Skip, 0), limit)...)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	var total int
	if err := br.QueryRow().Scan(&total); err != nil {
		return nil, 0, dbError(err, "counting the tasks")
	}
	tasks, err := collectTasks(br.Query())
	if err != nil {
		return nil, 0, dbError(err, "listing the tasks")
	}
	if err := br.Close(); err != nil {
		return nil, 0, dbError(err, "listing the tasks")
	}
	return tasks, total, nil
}

// claimTasks is the claim: one statement that checks the node ($1) is
// online and not draining, computes its room (its cap less the tasks it
// executes, and no more than the limit $2), picks that many of the oldest
// queued unexpired tasks that no concurrent claim holds (SKIP LOCKED), and
// makes them the node's.
var claimTasks = `
	WITH clock AS (SELECT clock_timestamp() AS ts),
	me AS (
		SELECT n.id, n.name,
			greatest(0, least($2::bigint, n.max_concurrent_tasks - ` + runningTasks + `)) AS room
		FROM nodes n
		WHERE n.id = $1 AND NOT n.draining AND NOT ` + offline("n") + `
	),
	picked AS (
		SELECT q.id FROM tasks q
		WHERE q.state = 'Queued' AND NOT q.parked AND q.queue_time_expiry > (SELECT ts FROM clock)
			AND q.queue_time <= (SELECT ts FROM clock)
			AND (q.concurrency_key = '' OR (
				NOT EXISTS (SELECT 1 FROM tasks o WHERE o.concurrency_key = q.concurrency_key
					AND (o.state IN ` + running + ` OR (o.state = 'Queued' AND o.parked AND o.parked_holds_key)))
				AND q.id = (SELECT min(f.id) FROM tasks f
					WHERE f.concurrency_key = q.concurrency_key AND f.state = 'Queued' AND NOT f.parked
						AND f.queue_time <= (SELECT ts FROM clock))))
		ORDER BY q.queue_time, q.id
		LIMIT coalesce((SELECT room FROM me), 0)
		FOR UPDATE OF q SKIP LOCKED
	)
	UPDATE tasks AS t SET
		state = 'Executing',
		owner_id = me.id,
		server_node = me.name,
		epoch = t.epoch + 1,
		start_time = coalesce(t.start_time, clock.ts),
		last_updated_time = clock.ts
	FROM picked, me, clock
	WHERE t.id = picked.id
	RETURNING ` + taskColumns

// ClaimTasks claims for the node up to limit of the oldest queued tasks
// whose expiry has not passed, and no more than its task cap less the tasks
// it executes (Executing or Cancelling) now; none if the node is offline,
// draining or unknown, or if limit is not positive. Each claimed task
// becomes Executing with the node as owner (ServerNode its name), its epoch
// one more, and its StartTime set if it was zero. It returns the claimed
// tasks oldest first.
//
// The claim is one statement (FOR UPDATE SKIP LOCKED picks the rows, so
// concurrent claims never take one task twice), preceded in the same
// implicit transaction and round trip by a lock of the node's row. The lock
// serializes the claims of one node: under READ COMMITTED a statement counts
// the node's tasks in the snapshot it took when it began, so without it two
// claims of one node at once would each see the room the other fills.
func (s *Store) ClaimTasks(ctx context.Context, nodeID int64, limit int) ([]cuttle.Task, error) {
	if limit <= 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT 1 FROM nodes WHERE id = $1 FOR NO KEY UPDATE`, nodeID)
	b.Queue(claimTasks, nodeID, limit)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, dbError(err, "claiming tasks")
	}
	tasks, err := collectTasks(br.Query())
	if err != nil {
		return nil, dbError(err, "claiming tasks")
	}
	if err := br.Close(); err != nil {
		return nil, dbError(err, "claiming tasks")
	}
	sortTasks(tasks)
	return tasks, nil
}

// OwnedTasks returns the tasks the node owns that are Executing or
// Cancelling, ordered by id.
func (s *Store) OwnedTasks(ctx context.Context, nodeID int64) ([]cuttle.TaskRef, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id, owner_id, epoch, state FROM tasks
		WHERE owner_id = $1 AND state IN `+running+`
		ORDER BY id`, nodeID)
	if err != nil {
		return nil, dbError(err, "listing the node's tasks")
	}
	refs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cuttle.TaskRef, error) {
		var (
			ref   cuttle.TaskRef
			state string
		)
		err := r.Scan(&ref.ID, &ref.Owner, &ref.Epoch, &state)
		ref.State = cuttle.TaskState(state)
		return ref, err
	})
	if err != nil {
		return nil, dbError(err, "listing the node's tasks")
	}
	return refs, nil
}

// lostOwnership is the error of a fenced write that changed nothing.
func lostOwnership(ref cuttle.TaskRef) error {
	return cuttle.Errorf(cuttle.KindConflict, "The node %s no longer owns the task %s at epoch %d.",
		cuttle.FormatID(cuttle.NodeIDPrefix, ref.Owner), cuttle.FormatID(cuttle.TaskIDPrefix, ref.ID), ref.Epoch)
}

// SaveCheckpoint stores a task's checkpoint (nil clears it), if ref's owner
// and epoch still own the task (Executing or Cancelling). KindConflict if
// they no longer do; KindInvalid if checkpoint is not JSON.
func (s *Store) SaveCheckpoint(ctx context.Context, ref cuttle.TaskRef, checkpoint []byte) error {
	cp, err := store.CheckpointArg(checkpoint)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE tasks SET checkpoint = $4::jsonb, last_updated_time = clock_timestamp()
		WHERE id = $1 AND owner_id = $2 AND epoch = $3 AND state IN `+running,
		ref.ID, ref.Owner, ref.Epoch, cp)
	if err != nil {
		return dbError(invalidJSON(err, "checkpoint"), "saving the checkpoint")
	}
	if tag.RowsAffected() == 0 {
		return lostOwnership(ref)
	}
	return nil
}

// FinishTasks ends each task whose ref (its own owner and epoch) still owns
// it, Executing or Cancelling, with its result and CompletedTime now, in one
// statement; and returns the ids of the results that were fenced out
// (changed nothing), in the order of results. KindInvalid, changing
// nothing, if a result's state is not Success, Failed or Canceled, or a
// task has two results.
func (s *Store) FinishTasks(ctx context.Context, results []cuttle.TaskResult) ([]int64, error) {
	if len(results) == 0 {
		return nil, nil
	}
	if err := cuttle.CheckResults(results); err != nil {
		return nil, err
	}
	var (
		ids, owners, epochs []int64
		states, messages    []string
		warnings            []bool
	)
	for _, r := range results {
		ids = append(ids, r.ID)
		owners = append(owners, r.Owner)
		epochs = append(epochs, r.Epoch)
		states = append(states, string(r.State))
		messages = append(messages, r.ErrorMessage)
		warnings = append(warnings, r.HasWarningsOrErrors)
	}
	rows, err := s.pool.Query(ctx, `
		WITH clock AS (SELECT clock_timestamp() AS ts), ended AS (
		UPDATE tasks AS t SET
			state = CASE WHEN r.state <> 'Queued' THEN r.state
				WHEN t.state = 'Cancelling' THEN 'Canceled' ELSE 'Queued' END,
			error_message = r.message,
			has_warnings_or_errors = t.has_warnings_or_errors OR r.warnings,
			completed_time = CASE WHEN r.state = 'Queued' AND t.state <> 'Cancelling' THEN NULL ELSE clock.ts END,
			queue_time_expiry = CASE WHEN r.state = 'Queued'
				THEN greatest(t.queue_time_expiry, clock.ts + (t.queue_time_expiry - t.queue_time))
				ELSE t.queue_time_expiry END,
			last_updated_time = clock.ts
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::boolean[])
			AS r (id, owner, epoch, state, message, warnings),
			clock
		WHERE t.id = r.id AND t.owner_id = r.owner AND t.epoch = r.epoch AND t.state IN `+running+`
		RETURNING t.id, t.state), `+stopCommands+`
		SELECT id FROM ended`,
		ids, owners, epochs, states, messages, warnings)
	if err != nil {
		return nil, dbError(err, "finishing tasks")
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, dbError(err, "finishing tasks")
	}
	var lost []int64
	for _, r := range results {
		if !slices.Contains(done, r.ID) {
			lost = append(lost, r.ID)
		}
	}
	return lost, nil
}

// CancelTask cancels a task: a queued one ends Canceled at once (its
// CompletedTime now), an executing one becomes Cancelling (its owner
// finishes it), a cancelling one stays so. It returns the task as it now
// is. KindConflict if it has completed, KindNotFound if there is none.
func (s *Store) CancelTask(ctx context.Context, id int64) (cuttle.Task, error) {
	// The update re-checks the state of a row that a concurrent statement
	// changed; if it matched nothing, the read tells why. A task read
	// Queued or Executing there moved back between the two (a takeover
	// re-queued it), so cancel again.
	for {
		t, err := scanTask(s.pool.QueryRow(ctx, `
			WITH clock AS (SELECT clock_timestamp() AS ts), ended AS (
			UPDATE tasks AS t SET
				state = CASE WHEN t.state = 'Queued' THEN 'Canceled' ELSE 'Cancelling' END,
				completed_time = CASE WHEN t.state = 'Queued' THEN clock.ts END,
				parked = false,
				last_updated_time = clock.ts
			FROM clock
			WHERE t.id = $1 AND t.state IN ('Queued', 'Executing')
			RETURNING t.*), `+stopCommands+`
			SELECT `+taskColumns+` FROM ended AS t`, id))
		if err == nil {
			return t, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return cuttle.Task{}, dbError(err, "cancelling the task")
		}
		t, err = s.Task(ctx, id)
		if err != nil {
			return cuttle.Task{}, err
		}
		switch {
		case t.State == cuttle.TaskCancelling:
			return t, nil
		case t.State.Completed():
			return cuttle.Task{}, cuttle.Errorf(cuttle.KindConflict, "The task has already completed (%s).", t.State)
		}
		if err := ctx.Err(); err != nil {
			return cuttle.Task{}, dbError(err, "cancelling the task")
		}
	}
}

// ExpireTasks ends TimedOut every queued task whose expiry has passed, with
// a message saying no node had room, and returns how many. Any node may call
// it; a task is expired once.
func (s *Store) ExpireTasks(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `
		WITH clock AS (SELECT clock_timestamp() AS ts), ended AS (
		UPDATE tasks AS t SET
			state = 'TimedOut',
			error_message = 'The task waited in the queue until its expiry ('
				|| to_char(t.queue_time_expiry AT TIME ZONE 'UTC', `+utcText+`)
				|| ') because no node had room to run it.',
			completed_time = clock.ts,
			last_updated_time = clock.ts
		FROM clock
		WHERE t.state = 'Queued' AND NOT t.parked AND t.queue_time_expiry <= clock.ts
		RETURNING t.id, t.state), `+stopCommands+`
		SELECT count(*) FROM ended`).Scan(&n)
	if err != nil {
		return 0, dbError(err, "expiring tasks")
	}
	return n, nil
}

// TakeOverTasks handles the Executing and Cancelling tasks whose owner is
// offline (stopped, silent for the stale timeout, or removed):
// Cancelling ones end Canceled; resumable Executing ones go back to Queued,
// keeping their checkpoint, their owner and epoch (the next claim bumps it)
// and their place in the queue, with their queue expiry pushed to at least
// now plus their original queue timeout; other Executing ones end Failed
// with a message naming the node. It returns the tasks as changed, ordered
// by id.
//
// It is one statement: a concurrent takeover (or finish) waits for the rows
// this one changes and then re-checks their state, so no task is changed
// twice.
func (s *Store) TakeOverTasks(ctx context.Context) ([]cuttle.Task, error) {
	tasks, err := collectTasks(s.pool.Query(ctx, `
		WITH clock AS (SELECT clock_timestamp() AS ts), ended AS (
		UPDATE tasks AS t SET
			state = CASE
				WHEN t.state = 'Cancelling' THEN 'Canceled'
				WHEN t.resumable THEN 'Queued'
				ELSE 'Failed' END,
			completed_time = CASE WHEN t.state = 'Executing' AND t.resumable THEN NULL ELSE clock.ts END,
			queue_time_expiry = CASE WHEN t.state = 'Executing' AND t.resumable
				THEN greatest(t.queue_time_expiry, clock.ts + (t.queue_time_expiry - t.queue_time))
				ELSE t.queue_time_expiry END,
			error_message = CASE WHEN t.state = 'Executing' AND NOT t.resumable
				THEN 'The node ' || t.server_node || ' that ran this task stopped responding'
					|| coalesce((SELECT ' (last seen ' || to_char(n.last_seen AT TIME ZONE 'UTC', `+utcText+`) || ')'
						FROM nodes n WHERE n.id = t.owner_id), '')
					|| '; the task was not resumable, so it failed.'
				ELSE t.error_message END,
			last_updated_time = clock.ts
		FROM clock
		WHERE t.state IN `+running+`
			AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = t.owner_id AND NOT `+offline("n")+`)
		RETURNING t.*), `+stopCommands+`
		SELECT `+taskColumns+` FROM ended AS t`))
	if err != nil {
		return nil, dbError(err, "taking over tasks")
	}
	slices.SortFunc(tasks, func(a, b cuttle.Task) int { return cmp.Compare(a.ID, b.ID) })
	return tasks, nil
}

// RunJob queues t for the leader-only job if the job is due (it never ran,
// or its last run is at least every old, so a changed interval applies to
// the next run) and the node holds the leader lease for term, unexpired;
// then it sets the job's last run to now and its last task to the new task. It is one transaction
// that holds the lease row (FOR SHARE, so no bid takes the lease meanwhile)
// and the job's row (so a concurrent run waits, then finds the job not
// due). ok reports whether it queued the task; a node that does not lead in
// term gets false and no error. KindInvalid for an empty job name or an
// invalid t (see CreateTask).
func (s *Store) RunJob(ctx context.Context, nodeID, term int64, job string, every time.Duration, t cuttle.NewTask) (cuttle.Task, bool, error) {
	if job == "" {
		return cuttle.Task{}, false, cuttle.Errorf(cuttle.KindInvalid, "A job needs a name.")
	}
	if _, _, err := newTaskArgs(t); err != nil {
		return cuttle.Task{}, false, err
	}
	var (
		task cuttle.Task
		ok   bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `
			SELECT 1 FROM leader_lease
			WHERE id = 1 AND node_id = $1 AND term = $2 AND expires_at > clock_timestamp()
			FOR SHARE`, nodeID, term).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schedules (job) VALUES ($1) ON CONFLICT (job) DO NOTHING`, job); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			WITH clock AS (SELECT clock_timestamp() AS ts)
			UPDATE schedules AS s SET last_run = clock.ts
			FROM clock
			WHERE s.job = $1 AND (s.last_run IS NULL OR s.last_run + `+interval("$2::bigint")+` <= clock.ts)`,
			job, every.Microseconds())
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if task, err = insertTask(ctx, tx, t); err != nil {
			return err
		}
		// The run's time is its task's queue time, which a later statement
		// took: the next run is due an interval after the task was queued.
		if _, err := tx.Exec(ctx, `UPDATE schedules SET last_task_id = $2, last_run = $3 WHERE job = $1`, job, task.ID, task.QueueTime); err != nil {
			return err
		}
		ok = true
		return nil
	})
	if err != nil {
		return cuttle.Task{}, false, dbError(err, "running the job "+job)
	}
	return task, ok, nil
}

// Schedules returns every job's schedule, ordered by job name (byte order).
// A job that never ran has no schedule.
func (s *Store) Schedules(ctx context.Context) ([]cuttle.Schedule, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT job, last_run, coalesce(last_task_id, 0)
		FROM schedules ORDER BY job COLLATE "C"`)
	if err != nil {
		return nil, dbError(err, "reading the schedules")
	}
	schedules, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cuttle.Schedule, error) {
		var (
			sc   cuttle.Schedule
			last *time.Time
		)
		err := r.Scan(&sc.Job, &last, &sc.LastTask)
		sc.LastRun = utc(last)
		return sc, err
	})
	if err != nil {
		return nil, dbError(err, "reading the schedules")
	}
	return schedules, nil
}

// ParkTask parks a task that waits for a person (package tasks, "Parked
// tasks"), in the unit of work tx that records what it waits for: it is
// handed back Queued, its epoch kept and its checkpoint set (nil keeps it),
// and marked parked. KindConflict if ref no longer owns the task or it is
// Cancelling (its owner then ends it Canceled instead).
func (s *Store) ParkTask(ctx context.Context, tx *collection.Tx, ref cuttle.TaskRef, checkpoint []byte, releaseKey bool) error {
	cp, err := store.CheckpointArg(checkpoint)
	if err != nil {
		return err
	}
	n, err := tx.Q.Exec(ctx, `
		UPDATE tasks SET state = 'Queued', parked = true, parked_holds_key = NOT $5, last_updated_time = clock_timestamp(),
			checkpoint = coalesce($4::jsonb, checkpoint)
		WHERE id = $1 AND owner_id = $2 AND epoch = $3 AND state = 'Executing'`, ref.ID, ref.Owner, ref.Epoch, cp, releaseKey)
	if err != nil {
		return dbError(invalidJSON(err, "checkpoint"), "parking the task")
	}
	if n == 0 {
		return lostOwnership(ref)
	}
	return nil
}

// ResumeTask makes a parked task claimable again, in the unit of work tx
// that records the answer it waited for, and pushes its queue expiry to at
// least now plus its queue timeout. KindConflict if it is not parked
// (answered already, or cancelled); KindNotFound if there is no such task.
func (s *Store) ResumeTask(ctx context.Context, tx *collection.Tx, id int64) error {
	n, err := tx.Q.Exec(ctx, `
		WITH clock AS (SELECT clock_timestamp() AS ts)
		UPDATE tasks AS t SET parked = false, last_updated_time = clock.ts,
			queue_time_expiry = greatest(t.queue_time_expiry, clock.ts + (t.queue_time_expiry - t.queue_time))
		FROM clock
		WHERE t.id = $1 AND t.state = 'Queued' AND t.parked`, id)
	if err != nil {
		return dbError(err, "resuming the task")
	}
	if n == 0 {
		found, err := collection.Exists(ctx, tx.Q, `SELECT 1 FROM tasks WHERE id = $1`, id)
		if err != nil {
			return dbError(err, "resuming the task")
		}
		if !found {
			return taskNotFound(id)
		}
		return cuttle.Errorf(cuttle.KindConflict, "The task %s is not waiting to be resumed.", cuttle.FormatID(cuttle.TaskIDPrefix, id))
	}
	return nil
}
