-- Assent schema, version 4: the dashboard's login sessions. Never edit once released: add a new numbered file.
--
-- A session is known by the SHA-256 digest of its random token (the cookie holds the token, the database
-- never does). It ends after `IDLE` seconds without use (src/domain/dashboard/auth.rs), at logout, and with
-- every other session of its user when the password changes or the user is removed.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);
