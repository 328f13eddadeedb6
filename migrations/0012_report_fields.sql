-- s3rewind catalog, part 12: what a report could not say.
--
-- An inventory configuration chooses its fields; Size and ETag are
-- optional. A report without one is refused unless the person says
-- `scan --inventory … --allow-missing FIELD`, and then the catalog keeps
-- which fields the report lacked, for every command that reads it to say
-- what is lost (no ETag: copies are not conditioned on the key's ETag; no
-- Size: large copies are not recognised). A prefix listed again since
-- (`--rescan`) gets a `listing` row of its own, which lacks nothing.
ALTER TABLE sources ADD COLUMN missing TEXT;  -- the fields the report lacked, comma-separated ('ETag,Size'); NULL: none

-- A report gives LastModifiedDate to the second, and no order among the
-- versions of a key written in the same second. The keys of the report
-- with two entries (other than the latest) in one second wait here, once
-- their rows are in, to be listed with ListObjectVersions, whose order is
-- S3's; the ingest is finished when none is left.
CREATE TABLE inventory_ties (
    key_id  INTEGER PRIMARY KEY   -- keys.id
);
