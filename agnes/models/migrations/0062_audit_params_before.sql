-- What a registry change replaced: the touched fields' previous values ({} for a creation), for
-- the Changes tab of /admin/activity. NULL on rows that are not registry changes.
ALTER TABLE audit_log ADD COLUMN params_before JSON;

-- A successful table sync's previous successful row count (NULL: the table's first), written with
-- the sync, so the Changes tab lists row-count changes without a window over the whole history.
ALTER TABLE sync_history ADD COLUMN previous_rows BIGINT;
UPDATE sync_history SET previous_rows = p.prev FROM (
    SELECT id, lag(rows) OVER (PARTITION BY table_id ORDER BY finished_at, id) AS prev
    FROM sync_history WHERE status = 'ok'
) p WHERE sync_history.id = p.id;
