-- The flea market (issue 11): skills, agents, commands and plugins analysts publish themselves,
-- reviewed before anyone's Claude Code receives them. Timestamps are naive UTC.
-- Files live under <AGNES_DATA_DIR>/flea/store/<entity_id>/v<number>/ and never change once written,
-- so approving and rolling back are one row update (flea_entities.served_version).

-- Each publisher's handle, chosen once (from the e-mail's local part, made unique) and kept:
-- served plugins are named <name>-by-<handle>, so a changed e-mail never renames them.
CREATE TABLE flea_handles (
    user_id     VARCHAR PRIMARY KEY,
    handle      VARCHAR NOT NULL UNIQUE,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE flea_entities (
    id              VARCHAR PRIMARY KEY,
    owner_id        VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,          -- skill | agent | command | plugin
    name            VARCHAR NOT NULL,          -- ^[a-z][a-z0-9-]{0,63}$, unique per owner
    category        VARCHAR NOT NULL,
    description     VARCHAR NOT NULL DEFAULT '',
    state           VARCHAR NOT NULL DEFAULT 'active',  -- active | archived
    served_version  INTEGER,                   -- the approved version installers get; NULL: none yet
    created_at      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    updated_at      TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE UNIQUE INDEX flea_entities_owner_name ON flea_entities (owner_id, name);

CREATE TABLE flea_versions (
    id            VARCHAR PRIMARY KEY,
    entity_id     VARCHAR NOT NULL,
    number        INTEGER NOT NULL,            -- 1, 2, ... per entity
    sha256        VARCHAR NOT NULL,            -- hex over the sorted (path, bytes) of the stored files
    size_bytes    BIGINT NOT NULL,
    file_count    INTEGER NOT NULL,
    status        VARCHAR NOT NULL,            -- in_review | approved | blocked | review_error
    note          VARCHAR NOT NULL DEFAULT '', -- why it waits or failed ("no reviewer", the error)
    findings      VARCHAR NOT NULL DEFAULT '[]', -- JSON [{file, line, rule, severity, message, source}]
    verdict       VARCHAR,                     -- JSON of the reviewer's structured answer
    decision      VARCHAR,                     -- approved | rejected: an administrator decided (never overridden)
    decided_by    VARCHAR,
    decided_at    TIMESTAMP,
    reason        VARCHAR,                     -- the administrator's reason for a rejection (the owner sees it)
    uploaded_by   VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
    reviewed_at   TIMESTAMP,
    files_deleted_at TIMESTAMP                 -- a blocked bundle's files are deleted after 30 days
);
CREATE UNIQUE INDEX flea_versions_number ON flea_versions (entity_id, number);
CREATE INDEX flea_versions_status ON flea_versions (status, created_at);
CREATE INDEX flea_versions_uploader ON flea_versions (uploaded_by, created_at);

CREATE TABLE flea_installs (
    entity_id   VARCHAR NOT NULL,
    user_id     VARCHAR NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (entity_id, user_id)
);
CREATE INDEX flea_installs_user ON flea_installs (user_id);
