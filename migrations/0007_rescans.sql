-- s3rewind catalog, part 7: keys listed again after the scan.
--
-- `scan --keys-of PLAN` replaces the entries of a plan's keys with what S3
-- lists now. Plans made before refer to entries by position: the scan's
-- revision moves on, and apply, verify and undo refuse a plan made at an
-- earlier revision (make it again).
ALTER TABLE scans ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN rescanned_at TEXT;     -- when keys were last listed again (RFC 3339, UTC)
ALTER TABLE plans ADD COLUMN scan_revision INTEGER NOT NULL DEFAULT 0;
