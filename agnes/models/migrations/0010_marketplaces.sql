-- Curated marketplaces: registry, synced plugins, sync history and analysts' subscriptions.
-- Timestamps are naive UTC. JSON columns hold the upstream entries verbatim.

CREATE TABLE marketplace_registry (
    id               VARCHAR PRIMARY KEY,          -- the slug; also the prefix of plugin resource ids
    name             VARCHAR NOT NULL,
    url              VARCHAR NOT NULL,             -- https://..., file://... or an absolute local path
    branch           VARCHAR,                      -- NULL = the remote's default branch (HEAD)
    token_env        VARCHAR,                      -- env-var NAME holding the access token (value in state/.env_overlay)
    description      VARCHAR NOT NULL DEFAULT '',
    curator_name     VARCHAR NOT NULL DEFAULT '',
    curator_email    VARCHAR NOT NULL DEFAULT '',
    registered_by    VARCHAR,
    registered_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at       TIMESTAMP NOT NULL DEFAULT current_timestamp,
    last_synced_at   TIMESTAMP,                    -- last successful sync
    last_commit_sha  VARCHAR,
    snapshot_dir     VARCHAR,                      -- served plugin trees, relative to the data dir
    last_error       VARCHAR,                      -- token-redacted error of the last failed sync (NULL after a success)
    last_error_at    TIMESTAMP
);

CREATE TABLE marketplace_plugins (
    marketplace_id      VARCHAR NOT NULL,
    name                VARCHAR NOT NULL,           -- the entry's name in the upstream marketplace.json
    manifest_name       VARCHAR NOT NULL,           -- the plugin's own plugin.json name (Claude Code links by it)
    description         VARCHAR NOT NULL DEFAULT '',
    version             VARCHAR,
    author_name         VARCHAR,
    homepage            VARCHAR,
    category            VARCHAR,
    source_kind         VARCHAR NOT NULL,           -- path | root | url | git-subdir | github | unsupported
    source_spec         JSON,
    skill_count         INTEGER NOT NULL DEFAULT 0,
    agent_count         INTEGER NOT NULL DEFAULT 0,
    command_count       INTEGER NOT NULL DEFAULT 0,
    raw                 JSON NOT NULL,
    available           BOOLEAN NOT NULL DEFAULT TRUE,
    unavailable_reason  VARCHAR,
    content_dir         VARCHAR,                    -- plugin tree relative to the data dir (NULL when unavailable)
    content_hash        VARCHAR,                    -- sha256 of the served files (relpath, mode, bytes)
    file_count          INTEGER NOT NULL DEFAULT 0,
    size_bytes          BIGINT NOT NULL DEFAULT 0,
    is_system           BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at          TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (marketplace_id, name)
);

CREATE TABLE marketplace_sync_history (
    id              VARCHAR PRIMARY KEY,
    marketplace_id  VARCHAR NOT NULL,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP NOT NULL,
    status          VARCHAR NOT NULL,               -- ok | failed
    commit_sha      VARCHAR,
    plugin_count    INTEGER,
    added           JSON,                           -- ["name", ...]
    removed         JSON,                           -- ["name", ...]
    changed         JSON,                           -- [{"name", "from", "to"}] version changes
    unavailable     JSON,                           -- [{"name", "reason"}]
    error           VARCHAR
);
CREATE INDEX marketplace_sync_history_mp ON marketplace_sync_history (marketplace_id);

-- A row means the analyst put the plugin in their stack. It is served only while a grant to
-- one of their groups also exists (granted ∩ subscribed).
CREATE TABLE user_plugin_subscriptions (
    user_id         VARCHAR NOT NULL,
    marketplace_id  VARCHAR NOT NULL,
    plugin_name     VARCHAR NOT NULL,
    subscribed_at   TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (user_id, marketplace_id, plugin_name)
);
