-- Assent schema, version 3: the statistics engine. Never edit once released: add a new numbered file.
--
-- A visit's screen size class, and `events` counting page views and custom events only (engaged-time
-- pings are not events).
ALTER TABLE visits ADD COLUMN screen TEXT NOT NULL DEFAULT '';
-- Events are found through their visit (by the id range its row records): the visitor key in every event
-- row and the index on (site, time) are dead weight.
ALTER TABLE events DROP COLUMN visitor;
DROP INDEX events_by_site_time;
UPDATE visits SET events = r.n
FROM (SELECT visit_id, COUNT(*) AS n FROM events WHERE name <> 'engagement' GROUP BY visit_id) AS r
WHERE visits.id = r.visit_id;

-- Daily rollups: per site, dimension (a code, see src/domain/stats/dims.rs), local day (Julian day number
-- in the site's time zone) and value, the sums of the visits that started that day. No visitor key: who
-- counts is kept as visitor numbers, a keyed mix of the key (src/domain/stats/visitors.rs), in chunks of
-- a sorted multiset, so that erasure can take a visitor's entries out.
CREATE TABLE rollups (
    site_id    TEXT NOT NULL,
    dim        INTEGER NOT NULL,
    day        INTEGER NOT NULL,
    value      TEXT NOT NULL,
    visits     INTEGER NOT NULL,
    pageviews  INTEGER NOT NULL,
    events     INTEGER NOT NULL,
    bounces    INTEGER NOT NULL,
    duration   INTEGER NOT NULL,
    engaged_ms INTEGER NOT NULL,
    PRIMARY KEY (site_id, dim, day, value)
) STRICT, WITHOUT ROWID;

-- A rowid table, so that a chunk (a few kilobytes) lives in its own page rather than spilling over.
CREATE TABLE rollup_visitors (
    id      INTEGER PRIMARY KEY,
    site_id TEXT NOT NULL,
    dim     INTEGER NOT NULL,
    day     INTEGER NOT NULL,
    value   TEXT NOT NULL,
    chunk   INTEGER NOT NULL,
    numbers BLOB NOT NULL
) STRICT;
CREATE UNIQUE INDEX rollup_visitors_by_row ON rollup_visitors (site_id, dim, day, value, chunk);

-- The time zone each site's rollups were counted in; a site whose zone changed is counted again.
CREATE TABLE rollup_zones (
    site_id  TEXT PRIMARY KEY,
    timezone TEXT NOT NULL
) STRICT;

-- Users may be limited to some sites (viewers); admins see every site.
CREATE TABLE user_sites (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    site_id TEXT NOT NULL,
    PRIMARY KEY (user_id, site_id)
) STRICT;
