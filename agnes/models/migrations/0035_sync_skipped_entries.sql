-- Manifest entries a marketplace sync skipped (issue 15): each with its reason, so nothing
-- disappears from the served set without a word.
ALTER TABLE marketplace_sync_history ADD COLUMN skipped JSON;  -- [{"name", "reason"}] (NULL before 0035)
