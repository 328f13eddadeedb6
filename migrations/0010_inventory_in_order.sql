-- s3rewind catalog, part 10: a report in key order goes straight into
-- `keys` and `entries`.
--
-- Reports list keys in order (s3sim's do, and AWS's in practice), so each
-- file's rows are written as a listing's would be and committed with the
-- file: no staging, no sort, one pass. A key's entries are written once
-- all are in; the rows of a file's last key wait in `inventory_rows` for
-- the next file, which may hold more of them. (The last key written is the
-- one with the highest id.) Rows found out of key order switch the ingest,
-- once, to the staged path of part 9: what was written is dropped, and
-- every file is staged, then sorted.

CREATE TABLE inventory_ingest (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    sorted  INTEGER NOT NULL DEFAULT 0  -- 1: rows staged in inventory_rows, sorted when all are in
);

-- An ingest started by an earlier version staged its rows.
INSERT INTO inventory_ingest (id, sorted)
SELECT 1, 1 WHERE EXISTS (SELECT 1 FROM inventory_files);
