//! What only the PostgreSQL store does: retention drops whole months of events and visits (their
//! partitions, files and all) and deletes rows only in the month of the cut-off. Needs a PostgreSQL server
//! (`ASSENT_TEST_POSTGRES`, as `.ci/run` provides); without one it says it skipped.

mod common;

use assent::storage::engine::Location;
use assent::storage::postgres::ScratchDatabase;
use common::*;

fn assent(dir: &std::path::Path, url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(bin())
        .args(["--data-dir", dir.to_str().unwrap(), "--database-url", url])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn retention_drops_whole_months_and_deletes_rows_only_at_the_cut() {
    let Some(server) = assent::storage::postgres::test_server() else {
        eprintln!("skipped: ASSENT_TEST_POSTGRES is not set");
        return;
    };
    let db = ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    assent(
        dir.path(),
        &db.url,
        &["site", "add", "demo", "--domain", "localhost"],
    );
    // Twenty months of traffic: more than the thirteen kept.
    assent(
        dir.path(),
        &db.url,
        &["seed", "demo", "--events", "6000", "--days", "600"],
    );
    let sql = |q: &str| -> i64 {
        engine::open(&Location::Postgres(db.url.clone()))
            .conn()
            .value(q, &[])
            .unwrap()
    };
    let months =
        "SELECT COUNT(*) FROM pg_class WHERE relname ~ '^(events|visits)_y[0-9]{4}m[0-9]{2}$'";
    let before_events = sql("SELECT COUNT(*) FROM events");
    let out = assent(dir.path(), &db.url, &["purge"]);
    let deleted: i64 = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("events: "))
        .and_then(|n| n.parse().ok())
        .expect("the purge prints what it deleted");
    assert!(deleted > 500, "{out}");
    assert_eq!(sql("SELECT COUNT(*) FROM events"), before_events - deleted);

    // Nothing older than the cut-off is left, no event without its visit, nothing in the default
    // partitions (every month has its own), and no partition of a month wholly before the cut-off.
    let cutoff =
        assent::domain::consent::sub_months(time::OffsetDateTime::now_utc(), 13).unix_timestamp();
    assert_eq!(
        sql(&format!("SELECT COUNT(*) FROM events WHERE ts < {cutoff}")),
        0
    );
    assert_eq!(
        sql(&format!(
            "SELECT COUNT(*) FROM visits WHERE started_at < {cutoff}"
        )),
        0
    );
    assert_eq!(
        sql("SELECT COUNT(*) FROM events WHERE visit_id NOT IN (SELECT id FROM visits)"),
        0
    );
    assert_eq!(
        sql("SELECT (SELECT COUNT(*) FROM events_default) + (SELECT COUNT(*) FROM visits_default)"),
        0
    );
    let floor = assent::storage::postgres::month_floor(cutoff).unwrap();
    let mut owned = engine::open(&Location::Postgres(db.url.clone()));
    let mut conn = owned.conn();
    let mut kept = assent::storage::postgres::partitions(&mut conn, "events").unwrap();
    kept.extend(assent::storage::postgres::partitions(&mut conn, "visits").unwrap());
    assert!(kept.iter().all(|(_, _, end)| *end > floor), "{kept:?}");
    // The months of the thirteen kept (and two ahead) have partitions: at least 14 per table.
    assert!(sql(months) >= 28, "{}", sql(months));
    let receipt: i64 = sql("SELECT events FROM deletion_receipts WHERE kind = 'retention'");
    assert_eq!(
        receipt, deleted,
        "the receipt counts the dropped months too"
    );
}

/// The database drops every connection (a restart, a failover): the server answers 503 while it cannot
/// write, stores nothing it did not acknowledge, and writes again without a restart.
#[test]
fn a_lost_connection_fails_closed_and_recovers_without_a_restart() {
    let Some(server) = assent::storage::postgres::test_server() else {
        eprintln!("skipped: ASSENT_TEST_POSTGRES is not set");
        return;
    };
    let db = ScratchDatabase::create(&server).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = Server::start(
        dir.path(),
        &["--rate-limit", "0"],
        &[("ASSENT_DATABASE_URL", db.url.as_str())],
    );
    let (status, body) = app.post(
        "/api/consent",
        &serde_json::json!({"site": "demo", "revision": 1, "action": "accept_all"}),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let id = body["consent_id"].as_str().unwrap().to_string();
    let event = |n: u64| {
        app.post(
            "/api/event",
            &serde_json::json!({"site": "demo", "consent_id": id, "name": "tick",
                                "url": "http://localhost/", "props": {"n": n}}),
            &[("user-agent", UA)],
        )
        .0
    };
    assert_eq!(event(0), 202);
    let terminated: i64 = engine::open(&Location::Postgres(server.clone()))
        .conn()
        .value(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = ?1 AND pid <> pg_backend_pid()) AS t",
            assent::args![&db.name],
        )
        .unwrap();
    assert!(terminated >= 1, "the server's connections were cut");
    let mut acked = vec![0];
    let mut refused = 0;
    let n = wait_for(30, || {
        let n = acked.len() as u64 + refused;
        match event(n) {
            202 => {
                acked.push(n);
                Some(n)
            }
            503 => {
                refused += 1;
                None
            }
            other => panic!("unexpected status {other}"),
        }
    });
    eprintln!("{refused} events refused with 503 before event {n} was stored again");
    assert!(event(n + 1) == 202);
    acked.push(n + 1);
    let stored = engine::stored_numbers(&Location::Postgres(db.url.clone()));
    assert!(
        acked.iter().all(|n| stored.contains(n)),
        "{acked:?} {stored:?}"
    );
    assert_eq!(stored.len(), acked.len(), "nothing refused was stored");
}
