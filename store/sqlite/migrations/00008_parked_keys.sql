-- A task parked for a person may let the next task of its concurrency key
-- run meanwhile (a manual intervention that does not block concurrent
-- deployments): parked_holds_key 0. The fence covers only the parked
-- tasks that hold their key.

-- +goose Up
ALTER TABLE tasks ADD COLUMN parked_holds_key INTEGER NOT NULL DEFAULT 1;
DROP INDEX tasks_concurrency;
CREATE UNIQUE INDEX tasks_concurrency ON tasks (concurrency_key)
    WHERE concurrency_key <> '' AND (state IN ('Executing', 'Cancelling') OR (state = 'Queued' AND parked <> 0 AND parked_holds_key <> 0));

-- +goose Down
DROP INDEX tasks_concurrency;
CREATE UNIQUE INDEX tasks_concurrency ON tasks (concurrency_key)
    WHERE concurrency_key <> '' AND (state IN ('Executing', 'Cancelling') OR (state = 'Queued' AND parked <> 0));
ALTER TABLE tasks DROP COLUMN parked_holds_key;
