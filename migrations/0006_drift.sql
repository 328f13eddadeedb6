-- s3rewind catalog, part 6: actions that found their key changed.
--
-- A copy is sent with the condition the scan saw (If-Match: the key's
-- newest ETag, or If-None-Match: * where the key had no current version).
-- S3 refusing it (412) means someone wrote the key after the scan: the
-- action becomes 'drifted', and `error` says what the key holds now.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt.

DROP VIEW plan_review;

CREATE TABLE actions_new (
    plan_id            INTEGER NOT NULL,
    id                 INTEGER NOT NULL,
    kind               TEXT    NOT NULL CHECK (kind IN
                           ('delete_version', 'delete_marker', 'copy_version', 'add_delete_marker')),
    key                TEXT    NOT NULL,
    key_id             INTEGER NOT NULL,
    version_id         TEXT,
    seq                INTEGER,
    size               INTEGER,
    storage_class      TEXT,
    why                TEXT    NOT NULL,
    expected_latest    TEXT,
    status             TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN
                           ('pending', 'in_flight', 'done', 'failed', 'skipped', 'drifted')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    error              TEXT,
    result_version_id  TEXT,
    applied_at         TEXT,
    PRIMARY KEY (plan_id, id)
) WITHOUT ROWID;

INSERT INTO actions_new
SELECT plan_id, id, kind, key, key_id, version_id, seq, size, storage_class, why,
       expected_latest, status, attempts, error, result_version_id, applied_at
FROM actions;

DROP TABLE actions;
ALTER TABLE actions_new RENAME TO actions;
CREATE INDEX actions_by_key ON actions (plan_id, key_id);

-- plan_review gains expected_latest: for a drifted action, what the scan
-- saw on top of the key (`error` says what was found).
CREATE VIEW plan_review AS
SELECT p.name                                                 AS plan,
       a.id                                                   AS id,
       a.kind                                                 AS action,
       a.key                                                  AS key,
       a.version_id                                           AS version_id,
       (SELECT h.last_modified FROM key_history h
        WHERE h.key_id = a.key_id AND h.seq = a.seq)          AS version_last_modified,
       a.size                                                 AS size,
       a.storage_class                                        AS storage_class,
       a.why                                                  AS why,
       a.status                                               AS status,
       a.error                                                AS error,
       a.result_version_id                                    AS result_version_id,
       a.applied_at                                           AS applied_at,
       a.expected_latest                                      AS expected_latest
FROM actions a
JOIN plans p ON p.id = a.plan_id;
