-- Data distribution: the table registry, sync state and history, view ownership, metrics.
-- Timestamps are naive UTC. JSON documents are stored as VARCHAR (parsed in agnes/models/tables.py).

-- One row per registered table. ``id`` is also the view name and the parquet file name.
CREATE TABLE table_registry (
    id            VARCHAR PRIMARY KEY,
    name          VARCHAR NOT NULL,
    description   VARCHAR NOT NULL DEFAULT '',
    source_type   VARCHAR NOT NULL,              -- connector type (csv, parquet, json, sql, postgres)
    source_name   VARCHAR NOT NULL,              -- extracts/<source_name>/ (several tables may share one)
    source_spec   VARCHAR NOT NULL DEFAULT '{}', -- connector options (JSON); never a secret, only env-var names
    query_mode    VARCHAR NOT NULL DEFAULT 'local',  -- local | materialized | remote
    schedule      VARCHAR,                       -- 'every 15m', 'daily 03:00', cron; NULL = on demand only
    primary_key   VARCHAR,
    owner_id      VARCHAR,
    created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- The latest sync outcome per table (the manifest reads hash/size/rows from here).
CREATE TABLE sync_state (
    table_id       VARCHAR PRIMARY KEY,
    status         VARCHAR NOT NULL,             -- ok | failed
    last_attempt   TIMESTAMP,                    -- start of the latest sync (schedules count from here)
    last_success   TIMESTAMP,                    -- end of the latest successful sync (the manifest's 'updated')
    rows           BIGINT,
    size_bytes     BIGINT,
    hash           VARCHAR,                      -- MD5 hex of the published parquet ('' for remote tables)
    file_mtime_ns  BIGINT,                       -- mtime of the parquet the hash belongs to
    columns        VARCHAR,                      -- JSON [[name, type], ...]
    error          VARCHAR                       -- last failure (kept after a later success is cleared)
);

CREATE TABLE sync_history (
    id           VARCHAR PRIMARY KEY,
    table_id     VARCHAR NOT NULL,
    started_at   TIMESTAMP NOT NULL,
    finished_at  TIMESTAMP NOT NULL,
    status       VARCHAR NOT NULL,               -- ok | failed
    rows         BIGINT,
    size_bytes   BIGINT,
    duration_ms  DOUBLE,
    error        VARCHAR,
    triggered_by VARCHAR                         -- user id, 'schedule' or NULL
);
CREATE INDEX sync_history_table ON sync_history (table_id, started_at);

-- The first source to claim a view name owns it; another source declaring it is refused.
CREATE TABLE view_ownership (
    view_name     VARCHAR PRIMARY KEY,
    source_name   VARCHAR NOT NULL,
    registered_at TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- Business metrics (id = '<category>/<name>'), imported from YAML.
CREATE TABLE metric_definitions (
    id            VARCHAR PRIMARY KEY,
    name          VARCHAR NOT NULL,
    category      VARCHAR NOT NULL,
    display_name  VARCHAR NOT NULL DEFAULT '',
    description   VARCHAR NOT NULL DEFAULT '',
    type          VARCHAR NOT NULL DEFAULT '',
    unit          VARCHAR NOT NULL DEFAULT '',
    grain         VARCHAR NOT NULL DEFAULT '',
    table_name    VARCHAR NOT NULL DEFAULT '',
    expression    VARCHAR NOT NULL DEFAULT '',
    time_column   VARCHAR NOT NULL DEFAULT '',
    sql           VARCHAR NOT NULL DEFAULT '',
    details       VARCHAR NOT NULL DEFAULT '{}', -- JSON: dimensions, filters, synonyms, notes, sql_variants, ...
    source        VARCHAR NOT NULL DEFAULT 'yaml',
    updated_at    TIMESTAMP NOT NULL DEFAULT current_timestamp
);
