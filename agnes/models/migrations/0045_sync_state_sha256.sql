-- SHA-256 of each published parquet beside its MD5 (issue 16): `agnes pull` verifies SHA-256 when the
-- server offers it (about twice as fast as MD5 on CPUs with SHA extensions); `hash` (MD5) stays for
-- the manifest's existing readers and as the download ETag.
ALTER TABLE sync_state ADD COLUMN sha256 VARCHAR;  -- SHA-256 hex of the published parquet (NULL before 0045, '' for remote tables)
