-- "snapshot" now means one thing (an analyst's local snapshot of a remote table); the files a
-- marketplace sync writes for each plugin are a checkout of the synced commit.
ALTER TABLE marketplace_registry RENAME COLUMN snapshot_dir TO checkout_dir;
