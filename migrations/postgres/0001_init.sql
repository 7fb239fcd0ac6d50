-- The PostgreSQL schema: the same tables and columns as the SQLite one after its migrations 0001-0005,
-- in PostgreSQL's types, with events and visits partitioned by month so that retention drops whole
-- months (storage::postgres creates the partitions ahead of time; rows outside them land in the default
-- partition). Timestamps are Unix seconds (BIGINT) as on SQLite; flags are INTEGER 0/1 so that the
-- statements both engines share can sum them. Values the statistics engine merges in sorted order
-- (rollup values) compare bytewise (COLLATE "C"), as SQLite and Rust compare them.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- last_writer: the instance whose transaction wrote last (storage::writer, "several instances").
INSERT INTO meta (key, value) VALUES ('sites_generation', '0'), ('data_generation', '0'),
    ('flushed_event', '0'), ('clean_shutdown', '1'), ('last_writer', '');

CREATE TABLE sites (
    id         TEXT PRIMARY KEY,
    config     TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    secret     BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE FUNCTION assent_sites_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE meta SET value = (CAST(value AS BIGINT) + 1)::text WHERE key = 'sites_generation';
    RETURN NULL;
END $$;
CREATE TRIGGER sites_changed AFTER INSERT OR UPDATE OR DELETE ON sites
    FOR EACH STATEMENT EXECUTE FUNCTION assent_sites_changed();

CREATE TABLE site_revisions (
    site_id     TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    policy_hash TEXT NOT NULL,
    policy      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (site_id, revision)
);

CREATE TABLE consents (
    id                BIGSERIAL PRIMARY KEY,
    consent_id        TEXT NOT NULL,
    site_id           TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    revision          INTEGER NOT NULL,
    policy_hash       TEXT NOT NULL,
    choices           TEXT NOT NULL,
    grants_analytics  INTEGER NOT NULL,
    action            TEXT NOT NULL,
    language          TEXT,
    page_path         TEXT,
    expires_at        BIGINT NOT NULL
);
CREATE INDEX consents_by_consent_id ON consents (consent_id, id);
CREATE INDEX consents_by_site_time ON consents (site_id, created_at);
CREATE FUNCTION assent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent records are append-only';
END $$;
CREATE TRIGGER consents_append_only BEFORE UPDATE ON consents
    FOR EACH ROW EXECUTE FUNCTION assent_append_only();

CREATE SEQUENCE visits_id_seq;
CREATE TABLE visits (
    id           BIGINT NOT NULL DEFAULT nextval('visits_id_seq'),
    site_id      TEXT NOT NULL,
    visitor      BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    last_at      BIGINT NOT NULL,
    entry_page   TEXT NOT NULL,
    exit_page    TEXT NOT NULL,
    pageviews    INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    engaged_ms   BIGINT NOT NULL DEFAULT 0,
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
    device       TEXT NOT NULL,
    first_event  BIGINT NOT NULL DEFAULT 0,
    last_event   BIGINT NOT NULL DEFAULT 0,
    screen       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (started_at, id)
) PARTITION BY RANGE (started_at);
CREATE TABLE visits_default PARTITION OF visits DEFAULT;
CREATE INDEX visits_by_id ON visits (id);
CREATE INDEX visits_by_site_time ON visits (site_id, started_at);
CREATE INDEX visits_by_visitor ON visits (site_id, visitor);

CREATE SEQUENCE events_id_seq;
CREATE TABLE events (
    id         BIGINT NOT NULL DEFAULT nextval('events_id_seq'),
    site_id    TEXT NOT NULL,
    visit_id   BIGINT NOT NULL,
    ts         BIGINT NOT NULL,
    name       TEXT NOT NULL,
    path       TEXT NOT NULL,
    props      TEXT,
    engaged_ms BIGINT,
    PRIMARY KEY (ts, id)
) PARTITION BY RANGE (ts);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_by_id ON events (id);

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE user_sites (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    site_id TEXT NOT NULL,
    PRIMARY KEY (user_id, site_id)
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE rollups (
    site_id    TEXT NOT NULL,
    dim        INTEGER NOT NULL,
    day        INTEGER NOT NULL,
    value      TEXT COLLATE "C" NOT NULL,
    visits     BIGINT NOT NULL,
    pageviews  BIGINT NOT NULL,
    events     BIGINT NOT NULL,
    bounces    BIGINT NOT NULL,
    duration   BIGINT NOT NULL,
    engaged_ms BIGINT NOT NULL,
    PRIMARY KEY (site_id, dim, day, value)
);

CREATE TABLE rollup_visitors (
    id      BIGSERIAL PRIMARY KEY,
    site_id TEXT NOT NULL,
    dim     INTEGER NOT NULL,
    day     INTEGER NOT NULL,
    value   TEXT COLLATE "C" NOT NULL,
    chunk   INTEGER NOT NULL,
    numbers BYTEA NOT NULL
);
CREATE UNIQUE INDEX rollup_visitors_by_row ON rollup_visitors (site_id, dim, day, value, chunk);

CREATE TABLE rollup_zones (
    site_id  TEXT PRIMARY KEY,
    timezone TEXT NOT NULL
);

CREATE TABLE deletion_receipts (
    id              BIGSERIAL PRIMARY KEY,
    created_at      BIGINT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('erasure', 'retention')),
    site_id         TEXT,
    cutoff          BIGINT,
    consent_records BIGINT NOT NULL,
    visits          BIGINT NOT NULL,
    events          BIGINT NOT NULL
);
CREATE INDEX deletion_receipts_by_time ON deletion_receipts (created_at);
