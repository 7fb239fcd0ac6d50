-- Receipts of deletions (issue 9): what erasures and retention runs removed, for the operator to show.
-- No personal data: no consent id, no visitor key, no page, no address; a time, a site, and counts.
CREATE TABLE deletion_receipts (
    id              INTEGER PRIMARY KEY,
    created_at      INTEGER NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('erasure', 'retention')),
    site_id         TEXT,               -- the site an erasure removed rows of; NULL for a retention run (all sites)
    cutoff          INTEGER,            -- a retention run's cut-off (Unix seconds); NULL for an erasure
    consent_records INTEGER NOT NULL,
    visits          INTEGER NOT NULL,
    events          INTEGER NOT NULL
) STRICT;
CREATE INDEX deletion_receipts_by_time ON deletion_receipts (created_at);
