-- Access administration (issue 12): where grants and subscriptions came from, system plugins
-- kept by resource id, Google Workspace group links and sync runs, sign-in methods per user.

-- 'manual' (an admin, the analyst, the API) or 'system_fanout' (marking a plugin system, or a
-- user or group created while it was). Unmarking with "also revoke what the fan-out added"
-- deletes only 'system_fanout' rows, so rows that existed before the mark survive.
ALTER TABLE resource_grants ADD COLUMN origin VARCHAR NOT NULL DEFAULT 'manual';
ALTER TABLE user_plugin_subscriptions ADD COLUMN origin VARCHAR NOT NULL DEFAULT 'manual';

-- The system mark, by resource id. ``marketplace_plugins.is_system`` mirrors it for the plugins a
-- sync found; a plugin missing upstream for a sync keeps its row here (``missing_since``) and
-- comes back marked.
CREATE TABLE system_plugins (
    marketplace_id  VARCHAR NOT NULL,
    plugin_name     VARCHAR NOT NULL,
    marked_at       TIMESTAMP NOT NULL DEFAULT current_timestamp,
    marked_by       VARCHAR,
    missing_since   TIMESTAMP,                 -- the first sync that did not find it upstream
    PRIMARY KEY (marketplace_id, plugin_name)
);
INSERT INTO system_plugins (marketplace_id, plugin_name)
    SELECT marketplace_id, name FROM marketplace_plugins WHERE is_system;

ALTER TABLE marketplace_sync_history ADD COLUMN warnings JSON;  -- ["text", ...]

-- The Workspace group a group mirrors (lower-cased email; NULL: not linked). Linked groups are
-- renamed and deleted only through Google (409 google_managed).
ALTER TABLE user_groups ADD COLUMN google_email VARCHAR;

-- Sign-in methods a user has used (email_link, google), for the users list filter.
ALTER TABLE users ADD COLUMN sign_in_methods VARCHAR[] NOT NULL DEFAULT [];
UPDATE users SET sign_in_methods = m.methods
FROM (
    SELECT user_id, list(DISTINCT json_extract_string(params, '$.method') ORDER BY json_extract_string(params, '$.method')) AS methods
    FROM audit_log
    WHERE action = 'auth.sign_in' AND user_id IS NOT NULL AND json_extract_string(params, '$.method') IS NOT NULL
    GROUP BY user_id
) m
WHERE users.id = m.user_id;

-- Google Workspace group syncs: the nightly run, "Sync now", and one user's sync at sign-in.
CREATE TABLE google_sync_runs (
    id           VARCHAR PRIMARY KEY,
    scope        VARCHAR NOT NULL,             -- all | user
    user_id      VARCHAR,                      -- the user of a 'user' run
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP NOT NULL,
    status       VARCHAR NOT NULL,             -- ok | failed | braked
    added        INTEGER NOT NULL DEFAULT 0,
    removed      INTEGER NOT NULL DEFAULT 0,
    groups       INTEGER NOT NULL DEFAULT 0,   -- Workspace groups matched
    message      VARCHAR                       -- the error, or why the brake held
);
CREATE INDEX google_sync_runs_started ON google_sync_runs (started_at);
