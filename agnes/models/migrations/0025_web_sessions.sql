-- Server-side browser sessions: the cookie holds a random session id, this table its SHA-256.
-- Sign-out, deactivation and "sign out everywhere" revoke rows, so a captured cookie stops working.
CREATE TABLE web_sessions (
    id VARCHAR PRIMARY KEY,
    user_id VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP
);
