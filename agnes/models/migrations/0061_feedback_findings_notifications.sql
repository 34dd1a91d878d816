-- Feedback reports sent with `agnes report`, the failure scan's findings in session transcripts, and
-- the notifications admins receive.
-- Timestamps are naive UTC. JSON documents are stored as VARCHAR (parsed in agnes/models/).

CREATE TABLE feedback_reports (
    id                 VARCHAR PRIMARY KEY,
    created_at         TIMESTAMP NOT NULL DEFAULT current_timestamp,
    reporter_id        VARCHAR NOT NULL,
    message            VARCHAR NOT NULL,
    session_id         VARCHAR,                       -- the Claude Code session the report came from
    excerpt            VARCHAR,                       -- JSON [turn, ...], redacted; NULL when none or purged
    excerpt_bytes      INTEGER NOT NULL DEFAULT 0,    -- size of the excerpt as received
    excerpt_purged_at  TIMESTAMP,
    excerpt_purged_by  VARCHAR,
    environment        VARCHAR NOT NULL DEFAULT '{}', -- JSON {agnes, claude_code, os, python}
    ack_preview        VARCHAR,                       -- the preview the reporter saw and confirmed
    fingerprint        VARCHAR NOT NULL,              -- message and last error, normalised: groups duplicates
    status             VARCHAR NOT NULL DEFAULT 'open',  -- open | triaged | resolved | wontfix
    assignee           VARCHAR,                       -- user id
    tags               VARCHAR NOT NULL DEFAULT '[]', -- JSON ["tag", ...]
    resolution         VARCHAR,
    resolved_at        TIMESTAMP,
    resolved_by        VARCHAR,
    updated_at         TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE INDEX feedback_reports_created ON feedback_reports (created_at);
CREATE INDEX feedback_reports_reporter ON feedback_reports (reporter_id);
CREATE INDEX feedback_reports_fingerprint ON feedback_reports (fingerprint);

-- What the failure scan found in one transcript file (a rescan replaces the file's rows).
CREATE TABLE session_findings (
    id            VARCHAR PRIMARY KEY,
    user_id       VARCHAR NOT NULL,
    session_id    VARCHAR NOT NULL,
    session_file  VARCHAR NOT NULL,   -- session_files.path
    finding_type  VARCHAR NOT NULL,   -- tool_error | permission_denied | user_rejection | loop | interrupted | abrupt_end
    turn_index    INTEGER NOT NULL,   -- 1-based line of the transcript
    severity      VARCHAR NOT NULL,   -- error | warning | info
    excerpt       VARCHAR NOT NULL,   -- at most 300 characters, redacted
    detected_at   TIMESTAMP NOT NULL
);
CREATE INDEX session_findings_file ON session_findings (session_file);
CREATE INDEX session_findings_session ON session_findings (user_id, session_id);

-- The failure scan's checkpoint per file: done while sha256 and scanner_version match, until
-- recheck_after (a transcript ending on the user's message is judged again once it is an hour old).
CREATE TABLE finding_scan_state (
    path             VARCHAR PRIMARY KEY,
    sha256           VARCHAR NOT NULL,
    scanner_version  INTEGER NOT NULL,
    scanned_at       TIMESTAMP NOT NULL,
    findings         INTEGER NOT NULL DEFAULT 0,
    recheck_after    TIMESTAMP
);

-- Notifications to admins (new feedback, health turning red), delivered by run_notify.
CREATE TABLE notification_events (
    id          VARCHAR PRIMARY KEY,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    kind        VARCHAR NOT NULL,      -- feedback | health
    subject     VARCHAR NOT NULL,
    body        VARCHAR NOT NULL,
    link        VARCHAR                -- path on this server (/admin/feedback/<id>)
);
CREATE INDEX notification_events_created ON notification_events (created_at);

-- Per recipient (an admin's user id, or 'webhook'): what was delivered and when it was last tried.
CREATE TABLE notification_deliveries (
    recipient      VARCHAR PRIMARY KEY,
    last_event_at  TIMESTAMP,          -- the newest event delivered
    last_sent_at   TIMESTAMP,          -- the last attempt (at most one message per 5 minutes)
    sent           INTEGER NOT NULL DEFAULT 0,
    last_error     VARCHAR,            -- NULL after a success
    last_error_at  TIMESTAMP
);
