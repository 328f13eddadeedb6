-- s3rewind catalog, part 11: writes attributed exactly, and a catalog that
-- follows what apply did.
--
-- (1) An action whose outcome cannot be decided — a response lost, and the
-- key holding a version that may or may not be the action's — is
-- 'uncertain': the version that may be its own is kept in
-- candidate_version_id, `error` says why, and a person settles it with
-- `s3rewind plan resolve`. How a result version was known is recorded in
-- matched_by. A multipart copy records its upload before completing it, so
-- that a completion whose answer was lost can be recognised. The table is
-- rebuilt for the CHECK.

DROP VIEW plan_review;

CREATE TABLE actions_new (
    plan_id               INTEGER NOT NULL,
    id                    INTEGER NOT NULL,
    kind                  TEXT    NOT NULL CHECK (kind IN
                              ('delete_version', 'delete_marker', 'copy_version', 'add_delete_marker')),
    key                   TEXT    NOT NULL,
    key_id                INTEGER NOT NULL,
    version_id            TEXT,
    seq                   INTEGER,
    size                  INTEGER,
    storage_class         TEXT,
    why                   TEXT    NOT NULL,
    expected_latest       TEXT,
    status                TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN
                              ('pending', 'in_flight', 'done', 'failed', 'skipped', 'drifted',
                               'restoring', 'uncertain')),
    attempts              INTEGER NOT NULL DEFAULT 0,
    error                 TEXT,
    result_version_id     TEXT,
    applied_at            TEXT,
    matched_by            TEXT,      -- how result_version_id is known to be the action's
    candidate_version_id  TEXT,      -- uncertain: the version that may be the action's
    upload_id             TEXT,      -- multipart copies: the upload, recorded before it is completed
    upload_etag           TEXT,      -- the ETag its completion gives, from its parts' ETags
    PRIMARY KEY (plan_id, id)
) WITHOUT ROWID;

INSERT INTO actions_new (plan_id, id, kind, key, key_id, version_id, seq, size, storage_class,
                         why, expected_latest, status, attempts, error, result_version_id, applied_at)
SELECT plan_id, id, kind, key, key_id, version_id, seq, size, storage_class, why,
       expected_latest, status, attempts, error, result_version_id, applied_at
FROM actions;

DROP TABLE actions;
ALTER TABLE actions_new RENAME TO actions;
CREATE INDEX actions_by_key ON actions (plan_id, key_id);

-- (2) The catalog follows apply. Every change to the catalog's picture of
-- the bucket after the scan — an apply run, keys listed again — moves
-- scans.revision on and is recorded here. Entries are never deleted any
-- more: an entry apply made (a copy, a new delete marker) carries the
-- revision that added it, and one that apply removed, or that a new
-- listing no longer shows, the revision that found it gone. So a plan made
-- after an apply sees the bucket as apply left it, while `verify` and
-- `plan undo` read each plan's keys as they were when it was made
-- (plans.scan_revision), whatever was listed since.

CREATE TABLE changes (
    revision  INTEGER PRIMARY KEY,   -- the scans.revision this change moved the catalog to
    kind      TEXT    NOT NULL CHECK (kind IN ('apply', 'rescan')),
    plan_id   INTEGER,               -- apply: the plan applied; rescan: the plan whose keys were listed
    at        TEXT    NOT NULL       -- RFC 3339, UTC
);

ALTER TABLE entries ADD COLUMN added_rev INTEGER;    -- the revision that added it; NULL: the scan
ALTER TABLE entries ADD COLUMN removed_rev INTEGER;  -- the revision that found it gone; NULL: there

-- Every entry the catalog has known, removed ones included, readable: what
-- verify and undo read a plan's keys from. `key_history` is its rows that
-- are still there.
CREATE VIEW entry_history AS
SELECT k.key                                                  AS key,
       e.seq                                                  AS seq,
       CASE e.is_marker WHEN 1 THEN 'delete_marker' ELSE 'version' END AS kind,
       e.version_id                                           AS version_id,
       e.is_marker                                            AS is_marker,
       e.is_latest                                            AS is_latest,
       strftime('%Y-%m-%dT%H:%M:%SZ', e.mtime, 'unixepoch')   AS last_modified,
       e.mtime                                                AS last_modified_unix,
       e.size                                                 AS size,
       CASE WHEN typeof(e.etag) = 'blob'
            THEN lower(hex(e.etag)) || coalesce('-' || e.etag_parts, '')
            ELSE e.etag END                                   AS etag,
       CASE WHEN e.is_marker = 0 THEN coalesce(e.storage_class, 'STANDARD') END AS storage_class,
       e.key_id                                               AS key_id,
       e.added_rev                                            AS added_rev,
       e.removed_rev                                          AS removed_rev
FROM entries e JOIN keys k ON k.id = e.key_id;

DROP VIEW objects;
DROP VIEW delete_markers;
DROP VIEW key_history;

CREATE VIEW key_history AS
SELECT key, seq, kind, version_id, is_marker, is_latest, last_modified, last_modified_unix,
       size, etag, storage_class, key_id
FROM entry_history
WHERE removed_rev IS NULL;

CREATE VIEW objects AS
SELECT key, version_id, is_latest, last_modified, size, etag, storage_class,
       last_modified_unix, seq, key_id
FROM key_history
WHERE is_marker = 0;

CREATE VIEW delete_markers AS
SELECT key, version_id, is_latest, last_modified, last_modified_unix, seq, key_id
FROM key_history
WHERE is_marker = 1;

-- plan_review names the acted-on entry by (key, version id), removed or
-- not; and shows an uncertain action's candidate and how results were known.
CREATE VIEW plan_review AS
SELECT p.name                                                 AS plan,
       a.id                                                   AS id,
       a.kind                                                 AS action,
       a.key                                                  AS key,
       a.version_id                                           AS version_id,
       (SELECT h.last_modified FROM entry_history h
        WHERE h.key_id = a.key_id AND h.version_id = a.version_id
        ORDER BY h.seq LIMIT 1)                               AS version_last_modified,
       a.size                                                 AS size,
       a.storage_class                                        AS storage_class,
       a.why                                                  AS why,
       a.status                                               AS status,
       a.error                                                AS error,
       a.result_version_id                                    AS result_version_id,
       a.applied_at                                           AS applied_at,
       a.expected_latest                                      AS expected_latest,
       a.candidate_version_id                                 AS candidate_version_id,
       a.matched_by                                           AS matched_by
FROM actions a
JOIN plans p ON p.id = a.plan_id;
