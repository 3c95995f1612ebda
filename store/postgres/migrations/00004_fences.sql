-- Fences for statements that may commit after their caller gave up on them
-- (DESIGN.md invariant 9).
--
-- A node's incarnation: each registration starts a new one and a clean stop
-- ends it; check-ins write only into their own live incarnation, so that a
-- check-in that commits after the stop cannot bring the node back online.
--
-- A machine's health names the health task that found it: a result is
-- stored only if no later task's result is, so a late write of an older
-- check never overwrites a newer one.

-- +goose Up
ALTER TABLE nodes ADD COLUMN incarnation bigint NOT NULL DEFAULT 0;
ALTER TABLE machines ADD COLUMN health_task_id bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE machines DROP COLUMN health_task_id;
ALTER TABLE nodes DROP COLUMN incarnation;
