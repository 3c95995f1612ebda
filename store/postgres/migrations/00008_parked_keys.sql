-- A task parked for a person may let the next task of its concurrency key
-- run meanwhile (a manual intervention that does not block concurrent
-- deployments): parked_holds_key false. The fence covers only the parked
-- tasks that hold their key.

-- +goose Up
ALTER TABLE tasks ADD COLUMN parked_holds_key boolean NOT NULL DEFAULT true;
DROP INDEX tasks_concurrency;
CREATE UNIQUE INDEX tasks_concurrency ON tasks (concurrency_key)
    WHERE concurrency_key <> '' AND (state IN ('Executing', 'Cancelling') OR (state = 'Queued' AND parked AND parked_holds_key));

-- +goose Down
DROP INDEX tasks_concurrency;
CREATE UNIQUE INDEX tasks_concurrency ON tasks (concurrency_key)
    WHERE concurrency_key <> '' AND (state IN ('Executing', 'Cancelling') OR (state = 'Queued' AND parked));
ALTER TABLE tasks DROP COLUMN parked_holds_key;
