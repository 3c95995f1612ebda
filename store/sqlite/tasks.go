package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/cuttledeploy/cuttle"
	"github.com/cuttledeploy/cuttle/store"
	"github.com/cuttledeploy/cuttle/store/collection"
)

// taskColumns are the columns scanTask reads, unqualified: SQLite's
// RETURNING names the modified table's columns only so.
const taskColumns = `id, space_id, name, description, arguments, state, resumable, checkpoint,
	queue_time, queue_time_expiry, start_time, completed_time, last_updated_time,
	owner_id, server_node, epoch, error_message, has_warnings_or_errors, parked, concurrency_key`

// running is SQL for the states of a task its owner executes.
const running = `('Executing', 'Cancelling')`

// stopCommands stops, in tx, the unfinished agent commands of those of the
// tasks ids that have ended, so that no command runs for a task that has
// ended, whoever ended it (a cancel or an expiry of a task no node runs, a
// takeover): a pending command ends Canceled, a handed-out one is to be
// cancelled (as CancelCommand does).
func stopCommands(ctx context.Context, tx *sql.Tx, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
		UPDATE commands SET
			cancel_requested = (state <> 'Pending' OR cancel_requested <> 0),
			finished_at = CASE WHEN state = 'Pending' THEN `+nowMS+` ELSE finished_at END,
			error = CASE WHEN state = 'Pending' THEN 'The command was cancelled before it was handed out: its task ended.' ELSE error END,
			state = CASE WHEN state = 'Pending' THEN 'Canceled' ELSE state END
		WHERE state IN ('Pending', 'Dispatched', 'Running') AND task_id IN (
			SELECT id FROM tasks WHERE id IN (SELECT value FROM json_each(?))
				AND state IN ('Success', 'Failed', 'Canceled', 'TimedOut'))`, string(list))
	return err
}

// utcText returns SQL for the Unix milliseconds ms as text in messages:
// RFC 3339 in UTC, to the millisecond, as in 2026-01-02T03:04:05.678Z.
func utcText(ms string) string {
	return `(strftime('%Y-%m-%dT%H:%M:%S', ` + ms + ` / 1000, 'unixepoch') || printf('.%03dZ', ` + ms + ` % 1000))`
}

func scanTask(row scanner) (cuttle.Task, error) {
	var (
		t                       cuttle.Task
		args, state             string
		checkpoint              sql.NullString
		queued, expiry, updated int64
		start, completed, owner sql.NullInt64
	)
	err := row.Scan(&t.ID, &t.SpaceID, &t.Name, &t.Description, &args, &state, &t.Resumable, &checkpoint,
		&queued, &expiry, &start, &completed, &updated,
		&owner, &t.ServerNode, &t.Epoch, &t.ErrorMessage, &t.HasWarningsOrErrors, &t.Parked, &t.ConcurrencyKey)
	if err != nil {
		return cuttle.Task{}, err
	}
	t.Arguments = json.RawMessage(args)
	t.State = cuttle.TaskState(state)
	if checkpoint.Valid {
		t.Checkpoint = json.RawMessage(checkpoint.String)
	}
	t.QueueTime = msTime(queued)
	t.QueueTimeExpiry = msTime(expiry)
	t.StartTime = nullTime(start)
	t.CompletedTime = nullTime(completed)
	t.LastUpdatedTime = msTime(updated)
	t.OwnerID = owner.Int64
	return t, nil
}

// queryer is a *sql.DB or a *sql.Tx.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryTasks runs query through q and reads every task it returns, in the
// order of the rows.
func queryTasks(ctx context.Context, q queryer, query string, args ...any) ([]cuttle.Task, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tasks []cuttle.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, t)
	}
	return tasks, rows.Err()
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
// for none) and its queue timeout in milliseconds. KindInvalid for a task
// without a name, arguments that are not a JSON object, or a negative
// queue timeout.
func newTaskArgs(t cuttle.NewTask) (args string, timeoutMS int64, err error) {
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
	return string(a), durationMS(timeout), nil
}

// insertTask queues t through q (the writer or one of its transactions) and
// returns it.
func insertTask(ctx context.Context, q queryRower, t cuttle.NewTask) (cuttle.Task, error) {
	args, timeout, err := newTaskArgs(t)
	if err != nil {
		return cuttle.Task{}, err
	}
	return scanTask(q.QueryRowContext(ctx, insertTaskSQL, insertTaskArgs(t, args, timeout)...))
}

const insertTaskSQL = `
	INSERT INTO tasks (space_id, name, description, arguments, state, resumable,
		queue_time, queue_time_expiry, last_updated_time, concurrency_key)
	VALUES (:space, :name, :description, :arguments, 'Queued', :resumable,
		max(` + nowMS + `, coalesce(:not_before, 0)), max(` + nowMS + `, coalesce(:not_before, 0)) + :timeout, ` + nowMS + `, :key)
	RETURNING ` + taskColumns

func insertTaskArgs(t cuttle.NewTask, args string, timeout int64) []any {
	return []any{sql.Named("space", t.SpaceID), sql.Named("name", t.Name), sql.Named("description", t.Description),
		sql.Named("arguments", args), sql.Named("resumable", t.Resumable), sql.Named("timeout", timeout),
		sql.Named("key", t.ConcurrencyKey), sql.Named("not_before", notBeforeMS(t))}
}

// notBeforeMS is a new task's NotBefore in Unix milliseconds: nil for
// none.
func notBeforeMS(t cuttle.NewTask) any {
	if t.NotBefore.IsZero() {
		return nil
	}
	return t.NotBefore.UnixMilli()
}

// CreateTaskIn queues a task in the unit of work tx, as CreateTask.
func (s *Store) CreateTaskIn(ctx context.Context, tx *collection.Tx, t cuttle.NewTask) (cuttle.Task, error) {
	args, timeout, err := newTaskArgs(t)
	if err != nil {
		return cuttle.Task{}, err
	}
	rows, err := tx.Q.Query(ctx, insertTaskSQL, insertTaskArgs(t, args, timeout)...)
	if err != nil {
		return cuttle.Task{}, dbError(err, "queuing the task")
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
// zero, rounded up to a millisecond). Arguments nil (or JSON null) are
// stored as {}. KindInvalid for a task without a name, arguments that are
// not a JSON object, or a negative queue timeout.
func (s *Store) CreateTask(ctx context.Context, t cuttle.NewTask) (cuttle.Task, error) {
	task, err := insertTask(ctx, s.db, t)
	return task, dbError(err, "queuing the task")
}

// Task returns one task. KindNotFound if there is none.
func (s *Store) Task(ctx context.Context, id int64) (cuttle.Task, error) {
	t, err := scanTask(s.rdb.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return cuttle.Task{}, taskNotFound(id)
	}
	return t, dbError(err, "reading the task")
}

// Tasks returns the page of tasks q selects, newest first (queue time, then
// id, descending), and how many it selects in all. Zero fields of q select
// all; a negative Skip or Take counts as zero. The count and the page are
// read in one transaction, so they agree.
func (s *Store) Tasks(ctx context.Context, q cuttle.TaskQuery) ([]cuttle.Task, int, error) {
	var (
		conds []string
		args  []any
	)
	if len(q.IDs) > 0 {
		ids, err := json.Marshal(q.IDs)
		if err != nil {
			return nil, 0, cuttle.Wrap(err, "listing the tasks")
		}
		conds = append(conds, `id IN (SELECT value FROM json_each(:ids))`)
		args = append(args, sql.Named("ids", string(ids)))
	}
	if len(q.States) > 0 {
		states, err := json.Marshal(q.States)
		if err != nil {
			return nil, 0, cuttle.Wrap(err, "listing the tasks")
		}
		conds = append(conds, `(CASE WHEN parked <> 0 AND state = 'Queued' THEN 'Executing' ELSE state END) IN (SELECT value FROM json_each(:states))`)
		args = append(args, sql.Named("states", string(states)))
	}
	if q.Name != "" {
		conds = append(conds, `name = :name`)
		args = append(args, sql.Named("name", q.Name))
	}
	if q.NodeName != "" {
		conds = append(conds, `server_node = :node`)
		args = append(args, sql.Named("node", q.NodeName))
	}
	if q.OwnerID != 0 {
		conds = append(conds, `owner_id = :owner`)
		args = append(args, sql.Named("owner", q.OwnerID))
	}
	where := ""
	if len(conds) > 0 {
		where = ` WHERE ` + strings.Join(conds, ` AND `)
	}
	limit := int64(-1) // no limit
	if q.Take > 0 {
		limit = int64(q.Take)
	}
	var (
		tasks []cuttle.Task
		total int
	)
	tx, err := s.rdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, dbError(err, "listing the tasks")
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tasks`+where, args...).Scan(&total); err != nil {
		return nil, 0, dbError(err, "counting the tasks")
	}
	columns := taskColumns
	if q.NoCheckpoints {
		columns = strings.Replace(columns, "checkpoint,", "NULL,", 1)
	}
	tasks, err = queryTasks(ctx, tx, `SELECT `+columns+` FROM tasks`+where+`
		ORDER BY queue_time DESC, id DESC
		LIMIT :limit OFFSET :skip`,
		append(args, sql.Named("limit", limit), sql.Named("skip", max(q.Skip, 0)))...)
	if err != nil {
		return nil, 0, dbError(err, "listing the tasks")
	}
	return tasks, total, nil
}

// ClaimTasks claims for the node up to limit of the oldest queued tasks
// whose expiry has not passed, and no more than its task cap less the tasks
// it executes (Executing or Cancelling) now; none if the node is offline,
// draining or unknown, or if limit is not positive. Each claimed task
// becomes Executing with the node as owner (ServerNode its name), its epoch
// one more, and its StartTime set if it was zero. It returns the claimed
// tasks oldest first. The claim is one statement of the single writer, so
// claims never overlap.
func (s *Store) ClaimTasks(ctx context.Context, nodeID int64, limit int) ([]cuttle.Task, error) {
	if limit <= 0 {
		return nil, nil
	}
	tasks, err := queryTasks(ctx, s.db, `
		UPDATE tasks SET
			state = 'Executing',
			owner_id = :node,
			server_node = (SELECT n.name FROM nodes n WHERE n.id = :node),
			epoch = epoch + 1,
			start_time = COALESCE(start_time, `+nowMS+`),
			last_updated_time = `+nowMS+`
		WHERE id IN (
			SELECT q.id FROM tasks q
			WHERE q.state = 'Queued' AND q.parked = 0 AND q.queue_time_expiry > `+nowMS+` AND q.queue_time <= `+nowMS+`
				AND (q.concurrency_key = '' OR (
					NOT EXISTS (SELECT 1 FROM tasks o WHERE o.concurrency_key = q.concurrency_key
						AND (o.state IN `+running+` OR (o.state = 'Queued' AND o.parked <> 0 AND o.parked_holds_key <> 0)))
					AND q.id = (SELECT min(f.id) FROM tasks f
						WHERE f.concurrency_key = q.concurrency_key AND f.state = 'Queued' AND f.parked = 0
							AND f.queue_time <= `+nowMS+`)))
			ORDER BY q.queue_time, q.id
			LIMIT COALESCE((
				SELECT MAX(0, MIN(:limit, n.max_concurrent_tasks - `+runningTasks+`))
				FROM nodes n
				WHERE n.id = :node AND n.draining = 0 AND NOT `+offline("n")+`), 0))
		RETURNING `+taskColumns,
		sql.Named("node", nodeID), sql.Named("limit", limit), defaultStale)
	if err != nil {
		return nil, dbError(err, "claiming tasks")
	}
	sortTasks(tasks)
	return tasks, nil
}

// OwnedTasks returns the tasks the node owns that are Executing or
// Cancelling, ordered by id.
func (s *Store) OwnedTasks(ctx context.Context, nodeID int64) ([]cuttle.TaskRef, error) {
	rows, err := s.rdb.QueryContext(ctx, `
		SELECT id, owner_id, epoch, state FROM tasks
		WHERE owner_id = ? AND state IN `+running+`
		ORDER BY id`, nodeID)
	if err != nil {
		return nil, dbError(err, "listing the node's tasks")
	}
	defer rows.Close()
	var refs []cuttle.TaskRef
	for rows.Next() {
		var (
			ref   cuttle.TaskRef
			state string
		)
		if err := rows.Scan(&ref.ID, &ref.Owner, &ref.Epoch, &state); err != nil {
			return nil, dbError(err, "listing the node's tasks")
		}
		ref.State = cuttle.TaskState(state)
		refs = append(refs, ref)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err, "listing the node's tasks")
	}
	return refs, nil
}

// lostOwnership is the error of a fenced write that changed nothing.
func lostOwnership(ref cuttle.TaskRef) error {
	return cuttle.Errorf(cuttle.KindConflict, "The node %s no longer owns the task %s at epoch %d.",
		cuttle.FormatID(cuttle.NodeIDPrefix, ref.Owner), cuttle.FormatID(cuttle.TaskIDPrefix, ref.ID), ref.Epoch)
}

// fenced is SQL for the condition of a write by the owner :owner at epoch
// :epoch of the task :id.
const fenced = `id = :id AND owner_id = :owner AND epoch = :epoch AND state IN ` + running

// SaveCheckpoint stores a task's checkpoint (nil clears it), if ref's owner
// and epoch still own the task (Executing or Cancelling). KindConflict if
// they no longer do; KindInvalid if checkpoint is not JSON.
func (s *Store) SaveCheckpoint(ctx context.Context, ref cuttle.TaskRef, checkpoint []byte) error {
	cp, err := store.CheckpointArg(checkpoint)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `
		UPDATE tasks SET checkpoint = :checkpoint, last_updated_time = `+nowMS+`
		WHERE `+fenced,
		sql.Named("checkpoint", cp), sql.Named("id", ref.ID), sql.Named("owner", ref.Owner), sql.Named("epoch", ref.Epoch))
	return dbError(affected(res, err, lostOwnership(ref)), "saving the checkpoint")
}

// FinishTasks ends each task whose ref (its own owner and epoch) still owns
// it, Executing or Cancelling, with its result and CompletedTime now, in one
// transaction; and returns the ids of the results that were fenced out
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
	var lost, finished []int64
	err := s.inTx(ctx, "finishing tasks", func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `
			UPDATE tasks SET
				state = CASE WHEN :state <> 'Queued' THEN :state
					WHEN state = 'Cancelling' THEN 'Canceled' ELSE 'Queued' END,
				error_message = :message,
				has_warnings_or_errors = has_warnings_or_errors OR :warnings,
				completed_time = CASE WHEN :state = 'Queued' AND state <> 'Cancelling' THEN NULL ELSE `+nowMS+` END,
				queue_time_expiry = CASE WHEN :state = 'Queued'
					THEN MAX(queue_time_expiry, `+nowMS+` + (queue_time_expiry - queue_time))
					ELSE queue_time_expiry END,
				last_updated_time = `+nowMS+`
			WHERE `+fenced)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, r := range results {
			res, err := stmt.ExecContext(ctx, sql.Named("state", string(r.State)), sql.Named("message", r.ErrorMessage),
				sql.Named("warnings", r.HasWarningsOrErrors),
				sql.Named("id", r.ID), sql.Named("owner", r.Owner), sql.Named("epoch", r.Epoch))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				lost = append(lost, r.ID)
			} else {
				finished = append(finished, r.ID)
			}
		}
		return stopCommands(ctx, tx, finished)
	})
	if err != nil {
		return nil, err
	}
	return lost, nil
}

// CancelTask cancels a task: a queued one ends Canceled at once (its
// CompletedTime now), an executing one becomes Cancelling (its owner
// finishes it), a cancelling one stays so. It returns the task as it now
// is. KindConflict if it has completed, KindNotFound if there is none.
func (s *Store) CancelTask(ctx context.Context, id int64) (cuttle.Task, error) {
	var t cuttle.Task
	err := s.inTx(ctx, "cancelling the task", func(tx *sql.Tx) error {
		var err error
		t, err = scanTask(tx.QueryRowContext(ctx, `
			UPDATE tasks SET
				state = CASE WHEN state = 'Queued' THEN 'Canceled' ELSE 'Cancelling' END,
				completed_time = CASE WHEN state = 'Queued' THEN `+nowMS+` END,
				parked = 0,
				last_updated_time = `+nowMS+`
			WHERE id = ? AND state IN ('Queued', 'Executing')
			RETURNING `+taskColumns, id))
		if err == nil {
			return stopCommands(ctx, tx, []int64{t.ID})
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		t, err = scanTask(tx.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = ?`, id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return taskNotFound(id)
		case err != nil:
			return err
		case t.State.Completed():
			return cuttle.Errorf(cuttle.KindConflict, "The task has already completed (%s).", t.State)
		}
		return nil // Cancelling
	})
	if err != nil {
		return cuttle.Task{}, err
	}
	return t, nil
}

// ExpireTasks ends TimedOut every queued task whose expiry has passed, with
// a message saying no node had room, and returns how many.
func (s *Store) ExpireTasks(ctx context.Context) (int, error) {
	var expired []int64
	err := s.inTx(ctx, "expiring tasks", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `
		UPDATE tasks SET
			state = 'TimedOut',
			error_message = 'The task waited in the queue until its expiry ('
				|| `+utcText("queue_time_expiry")+`
				|| ') because no node had room to run it.',
			completed_time = `+nowMS+`,
			last_updated_time = `+nowMS+`
		WHERE state = 'Queued' AND parked = 0 AND queue_time_expiry <= `+nowMS+`
		RETURNING id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			expired = append(expired, id)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return stopCommands(ctx, tx, expired)
	})
	if err != nil {
		return 0, err
	}
	return len(expired), nil
}

// TakeOverTasks handles the Executing and Cancelling tasks whose owner is
// offline (stopped, silent for the stale timeout, or removed):
// Cancelling ones end Canceled; resumable Executing ones go back to Queued,
// keeping their checkpoint, their owner and epoch (the next claim bumps it)
// and their place in the queue, with their queue expiry pushed to at least
// now plus their original queue timeout; other Executing ones end Failed
// with a message naming the node. It returns the tasks as changed, ordered
// by id.
func (s *Store) TakeOverTasks(ctx context.Context) ([]cuttle.Task, error) {
	var tasks []cuttle.Task
	err := s.inTx(ctx, "taking over tasks", func(tx *sql.Tx) error {
		var err error
		tasks, err = queryTasks(ctx, tx, `
		UPDATE tasks SET
			state = CASE
				WHEN state = 'Cancelling' THEN 'Canceled'
				WHEN resumable <> 0 THEN 'Queued'
				ELSE 'Failed' END,
			completed_time = CASE WHEN state = 'Executing' AND resumable <> 0 THEN NULL ELSE `+nowMS+` END,
			queue_time_expiry = CASE WHEN state = 'Executing' AND resumable <> 0
				THEN MAX(queue_time_expiry, `+nowMS+` + (queue_time_expiry - queue_time))
				ELSE queue_time_expiry END,
			error_message = CASE WHEN state = 'Executing' AND resumable = 0
				THEN 'The node ' || server_node || ' that ran this task stopped responding'
					|| COALESCE((SELECT ' (last seen ' || `+utcText("n.last_seen")+` || ')'
						FROM nodes n WHERE n.id = tasks.owner_id), '')
					|| '; the task was not resumable, so it failed.'
				ELSE error_message END,
			last_updated_time = `+nowMS+`
		WHERE state IN `+running+`
			AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = tasks.owner_id AND NOT `+offline("n")+`)
		RETURNING `+taskColumns, defaultStale)
		if err != nil {
			return err
		}
		ids := make([]int64, len(tasks))
		for i, t := range tasks {
			ids[i] = t.ID
		}
		return stopCommands(ctx, tx, ids)
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(tasks, func(a, b cuttle.Task) int { return cmp.Compare(a.ID, b.ID) })
	return tasks, nil
}

// RunJob queues t for the leader-only job if the job is due (it never ran,
// or its last run is at least every old, rounded up to a millisecond) and
// the node holds the leader lease for term, unexpired; then it sets the
// job's last run to now and its last task to the new task, all in one
// transaction of the single writer. ok reports whether it
// queued the task; a node that does not lead in term gets false and no
// error. KindInvalid for an empty job name or an invalid t (see
// CreateTask).
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
	err := s.inTx(ctx, "running the job "+job, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `
			SELECT 1 FROM leader_lease
			WHERE id = 1 AND node_id = ? AND term = ? AND expires_at > `+nowMS, nodeID, term).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schedules (job) VALUES (?) ON CONFLICT (job) DO NOTHING`, job); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			UPDATE schedules SET last_run = `+nowMS+`
			WHERE job = :job AND (last_run IS NULL OR last_run + :every <= `+nowMS+`)`,
			sql.Named("job", job), sql.Named("every", durationMS(every)))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if task, err = insertTask(ctx, tx, t); err != nil {
			return err
		}
		// The run's time is its task's queue time, which a later statement
		// took: the next run is due an interval after the task was queued.
		if _, err := tx.ExecContext(ctx, `UPDATE schedules SET last_task_id = ?, last_run = ? WHERE job = ?`,
			task.ID, task.QueueTime.UnixMilli(), job); err != nil {
			return err
		}
		ok = true
		return nil
	})
	if err != nil {
		return cuttle.Task{}, false, err
	}
	return task, ok, nil
}

// Schedules returns every job's schedule, ordered by job name (byte order).
// A job that never ran has no schedule.
func (s *Store) Schedules(ctx context.Context) ([]cuttle.Schedule, error) {
	rows, err := s.rdb.QueryContext(ctx, `
		SELECT job, last_run, COALESCE(last_task_id, 0)
		FROM schedules ORDER BY job`)
	if err != nil {
		return nil, dbError(err, "reading the schedules")
	}
	defer rows.Close()
	var schedules []cuttle.Schedule
	for rows.Next() {
		var (
			sc   cuttle.Schedule
			last sql.NullInt64
		)
		if err := rows.Scan(&sc.Job, &last, &sc.LastTask); err != nil {
			return nil, dbError(err, "reading the schedules")
		}
		sc.LastRun = nullTime(last)
		schedules = append(schedules, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError(err, "reading the schedules")
	}
	return schedules, nil
}

// ParkTask parks a task that waits for a person (see store.TaskStore), in
// the unit of work tx. KindConflict if ref no longer owns the task or it
// is Cancelling.
func (s *Store) ParkTask(ctx context.Context, tx *collection.Tx, ref cuttle.TaskRef, checkpoint []byte, releaseKey bool) error {
	cp, err := store.CheckpointArg(checkpoint)
	if err != nil {
		return err
	}
	n, err := tx.Q.Exec(ctx, `
		UPDATE tasks SET state = 'Queued', parked = 1, parked_holds_key = ?, last_updated_time = `+nowMS+`, checkpoint = coalesce(?, checkpoint)
		WHERE id = ? AND owner_id = ? AND epoch = ? AND state = 'Executing'`, !releaseKey, cp, ref.ID, ref.Owner, ref.Epoch)
	if err != nil {
		return dbError(err, "parking the task")
	}
	if n == 0 {
		return lostOwnership(ref)
	}
	return nil
}

// ResumeTask makes a parked task claimable again (see store.TaskStore), in
// the unit of work tx. KindConflict if it is not parked; KindNotFound if
// there is no such task.
func (s *Store) ResumeTask(ctx context.Context, tx *collection.Tx, id int64) error {
	n, err := tx.Q.Exec(ctx, `
		UPDATE tasks SET parked = 0, last_updated_time = `+nowMS+`,
			queue_time_expiry = MAX(queue_time_expiry, `+nowMS+` + (queue_time_expiry - queue_time))
		WHERE id = ? AND state = 'Queued' AND parked <> 0`, id)
	if err != nil {
		return dbError(err, "resuming the task")
	}
	if n == 0 {
		found, err := collection.Exists(ctx, tx.Q, `SELECT 1 FROM tasks WHERE id = ?`, id)
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
