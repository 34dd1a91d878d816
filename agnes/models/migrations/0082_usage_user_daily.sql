-- Per-user daily uses: the rollup the 7- and 30-day windows are computed from (true distinct users
-- and active days without scanning every event of the month on each processing run). Filled by
-- refresh_daily with usage_item_daily; backfilled here from the uses still kept
-- (transcripts' events and the OTLP uses no transcript matched).
CREATE TABLE usage_user_daily (
    day           DATE NOT NULL,
    source        VARCHAR NOT NULL,
    item_type     VARCHAR NOT NULL,
    parent        VARCHAR NOT NULL,
    name          VARCHAR NOT NULL,
    parent_name   VARCHAR NOT NULL,
    user_id       VARCHAR NOT NULL,
    calls         BIGINT NOT NULL,
    errors        BIGINT NOT NULL,
    last_used_at  TIMESTAMP NOT NULL
);

INSERT INTO usage_user_daily
SELECT CAST(occurred_at AS DATE), source, item_type, parent, name, any_value(parent_name), user_id,
       count(*), count(*) FILTER (WHERE is_error), max(occurred_at)
FROM (
    SELECT user_id, occurred_at, source, item_type, parent, parent_name, name, is_error FROM usage_events
    UNION ALL
    SELECT user_id, occurred_at, source, item_type, parent, parent_name, name, is_error FROM usage_otel_only
) WHERE occurred_at IS NOT NULL
GROUP BY CAST(occurred_at AS DATE), source, item_type, parent, name, user_id;
