-- Assent schema, version 2. Never edit once released: add a new numbered file instead.
--
-- Each visit records the ids of its first and last event. Event ids grow with time, so a visit's events lie
-- in that id range of the events table: erasure, export and retention find them with a range scan of the
-- table's own b-tree, without an index on the visitor or the visit that would dirty a random page with every
-- event. `last_event` (like the other aggregates) is written when the writer flushes an open visit.
ALTER TABLE visits ADD COLUMN first_event INTEGER NOT NULL DEFAULT 0;
ALTER TABLE visits ADD COLUMN last_event INTEGER NOT NULL DEFAULT 0;

UPDATE visits SET first_event = r.first_event, last_event = r.last_event
FROM (SELECT visit_id, MIN(id) AS first_event, MAX(id) AS last_event FROM events GROUP BY visit_id) AS r
WHERE visits.id = r.visit_id;

-- Every event with an id up to this one is reflected in its visit row: after a crash, only the visits of
-- later events are recomputed, however long the server was down. A database that version 1 left after an
-- unclean stop starts from the events of the two days version 1 would have repaired.
INSERT INTO meta (key, value) VALUES ('flushed_event',
    CASE WHEN (SELECT value FROM meta WHERE key = 'clean_shutdown') = '1'
         THEN (SELECT COALESCE(MAX(id), 0) FROM events)
         ELSE (SELECT COALESCE(MIN(id) - 1, (SELECT COALESCE(MAX(id), 0) FROM events)) FROM events
               WHERE ts >= CAST(strftime('%s', 'now') AS INTEGER) - 2 * 86400)
    END);

-- Moves when a command changes collected data behind a running server's back (`assent purge`); the
-- server's writer then drops what it holds in memory about consents and open visits and reads it afresh.
INSERT INTO meta (key, value) VALUES ('data_generation', '0');
