-- The activity timeline filters audit_log by user or by action within a time window, newest first.
CREATE INDEX audit_log_user_timestamp ON audit_log (user_id, timestamp);
CREATE INDEX audit_log_action_timestamp ON audit_log (action, timestamp);
