-- s3rewind catalog, part 9: catalogs built from an S3 Inventory report.
--
-- `scan --inventory MANIFEST` reads the report's data files into
-- `inventory_rows`, each file committed with its `inventory_files` row
-- marked done, so a killed ingest resumes at the first unfinished file
-- (rows of unfinished files are dropped first). When every file is in,
-- the rows become `keys` and `entries` in one transaction, ordered as a
-- listing would give them, and `inventory_rows` is emptied.

CREATE TABLE inventory_files (
    id      INTEGER PRIMARY KEY,   -- its place in the manifest (0-based)
    key     TEXT    NOT NULL,      -- as the manifest names it
    md5     TEXT    NOT NULL,
    rows    INTEGER NOT NULL DEFAULT 0,
    done    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE inventory_rows (
    file           INTEGER NOT NULL,  -- inventory_files.id
    key            TEXT    NOT NULL,
    version_id     TEXT    NOT NULL,
    is_marker      INTEGER NOT NULL,
    is_latest      INTEGER NOT NULL,
    mtime_ms       INTEGER NOT NULL,
    size           INTEGER,
    etag           BLOB,
    etag_parts     INTEGER,
    storage_class  TEXT
);

-- Where the catalog's entries under each prefix (relative to the scan's
-- base; '' for all of it) came from, and as of when: a report, of its
-- creationTimestamp, or a listing, of its time. A prefix listed again
-- (`scan --rescan PREFIX`) gets its own row, which wins over the report's
-- for the keys under it.
CREATE TABLE sources (
    prefix    TEXT PRIMARY KEY,
    kind      TEXT NOT NULL CHECK (kind IN ('inventory', 'listing')),
    as_of     TEXT NOT NULL,     -- RFC 3339, UTC
    manifest  TEXT               -- the report's manifest, for 'inventory'
);
