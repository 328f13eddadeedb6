-- s3rewind catalog, part 1: what `scan` records.
--
-- Storage is normalised to keep a row small (see docs/catalog.md): every key is
-- stored once in `keys`, every version and delete marker is one row of `entries`,
-- clustered by (key_id, seq). People query the views `objects` and
-- `delete_markers`, which expose readable columns.

-- The location this catalog describes. A catalog holds one location; `scan
-- --fresh` starts a new catalog.
CREATE TABLE scans (
    id           INTEGER PRIMARY KEY,
    bucket       TEXT    NOT NULL,
    base_prefix  TEXT    NOT NULL,            -- '' for the whole bucket
    endpoint     TEXT,                        -- NULL: AWS's own endpoint
    region       TEXT,
    versioning   TEXT    NOT NULL,            -- 'Enabled', 'Suspended' or 'Never enabled'
    started_at   TEXT    NOT NULL,            -- RFC 3339, UTC
    finished_at  TEXT,                        -- NULL until every prefix is done
    runs         INTEGER NOT NULL DEFAULT 1    -- scan invocations (1 + resumes)
);

-- One row per listed prefix: the checkpoint a resumed scan continues from.
-- A page's entries and the cursor after it are committed in one transaction.
CREATE TABLE cursors (
    prefix                  TEXT    PRIMARY KEY,  -- relative to scans.base_prefix
    next_key_marker         TEXT,                 -- KeyMarker for the next request (decoded)
    next_version_id_marker  TEXT,                 -- VersionIdMarker for the next request
    last_key_id             INTEGER,              -- keys.id of next_key_marker, to continue a key split across pages
    last_seq                INTEGER,              -- entries.seq of the last entry written for that key
    pages                   INTEGER NOT NULL DEFAULT 0,
    rows                    INTEGER NOT NULL DEFAULT 0,  -- versions + delete markers written
    delete_markers          INTEGER NOT NULL DEFAULT 0,
    done                    INTEGER NOT NULL DEFAULT 0,  -- 1 once S3 said IsTruncated=false
    updated_at              TEXT
);

-- Every key, once. ids are handed out in the order keys are first listed, so
-- `entries` is appended at the end of its b-tree (no random inserts while scanning).
CREATE TABLE keys (
    id   INTEGER PRIMARY KEY,
    key  TEXT    NOT NULL            -- the full S3 key, decoded
);

-- Every object version and delete marker.
CREATE TABLE entries (
    key_id         INTEGER NOT NULL,  -- keys.id
    seq            INTEGER NOT NULL,  -- position among the key's entries, newest first (0 = listed first)
    version_id     TEXT    NOT NULL,  -- may be the literal 'null'
    is_marker      INTEGER NOT NULL,  -- 1: delete marker, 0: object version
    is_latest      INTEGER NOT NULL,  -- IsLatest as S3 reported it at scan time
    mtime          INTEGER NOT NULL,  -- LastModified, seconds since 1970-01-01 UTC
    size           INTEGER,           -- bytes; NULL for delete markers
    etag           BLOB,              -- 16-byte MD5 when the ETag is hex, else the ETag text
    etag_parts     INTEGER,           -- N of a multipart ETag "<md5>-N", else NULL
    storage_class  TEXT,              -- NULL means STANDARD (and for delete markers)
    PRIMARY KEY (key_id, seq)
) WITHOUT ROWID;

-- Readable views. last_modified is ISO 8601 in UTC with a 'Z' and no fraction,
-- so it compares correctly as text against '2024-05-01' or '2024-05-01T00:00:00Z'.
CREATE VIEW objects AS
SELECT k.key                                                  AS key,
       e.version_id                                           AS version_id,
       e.is_latest                                            AS is_latest,
       strftime('%Y-%m-%dT%H:%M:%SZ', e.mtime, 'unixepoch')   AS last_modified,
       e.size                                                 AS size,
       CASE WHEN typeof(e.etag) = 'blob'
            THEN lower(hex(e.etag)) || coalesce('-' || e.etag_parts, '')
            ELSE e.etag END                                   AS etag,
       coalesce(e.storage_class, 'STANDARD')                  AS storage_class,
       e.mtime                                                AS last_modified_unix,
       e.seq                                                  AS seq,
       e.key_id                                               AS key_id
FROM entries e JOIN keys k ON k.id = e.key_id
WHERE e.is_marker = 0;

CREATE VIEW delete_markers AS
SELECT k.key                                                  AS key,
       e.version_id                                           AS version_id,
       e.is_latest                                            AS is_latest,
       strftime('%Y-%m-%dT%H:%M:%SZ', e.mtime, 'unixepoch')   AS last_modified,
       e.mtime                                                AS last_modified_unix,
       e.seq                                                  AS seq,
       e.key_id                                               AS key_id
FROM entries e JOIN keys k ON k.id = e.key_id
WHERE e.is_marker = 1;
