-- A sync that succeeded with something to say (issue 15): a CSV that parsed to 0 rows from a
-- non-empty file. Cleared by the next sync without one.
ALTER TABLE sync_state ADD COLUMN warning VARCHAR;    -- NULL when the last successful sync had nothing to say
ALTER TABLE sync_history ADD COLUMN warning VARCHAR;
