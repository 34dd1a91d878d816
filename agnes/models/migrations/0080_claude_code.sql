-- Claude Code across the fleet (issue 18): managed settings downloads, OpenTelemetry intake,
-- which plugin versions each Claude Code installation loaded.

-- Every managed-settings.json downloaded from /admin/claude-code (or its API), so the page can
-- show what changed since the previous download of the same group.
CREATE TABLE claude_code_settings_downloads (
    id              VARCHAR PRIMARY KEY,
    group_id        VARCHAR NOT NULL,
    strict          BOOLEAN NOT NULL,           -- strictKnownMarketplaces was included
    content         VARCHAR NOT NULL,           -- the file as downloaded (no secret is ever in it)
    sha256          VARCHAR NOT NULL,
    downloaded_by   VARCHAR,                    -- user id
    downloaded_at   TIMESTAMP NOT NULL
);
CREATE INDEX claude_code_settings_downloads_group ON claude_code_settings_downloads (group_id, downloaded_at);

-- OTLP log records and metric points from Claude Code, one row per event, attributed to the
-- token's owner (never the payload's user.email). ``event_key`` makes an exporter's retry of
-- the same batch a no-op; it is checked against the rows of the same time range, not through an
-- index (an ART index on random keys made each 100-row insert 7x slower, and slower still as the
-- table grew).
CREATE TABLE otel_events (
    event_key           VARCHAR NOT NULL,       -- sha256 of user, installation, session, name, sequence, time
    user_id             VARCHAR NOT NULL,
    session_id          VARCHAR,
    prompt_id           VARCHAR,
    event_name          VARCHAR NOT NULL,       -- skill_activated, tool_result, plugin_loaded, ... or metric.cost / metric.tokens
    occurred_at         TIMESTAMP NOT NULL,
    received_at         TIMESTAMP NOT NULL,
    installation        VARCHAR,                -- Claude Code's per-installation id (attribute user.id)
    host                VARCHAR,                -- resource host.name when the exporter sends it
    app_version         VARCHAR,                -- Claude Code version (service.version)
    skill_name          VARCHAR,
    invocation_trigger  VARCHAR,                -- claude-proactive, user-slash, ...
    tool_name           VARCHAR,
    tool_use_id         VARCHAR,
    success             BOOLEAN,
    duration_ms         DOUBLE,
    error               VARCHAR,
    plugin_name         VARCHAR,                -- as Claude Code names it (served name)
    plugin_version      VARCHAR,
    marketplace_name    VARCHAR,
    ref_marketplace     VARCHAR,                -- attribution: the served plugin's marketplace slug
    ref_plugin          VARCHAR,                -- and its name in that marketplace
    hook_event          VARCHAR,
    hook_failures       INTEGER,
    model               VARCHAR,
    status_code         VARCHAR,
    cost_usd            DOUBLE,
    tokens              BIGINT,
    token_type          VARCHAR,                -- input, output, cacheRead, cacheCreation
    attributes          JSON,
    source              VARCHAR NOT NULL DEFAULT 'otel'
);
CREATE INDEX otel_events_user_time ON otel_events (user_id, occurred_at);
CREATE INDEX otel_events_session ON otel_events (session_id);

-- The last plugin_loaded of each plugin per user and Claude Code installation: what that
-- Claude Code runs now. ``version_since`` is its first load at this version.
CREATE TABLE claude_code_plugin_loads (
    user_id             VARCHAR NOT NULL,
    installation        VARCHAR NOT NULL,
    marketplace_name    VARCHAR NOT NULL,
    plugin_name         VARCHAR NOT NULL,
    version             VARCHAR,
    host                VARCHAR,
    enabled_via         VARCHAR,
    version_since       TIMESTAMP NOT NULL,
    last_loaded_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, installation, marketplace_name, plugin_name)
);

-- When Agnes first served each version of a plugin ("behind since").
CREATE TABLE claude_code_served_versions (
    marketplace_id      VARCHAR NOT NULL,
    plugin_name         VARCHAR NOT NULL,
    version             VARCHAR NOT NULL,
    first_served_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (marketplace_id, plugin_name, version)
);
INSERT INTO claude_code_served_versions
    SELECT marketplace_id, name, coalesce(version, ''), updated_at FROM marketplace_plugins;
