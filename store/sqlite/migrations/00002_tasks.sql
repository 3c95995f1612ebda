-- The durable task queue, the leader's job schedules, and the job intervals
-- of the cluster settings. Times are integer Unix milliseconds from the
-- database clock; durations are integer milliseconds.

-- +goose Up

-- The intervals of the leader-only jobs; the defaults are those of
-- cuttle.DefaultClusterSettings (1 h, 1 h, 1 h, 24 h).
ALTER TABLE cluster ADD COLUMN retention_interval_ms       INTEGER NOT NULL DEFAULT 3600000;
ALTER TABLE cluster ADD COLUMN package_cleanup_interval_ms INTEGER NOT NULL DEFAULT 3600000;
ALTER TABLE cluster ADD COLUMN health_check_interval_ms    INTEGER NOT NULL DEFAULT 3600000;
ALTER TABLE cluster ADD COLUMN reindex_interval_ms         INTEGER NOT NULL DEFAULT 86400000;

-- Tasks outlive the nodes that ran them: owner_id has no foreign key, and
-- server_node keeps the owner's name as it was when it claimed the task.
CREATE TABLE tasks (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id               TEXT    NOT NULL DEFAULT '',
    name                   TEXT    NOT NULL,
    description            TEXT    NOT NULL DEFAULT '',
    -- A JSON object.
    arguments              TEXT    NOT NULL DEFAULT '{}',
    state                  TEXT    NOT NULL CHECK (state IN
        ('Queued', 'Executing', 'Cancelling', 'Success', 'Failed', 'Canceled', 'TimedOut')),
    resumable              INTEGER NOT NULL DEFAULT 0,
    -- JSON; NULL until the owner saves one.
    checkpoint             TEXT,
    queue_time             INTEGER NOT NULL,
    queue_time_expiry      INTEGER NOT NULL,
    -- NULL until the first claim.
    start_time             INTEGER,
    -- NULL until the task ends.
    completed_time         INTEGER,
    last_updated_time      INTEGER NOT NULL,
    -- The node that executes the task, or executed it last; NULL if none.
    owner_id               INTEGER,
    server_node            TEXT    NOT NULL DEFAULT '',
    -- The number of claims: with owner_id it fences every write of the owner.
    epoch                  INTEGER NOT NULL DEFAULT 0,
    error_message          TEXT    NOT NULL DEFAULT '',
    has_warnings_or_errors INTEGER NOT NULL DEFAULT 0
) STRICT;

-- The claim: the oldest queued tasks first.
CREATE INDEX tasks_queued ON tasks (queue_time, id) WHERE state = 'Queued';
-- A node's running tasks: its cap, its RunningTaskCount, takeover.
CREATE INDEX tasks_running ON tasks (owner_id) WHERE state IN ('Executing', 'Cancelling');
-- Listing, newest first.
CREATE INDEX tasks_newest ON tasks (queue_time DESC, id DESC);

-- When each leader-only job last ran. A job is due when it never ran or its
-- last run is one interval (a cluster setting, read at each run) old.
CREATE TABLE schedules (
    job          TEXT PRIMARY KEY,
    last_run     INTEGER,
    -- The task the last run queued; NULL if none. No foreign key: retention
    -- may delete the task.
    last_task_id INTEGER
) STRICT;

-- +goose Down
DROP TABLE schedules;
DROP TABLE tasks;
ALTER TABLE cluster DROP COLUMN retention_interval_ms;
ALTER TABLE cluster DROP COLUMN package_cleanup_interval_ms;
ALTER TABLE cluster DROP COLUMN health_check_interval_ms;
ALTER TABLE cluster DROP COLUMN reindex_interval_ms;
