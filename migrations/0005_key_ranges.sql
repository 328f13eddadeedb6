-- s3rewind catalog, part 5: key ranges. A prefix's listing may be cut into
-- ranges (after, upto] of keys, listed at the same time, each resuming from
-- its own cursor; the ranges of a prefix always cover it exactly.

CREATE TABLE ranges (
    id                      INTEGER PRIMARY KEY,
    prefix                  TEXT    NOT NULL,  -- the listing prefix, relative to scans.base_prefix
    after                   TEXT,              -- its keys sort after this full key; NULL: from the prefix's start
    upto                    TEXT,              -- ... and at or before this one; NULL: to the prefix's end
    share                   REAL    NOT NULL DEFAULT 1,  -- its estimated part of the location's key space (progress)
    split_from              INTEGER,           -- ranges.id it was cut from; NULL for a prefix's first range
    next_key_marker         TEXT,              -- KeyMarker of the next request (decoded)
    next_version_id_marker  TEXT,              -- VersionIdMarker of the next request
    last_key_id             INTEGER,           -- keys.id of next_key_marker, to continue a key split across pages
    last_seq                INTEGER,           -- entries.seq of the last entry written for that key
    pages                   INTEGER NOT NULL DEFAULT 0,
    rows                    INTEGER NOT NULL DEFAULT 0,  -- versions + delete markers written
    delete_markers          INTEGER NOT NULL DEFAULT 0,
    done                    INTEGER NOT NULL DEFAULT 0,  -- 1 once its last key is listed
    updated_at              TEXT
);

INSERT INTO ranges (prefix, next_key_marker, next_version_id_marker, last_key_id, last_seq,
                    pages, rows, delete_markers, done, updated_at)
SELECT prefix, next_key_marker, next_version_id_marker, last_key_id, last_seq,
       pages, rows, delete_markers, done, updated_at
FROM cursors;

DROP TABLE cursors;

-- One row per listed prefix, summed over its ranges.
CREATE VIEW cursors AS
SELECT prefix,
       count(*)            AS ranges,
       sum(done)           AS ranges_done,
       sum(pages)          AS pages,
       sum(rows)           AS rows,
       sum(delete_markers) AS delete_markers,
       min(done)           AS done,
       max(updated_at)     AS updated_at
FROM ranges
GROUP BY prefix;

-- 'I/N' when the catalog holds part I (0-based) of a location cut into N
-- parts (`scan --shard I/N --bounds FILE`); NULL for all of it.
ALTER TABLE scans ADD COLUMN shard TEXT;
