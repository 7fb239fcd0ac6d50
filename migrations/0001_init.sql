-- Assent schema, version 1. Never edit once released: add a new numbered file instead.
-- Timestamps are UTC Unix seconds. No table holds a client address, and only `consents` holds consent
-- ids; events and visits carry the pseudonymous visitor key derived from one.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('sites_generation', '0');
-- '1' while no server runs or after a clean stop; '0' while one runs (visit rows are repaired after a crash).
INSERT INTO meta (key, value) VALUES ('clean_shutdown', '1');

CREATE TABLE sites (
    id         TEXT PRIMARY KEY,
    config     TEXT NOT NULL,      -- JSON of the site's settings
    revision   INTEGER NOT NULL,
    secret     BLOB NOT NULL,      -- per-site key of the visitor hash
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Any change to sites tells running servers to reload them.
CREATE TRIGGER sites_changed_insert AFTER INSERT ON sites BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'sites_generation';
END;
CREATE TRIGGER sites_changed_update AFTER UPDATE ON sites BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'sites_generation';
END;
CREATE TRIGGER sites_changed_delete AFTER DELETE ON sites BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'sites_generation';
END;

-- What visitors were shown at each revision, so a consent record's hash can be checked against it.
CREATE TABLE site_revisions (
    site_id     TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    policy_hash TEXT NOT NULL,
    policy      TEXT NOT NULL,     -- JSON: categories and texts as shown
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (site_id, revision)
) STRICT;

-- The append-only consent log (GDPR art. 7(1)).
CREATE TABLE consents (
    id                INTEGER PRIMARY KEY,
    consent_id        TEXT NOT NULL,
    site_id           TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    revision          INTEGER NOT NULL,
    policy_hash       TEXT NOT NULL,
    choices           TEXT NOT NULL,   -- JSON {category: bool}
    grants_analytics  INTEGER NOT NULL,
    action            TEXT NOT NULL,
    language          TEXT,
    page_path         TEXT,
    expires_at        INTEGER NOT NULL
) STRICT;
CREATE INDEX consents_by_consent_id ON consents (consent_id, id);
CREATE INDEX consents_by_site_time ON consents (site_id, created_at);
CREATE TRIGGER consents_append_only BEFORE UPDATE ON consents BEGIN
    SELECT RAISE(ABORT, 'consent records are append-only');
END;

CREATE TABLE visits (
    id           INTEGER PRIMARY KEY,
    site_id      TEXT NOT NULL,
    visitor      INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    last_at      INTEGER NOT NULL,
    entry_page   TEXT NOT NULL,
    exit_page    TEXT NOT NULL,
    pageviews    INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    engaged_ms   INTEGER NOT NULL DEFAULT 0,
    referrer     TEXT,
    source       TEXT,
    utm_source   TEXT,
    utm_medium   TEXT,
    utm_campaign TEXT,
    utm_content  TEXT,
    utm_term     TEXT,
    country      TEXT,
    browser      TEXT NOT NULL,
    os           TEXT NOT NULL,
    device       TEXT NOT NULL
) STRICT;
CREATE INDEX visits_by_site_time ON visits (site_id, started_at);
CREATE INDEX visits_by_visitor ON visits (site_id, visitor);

CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    site_id    TEXT NOT NULL,
    visit_id   INTEGER NOT NULL,
    visitor    INTEGER NOT NULL,
    ts         INTEGER NOT NULL,
    name       TEXT NOT NULL,
    path       TEXT NOT NULL,
    props      TEXT,
    engaged_ms INTEGER
) STRICT;
CREATE INDEX events_by_site_time ON events (site_id, ts);
-- Events have one index, which grows at its end. Erasure and export find a visitor's events through the
-- visits (by visitor) and each visit's time range; an index on the random visitor key or on visit ids would
-- dirty a random page with every event.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;
