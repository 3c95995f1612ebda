-- Bounds on what an agent's command stores (DESIGN.md invariant 13): the
-- lines and bytes of output it stored, and what came over its bound and
-- was counted, not stored. Existing commands are counted from their output.

-- +goose Up
ALTER TABLE commands ADD COLUMN output_lines  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE commands ADD COLUMN output_bytes  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE commands ADD COLUMN dropped_lines INTEGER NOT NULL DEFAULT 0;
ALTER TABLE commands ADD COLUMN dropped_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE commands SET
    output_lines = (SELECT count(*) FROM command_output o WHERE o.command_id = commands.id),
    output_bytes = (SELECT coalesce(sum(length(CAST(o.text AS BLOB))), 0) FROM command_output o WHERE o.command_id = commands.id);

-- +goose Down
ALTER TABLE commands DROP COLUMN dropped_bytes;
ALTER TABLE commands DROP COLUMN dropped_lines;
ALTER TABLE commands DROP COLUMN output_bytes;
ALTER TABLE commands DROP COLUMN output_lines;
