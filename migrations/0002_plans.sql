-- s3rewind catalog, part 2: plans, their actions, and the views people review
-- them with.

-- One row per named plan.
CREATE TABLE plans (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    rule        TEXT    NOT NULL,     -- 'restore', 'undelete', 'expire' or 'sql'
    parameters  TEXT    NOT NULL,     -- the rule's parameters, as JSON
    created_at  TEXT    NOT NULL,     -- RFC 3339, UTC
    scan_id     INTEGER NOT NULL,     -- scans.id of the catalog the plan was made from
    actions     INTEGER NOT NULL      -- number of actions; their ids are 1..actions
);

-- One row per S3 call-to-be. `id` is dense within the plan (1, 2, 3, …), so
-- apply can hand out blocks of ids by range, without COUNT or OFFSET.
CREATE TABLE actions (
    plan_id            INTEGER NOT NULL,  -- plans.id
    id                 INTEGER NOT NULL,  -- 1..plans.actions
    kind               TEXT    NOT NULL CHECK (kind IN
                           ('delete_version', 'delete_marker', 'copy_version', 'add_delete_marker')),
    key                TEXT    NOT NULL,
    key_id             INTEGER NOT NULL,  -- keys.id
    version_id         TEXT,              -- the version or marker acted on; NULL for add_delete_marker
    seq                INTEGER,           -- its entries.seq; NULL for add_delete_marker
    size               INTEGER,           -- bytes of the version acted on (copied, or deleted)
    storage_class      TEXT,              -- of that version ('STANDARD', 'GLACIER', …); NULL for markers
    why                TEXT    NOT NULL,  -- the reason, for people
    expected_latest    TEXT,              -- version id that was the key's newest entry at scan time
    status             TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN
                           ('pending', 'in_flight', 'done', 'failed', 'skipped')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    error              TEXT,              -- S3's error code and message, or why it was skipped
    result_version_id  TEXT,              -- the version id S3 returned (copy, add_delete_marker)
    applied_at         TEXT,              -- RFC 3339, UTC
    PRIMARY KEY (plan_id, id)
) WITHOUT ROWID;

-- Every version and delete marker of every key, readable, in listing order
-- (ORDER BY key, seq). `kind` is 'version' or 'delete_marker'.
CREATE VIEW key_history AS
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
       e.key_id                                               AS key_id
FROM entries e JOIN keys k ON k.id = e.key_id;

-- One row per action, with the plan's name and the acted-on entry's time.
CREATE VIEW plan_review AS
SELECT p.name                                                 AS plan,
       a.id                                                   AS id,
       a.kind                                                 AS action,
       a.key                                                  AS key,
       a.version_id                                           AS version_id,
       strftime('%Y-%m-%dT%H:%M:%SZ', e.mtime, 'unixepoch')   AS version_last_modified,
       a.size                                                 AS size,
       a.storage_class                                        AS storage_class,
       a.why                                                  AS why,
       a.status                                               AS status,
       a.error                                                AS error,
       a.result_version_id                                    AS result_version_id,
       a.applied_at                                           AS applied_at
FROM actions a
JOIN plans p ON p.id = a.plan_id
LEFT JOIN entries e ON e.key_id = a.key_id AND e.seq = a.seq;
