-- Keys by name, for joins on `key` (plan sql, a person's review queries).
-- Not in migrations/: a catalog nobody joins that way stays a third smaller.
CREATE INDEX IF NOT EXISTS keys_by_key ON keys (key);
