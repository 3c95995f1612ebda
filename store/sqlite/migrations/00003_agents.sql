-- Agents: environments, machines (deployment targets), the queue of agent
-- commands with their output, and the cluster's certificate. Times are
-- integer Unix milliseconds from the database clock.

-- +goose Up

-- The certificate the node presents to agents: one row, written at the
-- first start (InitClusterCertificate). The private key is sealed with the
-- master key.
CREATE TABLE cluster_certificate (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    cert_pem   TEXT    NOT NULL,
    sealed_key BLOB    NOT NULL,
    thumbprint TEXT    NOT NULL
);

CREATE TABLE environments (
    id                           INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id                     TEXT    NOT NULL,
    name                         TEXT    NOT NULL,
    description                  TEXT    NOT NULL DEFAULT '',
    sort_order                   INTEGER NOT NULL DEFAULT 0,
    use_guided_failure           INTEGER NOT NULL DEFAULT 0,
    allow_dynamic_infrastructure INTEGER NOT NULL DEFAULT 0
);
-- Names are unique in a space, ignoring case.
CREATE UNIQUE INDEX environments_name ON environments (space_id, lower(name));

CREATE TABLE machines (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id           TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    -- JSON arrays: of role names, of environment ids.
    roles              TEXT    NOT NULL DEFAULT '[]',
    environment_ids    TEXT    NOT NULL DEFAULT '[]',
    style              TEXT    NOT NULL CHECK (style IN ('TentaclePassive', 'TentacleActive')),
    -- https://host:port/ of a listening agent; poll://<id>/ of a polling one.
    uri                TEXT    NOT NULL,
    thumbprint         TEXT    NOT NULL,
    is_disabled        INTEGER NOT NULL DEFAULT 0,
    health_status      TEXT    NOT NULL DEFAULT 'Unknown' CHECK (health_status IN
        ('Healthy', 'HasWarnings', 'Unhealthy', 'Unavailable', 'Unknown')),
    status_summary     TEXT    NOT NULL DEFAULT '',
    health_checked_at  INTEGER,
    agent_version      TEXT    NOT NULL DEFAULT '',
    os                 TEXT    NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX machines_name ON machines (space_id, lower(name));
-- A polling agent's subscription id names one machine.
CREATE UNIQUE INDEX machines_subscription ON machines (uri) WHERE style = 'TentacleActive';
-- The agent endpoint looks machines up by the certificate they present.
CREATE INDEX machines_thumbprint ON machines (thumbprint);

-- One row per command for an agent. Commands outlive their machine and
-- task rows (no foreign keys): retention removes them with their task.
CREATE TABLE commands (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    uid              TEXT    NOT NULL UNIQUE,
    machine_id       INTEGER NOT NULL,
    task_id          INTEGER NOT NULL,
    key              TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    -- JSON.
    payload          TEXT    NOT NULL DEFAULT '{}',
    state            TEXT    NOT NULL CHECK (state IN
        ('Pending', 'Dispatched', 'Running', 'Success', 'Failed', 'Canceled')),
    created_at       INTEGER NOT NULL,
    -- NULL until first handed out.
    dispatched_at    INTEGER,
    dispatched_by    TEXT    NOT NULL DEFAULT '',
    finished_at      INTEGER,
    output_seq       INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    -- When a poll last told the agent of the cancel; NULL if never.
    cancel_told_at   INTEGER,
    exit_code        INTEGER NOT NULL DEFAULT 0,
    -- JSON; NULL until final.
    result           TEXT,
    error            TEXT    NOT NULL DEFAULT '',
    UNIQUE (task_id, key)
);
-- The commands a poll may hand out, or whose cancel it must deliver.
CREATE INDEX commands_open ON commands (machine_id, id) WHERE state IN ('Pending', 'Dispatched', 'Running');

CREATE TABLE command_output (
    command_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    time       INTEGER NOT NULL,
    stream     TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    PRIMARY KEY (command_id, seq)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE command_output;
DROP TABLE commands;
DROP TABLE machines;
DROP TABLE environments;
DROP TABLE cluster_certificate;
