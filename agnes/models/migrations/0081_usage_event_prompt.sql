-- One use, not two (issue 18): a transcript's use and Claude Code's OpenTelemetry event for the
-- same occurrence are matched on session, prompt and tool use id or skill name. Transcript lines
-- carry ``promptId`` (user lines; an assistant's tool use takes the prompt it answers) and each
-- tool use its ``id``; the processor (version 2) fills both, older rows keep NULL until reprocessed.
ALTER TABLE usage_events ADD COLUMN prompt_id VARCHAR;
ALTER TABLE usage_events ADD COLUMN tool_use_id VARCHAR;

-- The OTLP uses no transcript use matches, kept per session and rebuilt for the sessions a
-- processing run touches (their transcripts, or OTLP uses that arrived): the rollups read
-- usage_events UNION ALL this table instead of matching every OTLP event each time.
CREATE TABLE usage_otel_only (
    user_id        VARCHAR NOT NULL,
    session_id     VARCHAR,
    occurred_at    TIMESTAMP NOT NULL,
    source         VARCHAR NOT NULL,
    item_type      VARCHAR NOT NULL,
    parent         VARCHAR NOT NULL,
    parent_name    VARCHAR NOT NULL,
    name           VARCHAR NOT NULL,
    is_error       BOOLEAN NOT NULL
);
