//! The writer batch by batch: each test builds the batches that the HTTP layer can only make likely, and
//! checks that the database and the writer's memory agree with the log afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::Connection;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use super::*;
use crate::domain::consent::{Action, add_months};
use crate::domain::consent_cache::{Lookup, Verdict};
use crate::domain::site::SiteConfig;
use crate::storage::Database;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

pub(super) struct Harness {
    dir: tempfile::TempDir,
    writer: Option<Writer>,
    cache: Arc<ConsentCache>,
}

pub(super) fn at(ts: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(ts).unwrap()
}

impl Harness {
    pub(super) fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::open(&dir.path().join("w.db")).unwrap();
        let cfg = SiteConfig::new_default("A", vec!["a.example".into()]);
        db.add_site("a", &cfg, crate::now()).unwrap();
        let cache = Arc::new(ConsentCache::default());
        let mut h = Harness {
            dir,
            writer: None,
            cache,
        };
        h.restart(crate::now());
        h
    }

    pub(super) fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("w.db")
    }

    pub(super) fn db(&self) -> Database {
        Database::open(&self.path()).unwrap()
    }

    pub(super) fn conn(&self) -> Connection {
        Connection::open(self.path()).unwrap()
    }

    /// A new writer on the same file, as after a restart (the old one is dropped without writing).
    pub(super) fn restart(&mut self, now: i64) {
        self.writer = None;
        self.cache = Arc::new(ConsentCache::default());
        let conn = crate::storage::db::open_and_migrate(&self.path()).unwrap();
        let conn = crate::storage::engine::Owned::Lite(conn);
        self.writer = Some(Writer::new(conn, self.cache.clone(), now).unwrap());
    }

    pub(super) fn writer(&mut self) -> &mut Writer {
        self.writer.as_mut().unwrap()
    }

    /// Runs the ops as one batch and returns their answers.
    pub(super) fn batch(&mut self, ops: Vec<Op>) -> Vec<Result<Outcome>> {
        let mut answers = Vec::new();
        let jobs = ops
            .into_iter()
            .map(|op| {
                let (reply, answer) = oneshot::channel();
                answers.push(answer);
                Job {
                    op,
                    reply: Some(reply),
                }
            })
            .collect();
        self.writer().run_batch(jobs);
        answers
            .into_iter()
            .map(|mut a| a.try_recv().expect("every job is answered"))
            .collect()
    }

    pub(super) fn count(&self, sql: &str) -> i64 {
        self.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

pub(super) fn consent(
    id: ConsentId,
    site: &str,
    revision: u32,
    analytics: bool,
    created: i64,
) -> Op {
    let choices: BTreeMap<String, bool> = [
        ("necessary".to_string(), true),
        ("analytics".to_string(), analytics),
    ]
    .into();
    Op::Consent(ConsentRecord {
        consent_id: id,
        site: site.into(),
        created_at: at(created),
        revision,
        policy_hash: "h".into(),
        choices,
        action: if analytics {
            Action::AcceptAll
        } else {
            Action::Withdraw
        },
        language: None,
        page_path: None,
        expires_at: add_months(at(created), 13),
    })
}

pub(super) fn event(id: ConsentId, name: &str, path: &str, ts: i64) -> Op {
    Op::Event {
        consent_id: id,
        event: Box::new(NewEvent {
            site: "a".into(),
            ts,
            name: name.into(),
            path: path.into(),
            referrer: None,
            source: None,
            utm_source: None,
            utm_medium: None,
            utm_campaign: None,
            utm_content: None,
            utm_term: None,
            country: None,
            browser: "Firefox".into(),
            os: "Linux".into(),
            device: "Desktop".into(),
            screen: "Desktop".into(),
            props: None,
            prop_pairs: Vec::new(),
            engaged_ms: None,
        }),
    }
}

fn outcome(answer: &Result<Outcome>) -> EventOutcome {
    match answer {
        Ok(Outcome::Event(o)) => *o,
        other => panic!("not an event answer: {other:?}"),
    }
}

fn erased(answer: &Result<Outcome>) -> ErasureReport {
    match answer {
        Ok(Outcome::Erased(r)) => r.clone(),
        other => panic!("not an erasure answer: {other:?}"),
    }
}

#[test]
fn an_event_after_an_erasure_in_the_same_batch_is_refused() {
    let mut h = Harness::new();
    let now = crate::now();
    let id = ConsentId(42);
    h.batch(vec![consent(id, "a", 1, true, now)]);
    let answers = h.batch(vec![
        event(id, "pageview", "/first", now),
        Op::Erase(id),
        event(id, "pageview", "/after", now),
    ]);
    assert_eq!(outcome(&answers[0]), EventOutcome::Stored);
    let report = erased(&answers[1]);
    assert_eq!(
        (report.consent_records, report.events, report.visits),
        (1, 1, 1)
    );
    assert!(matches!(outcome(&answers[2]), EventOutcome::Refused(_)));
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM visits"), 0);
    assert!(h.writer().open.is_empty(), "no visit put back in memory");
    assert_eq!(h.cache.lookup(id.0, "a", 1, now), Lookup::Unknown);
    // And in a later batch, still refused.
    let later = h.batch(vec![event(id, "pageview", "/later", now)]);
    assert!(matches!(outcome(&later[0]), EventOutcome::Refused(_)));
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 0);
}

#[test]
fn an_event_queued_behind_an_erasure_or_a_withdrawal_is_refused() {
    let mut h = Harness::new();
    let now = crate::now();
    let (erased_id, withdrawn) = (ConsentId(1), ConsentId(2));
    h.batch(vec![
        consent(erased_id, "a", 1, true, now),
        consent(withdrawn, "a", 1, true, now),
    ]);
    // Both ids are granted in the cache, as the handler saw them; the erasure and the withdrawal are
    // queued ahead of the events.
    let answers = h.batch(vec![
        Op::Erase(erased_id),
        consent(withdrawn, "a", 1, false, now),
        event(erased_id, "pageview", "/", now),
        event(withdrawn, "pageview", "/", now),
    ]);
    assert!(matches!(outcome(&answers[2]), EventOutcome::Refused(_)));
    assert!(matches!(outcome(&answers[3]), EventOutcome::Refused(_)));
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 0);
}

#[test]
fn a_purge_keeps_what_the_batch_absorbed_before_it() {
    let mut h = Harness::new();
    let now = crate::now();
    let (old, fresh) = (ConsentId(1), ConsentId(2));
    h.batch(vec![
        consent(old, "a", 1, true, now),
        consent(fresh, "a", 1, true, now),
    ]);
    // An old visit for the purge to delete (its time is the event's own).
    h.batch(vec![event(old, "pageview", "/old", now - 400 * DAY)]);
    h.batch(vec![event(fresh, "pageview", "/a", now)]);
    let cutoff = now - 395 * DAY;
    let answers = h.batch(vec![
        event(fresh, "pageview", "/b", now + 1),
        event(fresh, "Signup", "/b", now + 2),
        Op::Purge { cutoff, now },
        event(fresh, "pageview", "/c", now + 3),
    ]);
    match &answers[2] {
        Ok(Outcome::Purged(r, _)) => assert_eq!((r.events, r.visits, r.consent_records), (1, 1, 0)),
        other => panic!("{other:?}"),
    }
    h.batch(vec![Op::Flush]);
    let (pageviews, events, exit): (i64, i64, String) = h
        .conn()
        .query_row("SELECT pageviews, events, exit_page FROM visits", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((pageviews, events, exit.as_str()), (3, 4, "/c"));
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 4);
}

#[test]
fn a_visit_across_the_cutoff_goes_with_all_its_events() {
    let mut h = Harness::new();
    let now = crate::now();
    let (spanning, later) = (ConsentId(1), ConsentId(2));
    // Day D (the site counts in UTC) ends at `midnight`; a visit starts ten minutes before it and goes on
    // after it; another starts a quarter of an hour after it.
    let midnight = (now - 100 * DAY).div_euclid(DAY) * DAY;
    let start = midnight - 10 * 60;
    h.batch(vec![
        consent(spanning, "a", 1, true, start - HOUR),
        consent(later, "a", 1, true, start - HOUR),
    ]);
    h.batch(vec![event(spanning, "pageview", "/1", start)]);
    h.batch(vec![event(spanning, "pageview", "/2", start + 20 * 60)]);
    h.batch(vec![event(later, "pageview", "/x", midnight + 15 * 60)]);
    h.batch(vec![event(spanning, "pageview", "/3", start + 40 * 60)]);
    // Retention cuts at an instant of day D: the whole of day D goes, with every event of its visits.
    let answers = h.batch(vec![Op::Purge {
        cutoff: midnight - 6 * HOUR,
        now,
    }]);
    match &answers[0] {
        Ok(Outcome::Purged(r, _)) => assert_eq!((r.events, r.visits), (3, 1)),
        other => panic!("{other:?}"),
    }
    // What remains is exactly the visit that started on the next day, with its event.
    assert_eq!(h.count("SELECT COUNT(*) FROM visits"), 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM events WHERE path = '/x'"), 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 1);
}

#[test]
fn visits_are_repaired_after_a_crash_however_long_the_downtime() {
    let mut h = Harness::new();
    let now = crate::now();
    let id = ConsentId(7);
    h.batch(vec![consent(id, "a", 1, true, now)]);
    for i in 0..5 {
        h.batch(vec![event(id, "pageview", &format!("/{i}"), now + i)]);
    }
    // The writer dies without writing its open visit; the server comes back three days later.
    h.restart(now + 3 * DAY);
    let (pageviews, exit): (i64, String) = h
        .conn()
        .query_row("SELECT pageviews, exit_page FROM visits", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((pageviews, exit.as_str()), (5, "/4"));
}

#[test]
fn a_failed_final_flush_is_repaired_at_the_next_start() {
    let mut h = Harness::new();
    let now = crate::now();
    let id = ConsentId(7);
    h.batch(vec![consent(id, "a", 1, true, now)]);
    h.batch(vec![event(id, "pageview", "/a", now)]);
    h.batch(vec![event(id, "pageview", "/b", now + 1)]);
    // Writing visit rows fails from now on (a full disk would do the same).
    h.conn()
        .execute_batch(
            "CREATE TRIGGER broken BEFORE UPDATE ON visits BEGIN SELECT RAISE(ABORT, 'disk full'); END",
        )
        .unwrap();
    let answers = h.batch(vec![Op::Shutdown]);
    assert!(answers[0].is_err(), "the final flush failed");
    h.conn().execute_batch("DROP TRIGGER broken").unwrap();
    h.restart(now + 60);
    assert_eq!(h.count("SELECT pageviews FROM visits"), 2);
}

#[test]
fn a_site_removed_and_added_again_forgets_its_grants_and_visits() {
    let mut h = Harness::new();
    let now = crate::now();
    let id = ConsentId(9);
    h.batch(vec![consent(id, "a", 1, true, now)]);
    h.batch(vec![event(id, "pageview", "/", now)]);
    assert_eq!(
        h.cache.lookup(id.0, "a", 1, now),
        Lookup::Known(Verdict::Granted)
    );
    // `assent site remove a` and `assent site add a` from another process.
    let mut db = h.db();
    assert!(db.remove_site("a").unwrap());
    let cfg = SiteConfig::new_default("A", vec!["a.example".into()]);
    db.add_site("a", &cfg, now).unwrap();
    let answers = h.batch(vec![event(id, "pageview", "/", now + 1)]);
    assert!(matches!(outcome(&answers[0]), EventOutcome::Refused(_)));
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM visits"), 0);
    assert_eq!(h.cache.lookup(id.0, "a", 1, now), Lookup::Unknown);
    // A removed site takes no more consent or events.
    assert!(db.remove_site("a").unwrap());
    let answers = h.batch(vec![
        consent(ConsentId(10), "a", 1, true, now),
        event(ConsentId(10), "pageview", "/", now),
    ]);
    assert!(matches!(answers[0], Err(Error::NotFound(_))));
    assert_eq!(outcome(&answers[1]), EventOutcome::UnknownSite);
}

#[test]
fn a_grant_from_an_older_revision_is_refused() {
    let mut h = Harness::new();
    let now = crate::now();
    let id = ConsentId(3);
    h.batch(vec![consent(id, "a", 1, true, now)]);
    let mut db = h.db();
    let cfg = db.site("a").unwrap().unwrap().config;
    assert_eq!(db.update_site("a", &cfg, true, now).unwrap(), 2);
    let answers = h.batch(vec![event(id, "pageview", "/", now)]);
    assert!(
        matches!(outcome(&answers[0]), EventOutcome::Refused(why) if why.contains("revision")),
        "{:?}",
        answers[0]
    );
    // Asked again, the visitor's new choice counts.
    let answers = h.batch(vec![
        consent(id, "a", 2, true, now),
        event(id, "pageview", "/", now),
    ]);
    assert_eq!(outcome(&answers[1]), EventOutcome::Stored);
}

#[test]
fn a_purge_by_a_command_drops_what_the_writer_held() {
    let mut h = Harness::new();
    let now = crate::now();
    let id = ConsentId(5);
    h.batch(vec![consent(id, "a", 1, true, now)]);
    h.batch(vec![event(id, "pageview", "/", now)]);
    // `assent purge --as-of` a year and a half ahead, beside the running server.
    let report = h.db().purge(now + 2, false).unwrap();
    assert_eq!((report.events, report.consent_records), (1, 1));
    let answers = h.batch(vec![event(id, "pageview", "/again", now + 5)]);
    assert!(matches!(outcome(&answers[0]), EventOutcome::Refused(_)));
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM visits"), 0);
}

#[test]
fn erasure_finds_visits_whose_consent_records_retention_removed() {
    let mut h = Harness::new();
    let now = crate::now();
    let id = ConsentId(11);
    // A choice made over a year ago, whose record retention removed; the visitor came last month.
    let made = now - 380 * DAY;
    h.batch(vec![consent(id, "a", 1, true, made)]);
    h.batch(vec![event(id, "pageview", "/", now - 30 * DAY)]);
    h.batch(vec![Op::Purge {
        cutoff: now - 379 * DAY,
        now,
    }]);
    assert_eq!(h.count("SELECT COUNT(*) FROM consents"), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 1);
    let answers = h.batch(vec![Op::Erase(id)]);
    let report = erased(&answers[0]);
    assert_eq!((report.events, report.visits), (1, 1));
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 0);
}

#[test]
fn open_visits_stay_within_their_bound_and_are_found_again() {
    let mut h = Harness::new();
    let now = crate::now();
    h.writer().open = OpenVisits::new(50);
    let ids: Vec<ConsentId> = (100..300).map(ConsentId).collect();
    h.batch(
        ids.iter()
            .map(|id| consent(*id, "a", 1, true, now))
            .collect(),
    );
    h.batch(
        ids.iter()
            .map(|id| event(*id, "pageview", "/in", now))
            .collect(),
    );
    h.batch(vec![Op::Flush]);
    assert!(h.writer().open.len() <= 50, "{}", h.writer().open.len());
    // The visits dropped from memory continue: no new visit is opened for their visitors.
    h.batch(
        ids.iter()
            .map(|id| event(*id, "pageview", "/next", now + 60))
            .collect(),
    );
    h.batch(vec![Op::Flush]);
    assert_eq!(h.count("SELECT COUNT(*) FROM visits"), 200);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM visits WHERE pageviews = 2 AND exit_page = '/next'"),
        200
    );
}

#[test]
fn seeded_visits_need_no_repair() {
    let mut h = Harness::new();
    let now = crate::now();
    let mut db = h.db();
    let mut seeder = db.seeder("a").unwrap();
    let e = |path: &str, ts: i64| match event(ConsentId(1), "pageview", path, ts) {
        Op::Event { event, .. } => *event,
        _ => unreachable!("event() makes events"),
    };
    seeder.visit(1, &[e("/a", now), e("/b", now + 5)]).unwrap();
    seeder.visit(2, &[e("/c", now)]).unwrap();
    seeder.commit().unwrap();
    assert_eq!(
        h.count("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'flushed_event'"),
        3,
        "the watermark moved past the seeded events"
    );
    h.restart(now);
    assert_eq!(h.count("SELECT SUM(pageviews) FROM visits"), 3);
}

#[test]
fn retention_goes_in_slices() {
    let mut h = Harness::new();
    let now = crate::now();
    let mut db = h.db();
    let mut seeder = db.seeder("a").unwrap();
    let old = now - 100 * DAY;
    let n = 2 * crate::storage::retention::SLICE as i64 + 100;
    for v in 0..n {
        let e = match event(ConsentId(1), "pageview", "/", old + v) {
            Op::Event { event, .. } => *event,
            _ => unreachable!("event() makes events"),
        };
        seeder.visit(v, &[e.clone(), e]).unwrap();
    }
    seeder.commit().unwrap();
    let mut slices = Vec::new();
    loop {
        let answers = h.batch(vec![Op::Purge { cutoff: now, now }]);
        match &answers[0] {
            Ok(Outcome::Purged(r, more)) => {
                slices.push((r.visits, r.events));
                if !more {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    let slice = crate::storage::retention::SLICE;
    assert_eq!(slices, [(slice, 2 * slice), (slice, 2 * slice), (100, 200)]);
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 0);
}

/// A batch inserts its events only before something reads the events table (see `Batch::write_events`):
/// a visit that ends inside the batch must still get the exit page of the event the batch just added, a
/// visit read back from its row (memory full) must see the batch's events, and an erasure queued after the
/// events must find and delete them.
#[test]
fn reads_inside_a_batch_see_the_events_the_batch_added() {
    let mut h = Harness::new();
    let now = crate::now();
    let (one, two, gone) = (ConsentId(1), ConsentId(2), ConsentId(3));
    h.batch(vec![
        consent(one, "a", 1, true, now),
        consent(two, "a", 1, true, now),
        consent(gone, "a", 1, true, now),
    ]);
    h.batch(vec![event(one, "pageview", "/first", now - 3600)]);
    h.batch(vec![
        // The visit of `/first` goes on, then ends: the next page view is 40 minutes later.
        event(one, "pageview", "/second", now - 3500),
        event(one, "pageview", "/later", now - 3500 + 40 * 60),
        event(gone, "pageview", "/x", now),
        Op::Erase(gone),
        event(two, "pageview", "/y", now),
    ]);
    h.batch(vec![Op::Flush]);
    let exits: Vec<(i64, String)> = h
        .conn()
        .prepare("SELECT pageviews, exit_page FROM visits ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let exits: Vec<(i64, &str)> = exits.iter().map(|(p, e)| (*p, e.as_str())).collect();
    assert_eq!(exits, [(2, "/second"), (1, "/later"), (1, "/y")]);
    assert_eq!(h.count("SELECT COUNT(*) FROM events WHERE path = '/x'"), 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM events"), 4);
}
