-- s3rewind catalog, part 13: keys a restore finds already as they were.
--
-- A restore planned again (after `scan --keys-of`, or from a fresh scan)
-- finds keys whose newest version is not the version of T but holds its
-- content: an earlier apply's copy of it. Copying again would write one
-- more identical version, so such a key gets no action; it is kept here
-- instead, with how its content was known:
--   'journal'  a done copy_version of an applied plan made the newest
--              version from the version of T (exact, multipart and
--              SSE-KMS copies too), directly or through copies of copies;
--   'etag'     the newest version and the version of T have the same size
--              and the same single-part ETag, which S3 makes the MD5 of the
--              content (an SSE-KMS ETag is drawn per write: two equal ones
--              are one object's).

CREATE TABLE already (
    plan_id            INTEGER NOT NULL,  -- plans.id
    key_id             INTEGER NOT NULL,  -- keys.id
    key                TEXT    NOT NULL,
    version_id         TEXT    NOT NULL,  -- the version of T
    newest_version_id  TEXT    NOT NULL,  -- the key's newest version, which holds its content
    known_by           TEXT    NOT NULL CHECK (known_by IN ('journal', 'etag')),
    why                TEXT    NOT NULL,
    PRIMARY KEY (plan_id, key_id)
) WITHOUT ROWID;

-- The rules compare ETags by their stored bytes: `etag_md5` is the 16
-- bytes of a single-part ETag (NULL for a multipart or non-hex one), read
-- without the hex text `etag` costs per row. The views that read
-- entry_history by column keep working as they are.
DROP VIEW entry_history;

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
       e.removed_rev                                          AS removed_rev,
       CASE WHEN typeof(e.etag) = 'blob' AND e.etag_parts IS NULL
            THEN e.etag END                                   AS etag_md5
FROM entries e JOIN keys k ON k.id = e.key_id;

-- plan_review lists them too, as action 'already' with status 'already'
-- and no id (no request is sent for them); matched_by says how they were
-- known and expected_latest names the version that already holds the
-- content (result_version_id stays NULL: no request made a version).
DROP VIEW plan_review;

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
JOIN plans p ON p.id = a.plan_id
UNION ALL
SELECT p.name, NULL, 'already', r.key, r.version_id,
       (SELECT h.last_modified FROM entry_history h
        WHERE h.key_id = r.key_id AND h.version_id = r.version_id
        ORDER BY h.seq LIMIT 1),
       NULL, NULL, r.why, 'already', NULL, NULL, NULL,
       r.newest_version_id, NULL, r.known_by
FROM already r
JOIN plans p ON p.id = r.plan_id;
