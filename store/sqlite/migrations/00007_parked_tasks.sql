-- Tasks that wait for a person (parked) and tasks of which one runs at a
-- time (concurrency_key): see package tasks, "Parked tasks" and "One at a
-- time". A parked task is Queued with parked set; the unique index is the
-- fence that keeps a second task of a key from running or waiting beside
-- one that does.

-- +goose Up
ALTER TABLE tasks ADD COLUMN parked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN concurrency_key TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX tasks_concurrency ON tasks (concurrency_key)
    WHERE concurrency_key <> '' AND (state IN ('Executing', 'Cancelling') OR (state = 'Queued' AND parked <> 0));

-- +goose Down
DROP INDEX tasks_concurrency;
ALTER TABLE tasks DROP COLUMN concurrency_key;
ALTER TABLE tasks DROP COLUMN parked;
