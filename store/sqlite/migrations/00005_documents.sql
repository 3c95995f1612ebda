-- Environments, users and API keys become document collections (package
-- resources): each table holds id, space_id, version and the document as
-- JSON; the columns that filters, order and uniqueness need are added and
-- filled from the documents by collection.Sync when the node opens the
-- store, after the migrations. Rows keep their ids, and each table's
-- AUTOINCREMENT sequence goes on from where the old one was, so that no id
-- is given twice. A user who was an administrator becomes a member of the
-- administrators team, which this migration creates the way Sync would;
-- Sync adds the other built-in teams. There is no way down: restore a
-- backup instead.

-- +goose Up
CREATE TABLE environments_v5 (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id TEXT    NOT NULL DEFAULT '',
    version  INTEGER NOT NULL DEFAULT 0,
    doc      TEXT    NOT NULL
);
INSERT INTO environments_v5 (id, space_id, version, doc)
SELECT id, space_id, 0, json_object(
    'Name', name, 'Description', description, 'SortOrder', sort_order,
    'UseGuidedFailure', CASE WHEN use_guided_failure THEN json('true') ELSE json('false') END,
    'AllowDynamicInfrastructure', CASE WHEN allow_dynamic_infrastructure THEN json('true') ELSE json('false') END,
    'EnvironmentTags', json('[]'), 'ExtensionSettings', json('[]'))
FROM environments;

CREATE TABLE users_v5 (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id TEXT    NOT NULL DEFAULT '',
    version  INTEGER NOT NULL DEFAULT 0,
    doc      TEXT    NOT NULL
);
INSERT INTO users_v5 (id, version, doc)
SELECT id, 0, json_object(
    'Username', username, 'DisplayName', username, 'EmailAddress', '', 'IsActive', json('true'),
    'IsService', json('false'), 'IsRequestor', json('false'), 'CanPasswordBeEdited', json('false'),
    'Identities', json('[]'))
FROM users;

CREATE TABLE api_keys_v5 (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id TEXT    NOT NULL DEFAULT '',
    version  INTEGER NOT NULL DEFAULT 0,
    doc      TEXT    NOT NULL
);
INSERT INTO api_keys_v5 (version, doc)
SELECT 0, json_object(
    'UserId', 'Users-' || user_id, 'Purpose', purpose,
    'Created', strftime('%Y-%m-%dT%H:%M:%fZ', created_at / 1000.0, 'unixepoch'),
    'Expires', NULL, 'Digest', digest, 'Hint', 'API-')
FROM api_keys ORDER BY created_at, digest;

CREATE TABLE teams (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id TEXT    NOT NULL DEFAULT '',
    version  INTEGER NOT NULL DEFAULT 0,
    doc      TEXT    NOT NULL
);
INSERT INTO teams (version, doc)
SELECT 0, json_object(
    'Name', 'Octopus Administrators', 'Description', 'The administrators: they may change everything.',
    'MemberUserIds', json((SELECT json_group_array(m) FROM (SELECT 'Users-' || id AS m FROM users WHERE is_admin ORDER BY id))),
    'ExternalSecurityGroups', json('[]'),
    'CanBeDeleted', json('false'), 'CanBeRenamed', json('false'), 'CanChangeMembers', json('true'), 'CanChangeRoles', json('true'));

-- The new sequences go on from the old ones (or the highest id copied).
DELETE FROM sqlite_sequence WHERE name IN ('environments_v5', 'users_v5');
INSERT INTO sqlite_sequence (name, seq)
SELECT 'environments_v5', max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'environments'), 0),
                              coalesce((SELECT max(id) FROM environments_v5), 0));
INSERT INTO sqlite_sequence (name, seq)
SELECT 'users_v5', max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'users'), 0),
                       coalesce((SELECT max(id) FROM users_v5), 0));

DROP TABLE api_keys;
DROP TABLE users;
DROP TABLE environments;
ALTER TABLE environments_v5 RENAME TO environments;
ALTER TABLE users_v5 RENAME TO users;
ALTER TABLE api_keys_v5 RENAME TO api_keys;
