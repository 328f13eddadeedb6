-- s3rewind catalog, part 4: one place for each readable format, and a
-- record of compaction.

-- `key_history` is the one view that turns stored times and ETags into
-- text; `objects` and `delete_markers` are its rows of one kind. (SQLite
-- flattens views into the queries that use them: no cost.)
DROP VIEW objects;
CREATE VIEW objects AS
SELECT key, version_id, is_latest, last_modified, size, etag, storage_class,
       last_modified_unix, seq, key_id
FROM key_history
WHERE is_marker = 0;

DROP VIEW delete_markers;
CREATE VIEW delete_markers AS
SELECT key, version_id, is_latest, last_modified, last_modified_unix, seq, key_id
FROM key_history
WHERE is_marker = 1;

DROP VIEW plan_review;
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
       a.applied_at                                           AS applied_at
FROM actions a
JOIN plans p ON p.id = a.plan_id;

-- When the finished scan's file was packed (NULL: not yet, e.g. a kill cut
-- the compaction short; the next `scan` finishes it).
ALTER TABLE scans ADD COLUMN compacted_at TEXT;
UPDATE scans SET compacted_at = finished_at WHERE finished_at IS NOT NULL;
