-- What a registry change replaced: the touched fields' previous values ({} for a creation), for
-- the Changes tab of /admin/activity. NULL on rows that are not registry changes.
ALTER TABLE audit_log ADD COLUMN params_before JSON;
