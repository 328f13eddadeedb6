-- The rows of a person's `plan sql` query (the CTE `u` before this), each
-- resolved against the catalog: the key's id, the named entry, and the
-- key's newest entry when it was scanned. Rows that name no key or no
-- version of it come through with NULLs, for plan to refuse by row number.
-- {why} is the reason column: the query's own, or a default.
SELECT u.action                                        AS action,
       u.key                                           AS key,
       k.id                                            AS key_id,
       u.version_id                                    AS version_id,
       e.seq                                           AS seq,
       e.is_marker                                     AS is_marker,
       e.size                                          AS size,
       CASE WHEN e.is_marker = 0 THEN coalesce(e.storage_class, 'STANDARD') END AS storage_class,
       {why}                                           AS why,
       (SELECT l.version_id FROM entries l WHERE l.key_id = k.id AND l.seq = 0) AS expected_latest
FROM u
LEFT JOIN keys k ON k.key = u.key
LEFT JOIN entries e ON e.key_id = k.id AND e.version_id = u.version_id
