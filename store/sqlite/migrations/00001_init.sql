-- Times are integer Unix milliseconds taken from the database clock; durations
-- are integer milliseconds.

-- +goose Up

-- The cluster's identity and settings: one row, written by the first node.
CREATE TABLE cluster (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    installation_id  TEXT    NOT NULL,
    key_fingerprint  TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    heartbeat_ms     INTEGER NOT NULL,
    stale_timeout_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE nodes (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    name                 TEXT    NOT NULL UNIQUE,
    max_concurrent_tasks INTEGER NOT NULL,
    draining             INTEGER NOT NULL DEFAULT 0,
    -- NULL until the first check-in.
    last_seen            INTEGER,
    -- 1 after a clean stop, until the next check-in.
    stopped              INTEGER NOT NULL DEFAULT 0,
    version              TEXT    NOT NULL DEFAULT '',
    os                   TEXT    NOT NULL DEFAULT '',
    -- A JSON array of strings.
    addresses            TEXT    NOT NULL DEFAULT '[]',
    key_fingerprint      TEXT    NOT NULL DEFAULT '',
    started_at           INTEGER
) STRICT;

-- The leader lease: one row, present from the start. node_id NULL means
-- nobody leads; term only grows.
CREATE TABLE leader_lease (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    term       INTEGER NOT NULL DEFAULT 0,
    node_id    INTEGER REFERENCES nodes (id) ON DELETE SET NULL,
    expires_at INTEGER
) STRICT;

INSERT INTO leader_lease (id, term) VALUES (1, 0);

CREATE TABLE users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    username   TEXT    NOT NULL UNIQUE,
    is_admin   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    digest     TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX api_keys_user_id ON api_keys (user_id);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE users;
DROP TABLE leader_lease;
DROP TABLE nodes;
DROP TABLE cluster;
