-- s3rewind catalog, part 8: copies waiting for an archive.
--
-- A copy whose source version sits in an archive (GLACIER, DEEP_ARCHIVE,
-- an Intelligent-Tiering archive tier) cannot be made until S3 restores
-- it. apply asks for the restore (RestoreObject) and marks the action
-- 'restoring'; a later apply copies it once the restore has finished, and
-- the rest of the plan never waits. The table is rebuilt for the CHECK.

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
                           ('pending', 'in_flight', 'done', 'failed', 'skipped', 'drifted', 'restoring')),
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
