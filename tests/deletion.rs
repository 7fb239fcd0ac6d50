//! Privacy invariant 6, "deleted means gone": after a retention purge and after an erasure, none of the
//! removed data can be read back from any file of the data directory (database, write-ahead log, shared
//! memory), not from free pages, not from unused space inside pages, not from old page images in the log.
//! Every deletion leaves a receipt with no personal data.

mod common;

use std::path::Path;

use actix_web::test::TestRequest;
use assent::domain::consent::{Action, ConsentId, ConsentRecord, add_months};
use assent::domain::event::NewEvent;
use common::*;
use serde_json::json;
use time::OffsetDateTime;

/// Every byte of every file in the data directory (whatever their names).
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend_from_slice(&std::fs::read(&path).unwrap());
        }
    }
    all
}

/// Bytes as text, one char per byte, so that the standard library's fast substring search finds any
/// byte string (a byte-window scan takes minutes for these needles in a debug build).
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn assert_absent(dir: &Path, what: &str, needles: &[Vec<u8>]) {
    let disk = latin1(&all_bytes(dir));
    assert!(disk.len() > 10_000, "the files were read");
    for n in needles {
        assert!(
            !disk.contains(&latin1(n)),
            "{what}: {:?} is still in the data directory's files",
            String::from_utf8_lossy(n)
        );
    }
}

fn assert_present(dir: &Path, needles: &[Vec<u8>]) {
    let disk = latin1(&all_bytes(dir));
    for n in needles {
        assert!(
            disk.contains(&latin1(n)),
            "{:?} (kept data) should still be on disk: the scan reads the files",
            String::from_utf8_lossy(n)
        );
    }
}

fn event(
    site: &str,
    ts: i64,
    name: &str,
    path: &str,
    referrer: Option<&str>,
    prop: &str,
) -> NewEvent {
    NewEvent {
        site: site.into(),
        ts,
        name: name.into(),
        path: path.into(),
        referrer: referrer.map(str::to_string),
        source: referrer.map(|_| "Referral".to_string()),
        utm_source: None,
        utm_medium: None,
        utm_campaign: None,
        utm_content: None,
        utm_term: None,
        country: Some("FR".into()),
        browser: "Firefox".into(),
        os: "Linux".into(),
        device: "Desktop".into(),
        screen: "Desktop".into(),
        props: Some(json!({ "k": prop }).to_string()),
        prop_pairs: vec![("k".into(), prop.into())],
        engaged_ms: None,
    }
}

fn record(id: ConsentId, site: &str, at: i64, page: &str) -> ConsentRecord {
    let at = OffsetDateTime::from_unix_timestamp(at).unwrap();
    ConsentRecord {
        consent_id: id,
        site: site.into(),
        created_at: at,
        revision: 1,
        policy_hash: "seeded".into(),
        choices: [("necessary".into(), true), ("analytics".into(), true)].into(),
        action: Action::AcceptAll,
        language: Some("en".into()),
        page_path: Some(page.into()),
        expires_at: add_months(at, 13),
    }
}

const DAY: i64 = 86_400;

/// Old visitors (14 months ago) mixed with recent ones (a day ago), each with marked pages, referrers,
/// properties and consent records. Returns the needles of the old ones and of the recent ones.
fn seed_old_and_recent(db: &mut assent::storage::Database) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let now = assent::now();
    let site = db.site("demo").unwrap().unwrap();
    let mut seeder = db.seeder("demo").unwrap();
    let (mut old, mut recent) = (Vec::new(), Vec::new());
    let mut visits = Vec::new();
    for i in 0..240u32 {
        let is_old = i % 2 == 0;
        let (ts, tag) = if is_old {
            (now - 430 * DAY + i as i64 * 60, "oldgone")
        } else {
            (now - DAY - 3600 + i as i64 * 10, "recentkept")
        };
        let id = ConsentId(0x5eed_0000_0000_0000_0000_0000_0000_0000 + i as u128 * 7919);
        let page = format!("/{tag}-consentpage-{i:04}");
        seeder.consent(&record(id, "demo", ts, &page)).unwrap();
        let key = assent::domain::visits::visitor_key(&site.secret, id);
        let referrer = format!("https://{tag}-referrer-{i:04}.example/");
        let evs: Vec<NewEvent> = (0..4)
            .map(|j| {
                event(
                    "demo",
                    ts + j * 30,
                    if j == 3 { "signup" } else { "pageview" },
                    &format!("/{tag}-path-{i:04}-{j}"),
                    Some(&referrer),
                    &format!("{tag}-prop-{i:04}-{j}"),
                )
            })
            .collect();
        let needles = if is_old { &mut old } else { &mut recent };
        needles.push(id.to_string().into_bytes());
        needles.push(page.into_bytes());
        needles.push(referrer.into_bytes());
        for j in 0..4 {
            needles.push(format!("/{tag}-path-{i:04}-{j}").into_bytes());
            needles.push(format!("{tag}-prop-{i:04}-{j}").into_bytes());
        }
        visits.push((key, evs));
    }
    seeder.visits(&visits).unwrap();
    seeder.commit().unwrap();
    (old, recent)
}

fn receipts(db: &rusqlite::Connection) -> Vec<(String, Option<String>, i64, i64, i64)> {
    db.prepare(
        "SELECT kind, site_id, consent_records, visits, events FROM deletion_receipts ORDER BY id",
    )
    .unwrap()
    .query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// The server's hourly retention (the writer's path): the old visitors' rows go, and their bytes with
/// them; the recent ones stay. The run leaves a receipt with its counts.
#[actix_web::test]
async fn retention_by_the_server_leaves_no_copy_on_disk() {
    let mut needles = None;
    let app = TestApp::build(&[], |db| needles = Some(seed_old_and_recent(db)));
    let (old, recent) = needles.unwrap();
    let dir = app.dir.path().to_path_buf();
    assert_present(&dir, &old);
    let now = assent::now();
    let cutoff =
        assent::domain::consent::sub_months(OffsetDateTime::now_utc(), 13).unix_timestamp();
    let r = app.state.store.purge(cutoff, now).await.unwrap();
    assert_eq!((r.events, r.visits, r.consent_records), (480, 120, 120));
    assert_absent(&dir, "after the server's retention", &old);
    assert_present(&dir, &recent);
    assert_eq!(
        receipts(&app.db()),
        [("retention".to_string(), None, 120, 120, 480)]
    );
}

/// `assent purge` (a command, its own connection): the same, and it prints what it removed.
#[test]
fn retention_by_the_command_leaves_no_copy_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), &[]);
    let (old, recent) = {
        let mut db = assent::storage::Database::open(&s.db_path()).unwrap();
        assent::commands::site::add(&mut db, "demo", vec!["localhost".into()], None).unwrap();
        seed_old_and_recent(&mut db)
    };
    assert_present(dir.path(), &old);
    let (ok, out, err) = cli(dir.path(), &["purge"]);
    assert!(ok, "{err}");
    assert!(out.contains("events: 480"), "{out}");
    assert!(out.contains("visits: 120"), "{out}");
    assert!(out.contains("consent records: 120"), "{out}");
    assert!(out.contains("receipt"), "{out}");
    assert_absent(dir.path(), "after assent purge", &old);
    assert_present(dir.path(), &recent);
    let db = rusqlite::Connection::open(s.db_path()).unwrap();
    assert_eq!(
        receipts(&db),
        [("retention".to_string(), None, 120, 120, 480)]
    );
    // A run that finds nothing is stored too (the log of runs is complete), and a dry run is not.
    let (ok, out, _) = cli(dir.path(), &["purge"]);
    assert!(ok && out.contains("events: 0"), "{out}");
    let (ok, _, _) = cli(dir.path(), &["purge", "--dry-run"]);
    assert!(ok);
    assert_eq!(receipts(&db).len(), 2);
}

/// Erasure through `DELETE /api/visitor/{id}` among many other visitors: after the 204, neither the
/// consent id (as stored, and the visitor key derived from it) nor any page, referrer or property of the
/// erased visitor is in any file; the others' data is. A receipt counts the rows per kind, per site.
#[actix_web::test]
async fn erasure_leaves_no_copy_on_disk() {
    let app = TestApp::with_env(&[("ASSENT_RATE_LIMIT", "0")]);
    let svc = service(&app).await;
    let dir = app.dir.path().to_path_buf();
    let mut target = String::new();
    let mut kept = Vec::new();
    // Visitors before and after the erased one, so that its rows sit between others in every b-tree.
    for i in 0..160 {
        let id = consent(&svc, "demo", "accept_all", json!({})).await;
        let tag = if i == 80 { "erasedone" } else { "otherkept" };
        for j in 0..3 {
            let body = json!({
                "site": "demo", "consent_id": id, "name": if j == 2 { "download" } else { "pageview" },
                "url": format!("https://localhost/{tag}-path-{i:03}-{j}"),
                "referrer": format!("https://{tag}-referrer-{i:03}.example/"),
                "props": {"k": format!("{tag}-prop-{i:03}-{j}")},
            });
            let (s, b) = post(&svc, "/api/event", &body).await;
            assert_eq!(s, 202, "{b}");
        }
        if i == 80 {
            target = id;
        } else if i % 20 == 0 {
            kept.push(format!("/otherkept-path-{i:03}-0").into_bytes());
        }
    }
    // A second choice, so the erased id has several records.
    let (s, _) = post(&svc, "/api/consent", &json!({"site": "demo", "consent_id": target, "revision": 1, "action": "custom", "choices": {"analytics": true, "marketing": false}})).await;
    assert_eq!(s, 200);
    app.state.store.flush().await.unwrap();
    let id = ConsentId::parse(&target).unwrap();
    let key = assent::domain::visits::visitor_key(&app.state.sites.get("demo").unwrap().secret, id);
    let mut needles: Vec<Vec<u8>> = vec![
        target.clone().into_bytes(),
        key.to_be_bytes().to_vec(),
        b"erasedone-referrer-080".to_vec(),
    ];
    for j in 0..3 {
        needles.push(format!("/erasedone-path-080-{j}").into_bytes());
        needles.push(format!("erasedone-prop-080-{j}").into_bytes());
    }
    // Before: all of it is on disk (the needles are real).
    assert_present(&dir, &needles);

    let res = actix_web::test::call_service(
        &svc,
        TestRequest::delete()
            .uri(&format!("/api/visitor/{target}"))
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 204);
    assert_absent(&dir, "after erasure", &needles);
    assert_present(&dir, &kept);
    let rows = receipts(&app.db());
    assert_eq!(
        rows,
        [("erasure".to_string(), Some("demo".to_string()), 2, 1, 3)]
    );
    // The receipt table holds no personal data (no id, no key, nothing of the visitor).
    let dump: String = app
        .db()
        .query_row(
            "SELECT group_concat(concat_ws(',', created_at, kind, site_id, cutoff, consent_records, visits, events))
             FROM deletion_receipts",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        !dump.contains(&target) && !dump.contains("erasedone"),
        "{dump}"
    );
    assert!(!dump.contains(&key.to_string()), "{dump}");
}

/// An erasure of an id with nothing stored leaves no receipt (404), and the page-level pragmas are on
/// for every connection the server opens.
#[actix_web::test]
async fn unknown_erasure_leaves_no_receipt_and_secure_delete_is_on() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let res = actix_web::test::call_service(
        &svc,
        TestRequest::delete()
            .uri("/api/visitor/0123456789abcdef0123456789abcdef")
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 404);
    assert!(receipts(&app.db()).is_empty());
    let conn = assent::storage::db::open(&app.state.settings.db_path()).unwrap();
    let on: i64 = conn
        .query_row("PRAGMA secure_delete", [], |r| r.get(0))
        .unwrap();
    assert_eq!(on, 1);
}

/// An erasure is followed by the next retention run's scrub even when that run deletes nothing itself:
/// the stale copies that rebalancing left in the unused space of pages are zeroed (they live an hour at
/// most), and the database still reads the same afterwards.
#[actix_web::test]
async fn the_retention_run_after_an_erasure_scrubs() {
    let app = TestApp::with_env(&[("ASSENT_RATE_LIMIT", "0")]);
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let long = "x".repeat(1900);
    for i in 0..60 {
        let body = json!({
            "site": "demo", "consent_id": id, "name": "pageview",
            "url": format!("https://localhost/many-{i}"), "props": {"pad": long},
        });
        let (s, b) = post(&svc, "/api/event", &body).await;
        assert_eq!(s, 202, "{b}");
    }
    // Another visitor, whose rows must read the same after the scrub.
    let other = consent(&svc, "demo", "accept_all", json!({})).await;
    for i in 0..20 {
        let body = json!({
            "site": "demo", "consent_id": other, "name": "pageview",
            "url": format!("https://localhost/kept-{i}"), "props": {"pad": long},
        });
        let (s, b) = post(&svc, "/api/event", &body).await;
        assert_eq!(s, 202, "{b}");
    }
    app.state.store.flush().await.unwrap();
    let export = TestRequest::get().uri(&format!("/api/visitor/{other}"));
    let (status, before) = call(&svc, export).await;
    assert_eq!(status, 200);
    let res = actix_web::test::call_service(
        &svc,
        TestRequest::delete()
            .uri(&format!("/api/visitor/{id}"))
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 204);
    let dirty = |app: &TestApp| assent::storage::scrub::dirty_pages(&app.db()).unwrap();
    assert!(dirty(&app) > 0, "rebalancing left bytes in unused space");
    let cutoff =
        assent::domain::consent::sub_months(OffsetDateTime::now_utc(), 13).unix_timestamp();
    let r = app.state.store.purge(cutoff, assent::now()).await.unwrap();
    assert_eq!((r.events, r.visits, r.consent_records), (0, 0, 0));
    assert_eq!(
        dirty(&app),
        0,
        "the run zeroed the unused space of every page"
    );
    let check: String = app
        .db()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let export = TestRequest::get().uri(&format!("/api/visitor/{other}"));
    assert_eq!(call(&svc, export).await, (200, before));
    // both deletions left their receipt
    let receipts_now = receipts(&app.db()).len();
    assert_eq!(
        receipts_now, 2,
        "an erasure receipt and a retention receipt"
    );
}
