-- s3rewind catalog, part 3: what `apply` needs.

-- apply --verify and a resumed apply ask "which versions does this plan
-- touch on this key?"; a key's actions are not always adjacent (plan sql).
CREATE INDEX actions_by_key ON actions (plan_id, key_id);
