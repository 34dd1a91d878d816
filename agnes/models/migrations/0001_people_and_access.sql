-- People, sign-in, access control and the audit log (foundation).
-- Timestamps are naive UTC (the instance runs with TimeZone=UTC).

CREATE TABLE users (
    id              VARCHAR PRIMARY KEY,
    email           VARCHAR NOT NULL UNIQUE,   -- stored lower-cased
    name            VARCHAR NOT NULL DEFAULT '',
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    last_login_at   TIMESTAMP,
    deactivated_at  TIMESTAMP
);

CREATE TABLE user_groups (
    id            VARCHAR PRIMARY KEY,
    name          VARCHAR NOT NULL UNIQUE,
    description   VARCHAR NOT NULL DEFAULT '',
    is_system     BOOLEAN NOT NULL DEFAULT FALSE,
    member_count  INTEGER,                      -- written by run_recompute_group_member_counts
    counted_at    TIMESTAMP,
    created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
    created_by    VARCHAR
);

-- Everyone's membership is implicit (every active user); rows here are explicit memberships.
-- One row per (user, group, source): each writer (admin, google_sync, system_seed) owns its rows.
CREATE TABLE user_group_members (
    user_id   VARCHAR NOT NULL,
    group_id  VARCHAR NOT NULL,
    source    VARCHAR NOT NULL,
    added_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    added_by  VARCHAR,
    PRIMARY KEY (user_id, group_id, source)
);

CREATE TABLE resource_grants (
    id             VARCHAR PRIMARY KEY,
    group_id       VARCHAR NOT NULL,
    resource_type  VARCHAR NOT NULL,
    resource_id    VARCHAR NOT NULL,
    assigned_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
    assigned_by    VARCHAR,
    UNIQUE (group_id, resource_type, resource_id)
);

CREATE TABLE personal_access_tokens (
    id            VARCHAR PRIMARY KEY,
    user_id       VARCHAR NOT NULL,
    name          VARCHAR NOT NULL,
    token_hash    VARCHAR NOT NULL UNIQUE,     -- sha256 hex of the whole token
    prefix        VARCHAR NOT NULL,            -- first characters, for recognising a token
    created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
    expires_at    TIMESTAMP,                   -- NULL = never
    last_used_at  TIMESTAMP,
    last_used_ip  VARCHAR,
    revoked_at    TIMESTAMP
);

-- Single-use marker for emailed sign-in links (the link itself is itsdangerous-signed).
CREATE TABLE magic_links (
    nonce       VARCHAR PRIMARY KEY,
    user_id     VARCHAR NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    used_at     TIMESTAMP
);

CREATE TABLE audit_log (
    id              VARCHAR PRIMARY KEY,
    timestamp       TIMESTAMP NOT NULL DEFAULT current_timestamp,
    user_id         VARCHAR,
    action          VARCHAR NOT NULL,
    resource        VARCHAR,
    params          JSON,
    result          VARCHAR,
    duration_ms     DOUBLE,
    client_ip       VARCHAR,
    client_kind     VARCHAR,                   -- web | cli | job | system
    correlation_id  VARCHAR
);
CREATE INDEX audit_log_timestamp ON audit_log (timestamp);

INSERT INTO user_groups (id, name, description, is_system, created_by) VALUES
    ('admin', 'Admin', 'Administrators: pass every app-level authorization check.', TRUE, 'system:seed'),
    ('everyone', 'Everyone', 'Every user, automatically.', TRUE, 'system:seed');
