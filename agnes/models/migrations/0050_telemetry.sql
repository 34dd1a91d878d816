-- Telemetry (issue 13): uploaded Claude Code transcripts, the usage processor's checkpoints,
-- usage events, per-file summaries and the popularity rollups. Timestamps are naive UTC.
-- Files live under <AGNES_DATA_DIR>/sessions/<path>; `path` is relative to that folder.

CREATE TABLE session_files (
    path          VARCHAR PRIMARY KEY,   -- <user_id>/<session_id>.jsonl or <user_id>/<session_id>/subagents/agent-<id>.jsonl
    user_id       VARCHAR NOT NULL,
    session_id    VARCHAR NOT NULL,      -- lower-case UUID
    kind          VARCHAR NOT NULL,      -- main | subagent
    size_bytes    BIGINT NOT NULL,       -- decompressed
    sha256        VARCHAR NOT NULL,      -- hex of the stored bytes
    uploaded_at   TIMESTAMP NOT NULL,    -- first upload
    updated_at    TIMESTAMP NOT NULL     -- last upload that changed the bytes
);
CREATE INDEX session_files_user ON session_files (user_id, session_id);

-- Sessions their owner marked private: nothing of them is kept, later uploads are refused (409).
CREATE TABLE private_sessions (
    user_id     VARCHAR NOT NULL,
    session_id  VARCHAR NOT NULL,
    marked_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, session_id)
);

-- The processor's checkpoint per file: done when sha256 and processor_version match the file.
CREATE TABLE usage_file_state (
    path               VARCHAR PRIMARY KEY,
    sha256             VARCHAR NOT NULL,   -- the bytes last processed (or last failed on)
    processor_version  INTEGER NOT NULL,
    processed_at       TIMESTAMP NOT NULL,
    lines              INTEGER NOT NULL DEFAULT 0,
    bad_lines          INTEGER NOT NULL DEFAULT 0,
    events             INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,  -- failures in a row for these bytes
    last_error         VARCHAR,                     -- NULL after a success
    parked             BOOLEAN NOT NULL DEFAULT FALSE  -- failed 3 times: skipped until the bytes change
);

CREATE TABLE usage_events (
    path               VARCHAR NOT NULL,   -- the session file it came from
    user_id            VARCHAR NOT NULL,
    session_id         VARCHAR NOT NULL,
    line_no            INTEGER NOT NULL,
    event_uuid         VARCHAR,            -- the transcript line's uuid
    occurred_at        TIMESTAMP,
    event_type         VARCHAR NOT NULL,   -- tool_use | skill | subagent | mcp_call | slash_command
    item_type          VARCHAR NOT NULL,   -- tool | skill | agent | mcp | command
    tool_name          VARCHAR NOT NULL,   -- Bash, Skill, Task, mcp__x__y; '' for commands
    name               VARCHAR NOT NULL,   -- as used: Bash, plugin:skill, Explore, /plugin:cmd
    item_name          VARCHAR NOT NULL,   -- name without its plugin prefix (and without the slash)
    source             VARCHAR NOT NULL,   -- builtin | curated | flea | unattributed
    parent             VARCHAR NOT NULL,   -- curated <marketplace>/<plugin>, flea entity id, else ''
    parent_name        VARCHAR NOT NULL,   -- the plugin's name ('' when none)
    prefix             VARCHAR NOT NULL,   -- the `<plugin>:` prefix as written ('' when none), kept for re-attribution
    is_error           BOOLEAN NOT NULL,
    is_sidechain       BOOLEAN NOT NULL,
    model              VARCHAR NOT NULL,
    processor_version  INTEGER NOT NULL
);

CREATE TABLE usage_session_summary (
    path                   VARCHAR PRIMARY KEY,
    user_id                VARCHAR NOT NULL,
    session_id             VARCHAR NOT NULL,
    kind                   VARCHAR NOT NULL,   -- main | subagent
    started_at             TIMESTAMP,
    ended_at               TIMESTAMP,
    active_seconds         DOUBLE NOT NULL,    -- gaps of at most 10 minutes between lines
    wall_seconds           DOUBLE NOT NULL,
    lines                  INTEGER NOT NULL,
    bad_lines              INTEGER NOT NULL,
    user_messages          INTEGER NOT NULL,
    assistant_messages     INTEGER NOT NULL,
    tool_calls             INTEGER NOT NULL,
    tool_errors            INTEGER NOT NULL,
    skill_calls            INTEGER NOT NULL,
    subagent_calls         INTEGER NOT NULL,
    mcp_calls              INTEGER NOT NULL,
    slash_commands         INTEGER NOT NULL,
    primary_model          VARCHAR NOT NULL,
    input_tokens           BIGINT NOT NULL,
    output_tokens          BIGINT NOT NULL,
    cache_read_tokens      BIGINT NOT NULL,
    cache_creation_tokens  BIGINT NOT NULL,
    cc_version             VARCHAR NOT NULL,   -- Claude Code version(s) seen, ';'-separated
    processor_version      INTEGER NOT NULL,
    processed_at           TIMESTAMP NOT NULL
);

-- Per day and item: calls, errors, distinct users. Plugin rows (item_type 'plugin', name = the
-- plugin's name) union the users of their items.
CREATE TABLE usage_item_daily (
    day        DATE NOT NULL,
    source     VARCHAR NOT NULL,
    item_type  VARCHAR NOT NULL,   -- tool | mcp | skill | agent | command | plugin
    parent     VARCHAR NOT NULL,
    name       VARCHAR NOT NULL,
    calls      BIGINT NOT NULL,
    errors     BIGINT NOT NULL,
    users      BIGINT NOT NULL,
    PRIMARY KEY (day, source, item_type, parent, name)
);

-- True distinct users over the last 7 and 30 days (period 'last_7d' | 'last_30d').
CREATE TABLE usage_item_window (
    period        VARCHAR NOT NULL,
    source        VARCHAR NOT NULL,
    item_type     VARCHAR NOT NULL,
    parent        VARCHAR NOT NULL,
    name          VARCHAR NOT NULL,
    calls         BIGINT NOT NULL,
    errors        BIGINT NOT NULL,
    users         BIGINT NOT NULL,
    active_days   BIGINT NOT NULL,
    last_used_at  TIMESTAMP,
    refreshed_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (period, source, item_type, parent, name)
);

-- Small facts of the processor (key 'windows_refreshed_at': when usage_item_window was rebuilt).
CREATE TABLE telemetry_meta (
    key         VARCHAR PRIMARY KEY,
    value       VARCHAR NOT NULL,
    updated_at  TIMESTAMP NOT NULL
);
