-- Bounds on what an agent's command stores (DESIGN.md invariant 13): the
-- lines and bytes of output it stored, and what came over its bound and
-- was counted, not stored. Existing commands are counted from their output.

-- +goose Up
ALTER TABLE commands
    ADD COLUMN output_lines  bigint NOT NULL DEFAULT 0,
    ADD COLUMN output_bytes  bigint NOT NULL DEFAULT 0,
    ADD COLUMN dropped_lines bigint NOT NULL DEFAULT 0,
    ADD COLUMN dropped_bytes bigint NOT NULL DEFAULT 0;
UPDATE commands c SET output_lines = o.lines, output_bytes = o.bytes
FROM (SELECT command_id, count(*) AS lines, sum(octet_length(text)) AS bytes
      FROM command_output GROUP BY command_id) o
WHERE o.command_id = c.id;

-- +goose Down
ALTER TABLE commands DROP COLUMN output_lines, DROP COLUMN output_bytes,
    DROP COLUMN dropped_lines, DROP COLUMN dropped_bytes;
