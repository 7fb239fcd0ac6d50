//! Several Assent instances on one PostgreSQL database, as behind a load balancer without stickiness:
//! consent given, withdrawn or erased through one is honoured by the other at once, a visitor whose events
//! alternate between them has the visits one instance would have made, and an instance killed with SIGKILL
//! under load loses nothing it acknowledged while the other keeps serving.
//!
//! These tests need a PostgreSQL server (`ASSENT_TEST_POSTGRES`, which `.ci/run` provides); without one
//! each says it skipped.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use assent::storage::engine::Location;
use assent::storage::postgres::ScratchDatabase;
use common::*;
use serde_json::{Value, json};

/// Two servers (each with a data directory of its own) on one fresh database, started together.
struct Pair {
    db: ScratchDatabase,
    a: Server,
    b: Server,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn pair() -> Option<Pair> {
    let Some(server) = assent::storage::postgres::test_server() else {
        eprintln!("skipped: ASSENT_TEST_POSTGRES is not set");
        return None;
    };
    let db = ScratchDatabase::create(&server).unwrap();
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let start = |dir: &Path| {
        Server::start(
            dir,
            &["--rate-limit", "0"],
            &[("ASSENT_DATABASE_URL", db.url.as_str())],
        )
    };
    // Started at the same moment: migrations and the first-run set-up must not trip over each other.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| start(dirs.0.path()));
        let b = s.spawn(|| start(dirs.1.path()));
        (a.join().unwrap(), b.join().unwrap())
    });
    Some(Pair {
        db,
        a,
        b,
        _dirs: dirs,
    })
}

impl Pair {
    fn value<T: assent::storage::sql::Col>(&self, sql: &str) -> T {
        engine::open(&Location::Postgres(self.db.url.clone()))
            .conn()
            .value(sql, &[])
            .unwrap()
    }
}

fn consent(server: &Server, body: Value) -> (u16, Value) {
    server.post("/api/consent", &body, &[])
}

fn event(server: &Server, id: &str, name: &str, path: &str) -> u16 {
    server
        .post(
            "/api/event",
            &json!({"site": "demo", "consent_id": id, "name": name,
                    "url": format!("http://localhost{path}")}),
            &[("user-agent", UA)],
        )
        .0
}

fn export(server: &Server, id: &str) -> (u16, Value) {
    let (status, text) = server.get(&format!("/api/visitor/{id}"));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn consent_withdrawal_and_erasure_made_through_one_instance_hold_on_the_other() {
    let Some(p) = pair() else { return };
    let (status, body) = consent(
        &p.a,
        json!({"site": "demo", "revision": 1, "action": "accept_all"}),
    );
    assert_eq!(status, 200, "{body}");
    let id = body["consent_id"].as_str().unwrap().to_string();

    // Consent on A, events through B: stored.
    assert_eq!(event(&p.b, &id, "pageview", "/from-b"), 202);
    assert_eq!(event(&p.a, &id, "pageview", "/from-a"), 202);
    assert_eq!(export(&p.b, &id).1["events"].as_array().unwrap().len(), 2);

    // Withdrawal through A: B refuses the very next event; measured from A's answer.
    let (status, _) = consent(
        &p.a,
        json!({"site": "demo", "consent_id": id, "revision": 1, "action": "withdraw"}),
    );
    assert_eq!(status, 200);
    let withdrawn = Instant::now();
    let mut refused_after = None;
    while withdrawn.elapsed() < Duration::from_secs(1) {
        if event(&p.b, &id, "pageview", "/after-withdrawal") == 403 {
            refused_after = Some(withdrawn.elapsed());
            break;
        }
    }
    let refused_after = refused_after.expect("B refused events within one second");
    eprintln!("withdrawal through A honoured by B after {refused_after:?}");
    assert_eq!(
        export(&p.a, &id).1["events"].as_array().unwrap().len(),
        2,
        "nothing was stored after the withdrawal"
    );

    // A grant again through B is honoured by A.
    let (status, _) = consent(
        &p.b,
        json!({"site": "demo", "consent_id": id, "revision": 1, "action": "accept_all"}),
    );
    assert_eq!(status, 200);
    assert_eq!(event(&p.a, &id, "pageview", "/granted-again"), 202);

    // Erasure through B removes what A stored, and A refuses the id afterwards.
    let res = Server::agent()
        .delete(format!("{}/api/visitor/{id}", p.b.url))
        .call()
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(export(&p.a, &id).0, 404);
    assert_eq!(event(&p.a, &id, "pageview", "/after-erasure"), 403);
    let left: i64 = p.value(&format!(
        "SELECT (SELECT COUNT(*) FROM consents WHERE consent_id = '{id}') + (SELECT COUNT(*) FROM events)
         + (SELECT COUNT(*) FROM visits)"
    ));
    assert_eq!(left, 0, "the erased visitor's rows are gone");
}

#[test]
fn a_visitor_alternating_between_instances_gets_the_visits_of_one() {
    let Some(p) = pair() else { return };
    let (_, body) = consent(
        &p.b,
        json!({"site": "demo", "revision": 1, "action": "accept_all"}),
    );
    let id = body["consent_id"].as_str().unwrap().to_string();
    let pages = [
        "/",
        "/pricing",
        "/docs",
        "/docs/install",
        "/signup",
        "/thanks",
    ];
    for (i, page) in pages.iter().enumerate() {
        let server = if i % 2 == 0 { &p.a } else { &p.b };
        assert_eq!(event(server, &id, "pageview", page), 202);
        assert_eq!(event(server, &id, "signup_click", page), 202);
    }
    for server in [&p.a, &p.b] {
        let (status, export) = export(server, &id);
        assert_eq!(status, 200);
        let visits = export["visits"].as_array().unwrap();
        assert_eq!(
            visits.len(),
            1,
            "one visit, not one per instance: {visits:?}"
        );
        let v = &visits[0];
        assert_eq!(v["entry_page"], "/");
        assert_eq!(v["exit_page"], "/thanks");
        assert_eq!(v["pageviews"], pages.len());
        assert_eq!(v["events"], 2 * pages.len());
        assert_eq!(export["events"].as_array().unwrap().len(), 2 * pages.len());
    }
    // The statistics count it once, as one instance would.
    let (visits, pageviews): (i64, i64) = (
        p.value("SELECT CAST(SUM(visits) AS BIGINT) FROM rollups WHERE dim = 0"),
        p.value("SELECT CAST(SUM(pageviews) AS BIGINT) FROM rollups WHERE dim = 0"),
    );
    assert_eq!((visits, pageviews), (1, pages.len() as i64));
}

/// Clients sending events to one server as fast as it answers, until stopped or the server is gone; the
/// numbers it acknowledged.
fn load(
    server: &Server,
    id: &str,
    base: u64,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Vec<u64>>> {
    (0..4u64)
        .map(|w| {
            let (url, id, stop) = (server.url.clone(), id.to_string(), stop.clone());
            std::thread::spawn(move || {
                let agent = Server::agent();
                let mut acked = Vec::new();
                for i in 0..1_000_000u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = base + w * 1_000_000 + i;
                    let body = json!({"site": "demo", "consent_id": id, "name": "tick",
                                      "url": "http://localhost/", "props": {"n": n}});
                    match agent
                        .post(format!("{url}/api/event"))
                        .header("user-agent", UA)
                        .send(body.to_string())
                    {
                        Ok(res) if res.status().as_u16() == 202 => acked.push(n),
                        Ok(res) if res.status().as_u16() == 503 => break,
                        Ok(res) => panic!("unexpected status {}", res.status()),
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect()
}

#[test]
fn an_instance_killed_under_load_loses_nothing_acknowledged_and_the_other_serves_on() {
    let Some(mut p) = pair() else { return };
    let (_, body) = consent(
        &p.a,
        json!({"site": "demo", "revision": 1, "action": "accept_all"}),
    );
    let id = body["consent_id"].as_str().unwrap().to_string();
    let (stop_a, stop_b) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let on_a = load(&p.a, &id, 0, stop_a.clone());
    let on_b = load(&p.b, &id, 100_000_000, stop_b.clone());
    wait_for(60, || {
        (p.value::<i64>("SELECT COUNT(*) FROM events") >= 400).then_some(())
    });
    p.a.child.kill().unwrap(); // SIGKILL
    p.a.child.wait().unwrap();
    stop_a.store(true, Ordering::Relaxed);
    let acked_a: Vec<u64> = on_a.into_iter().flat_map(|t| t.join().unwrap()).collect();
    // B keeps serving after A is gone.
    let before = p.value::<i64>("SELECT COUNT(*) FROM events");
    wait_for(60, || {
        (p.value::<i64>("SELECT COUNT(*) FROM events") >= before + 200).then_some(())
    });
    stop_b.store(true, Ordering::Relaxed);
    let acked_b: Vec<u64> = on_b.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(!acked_a.is_empty() && acked_b.len() >= 200);

    let stored = engine::stored_numbers(&Location::Postgres(p.db.url.clone()));
    let lost = acked_a
        .iter()
        .chain(&acked_b)
        .filter(|n| !stored.contains(n))
        .count();
    assert_eq!(lost, 0, "acknowledged events lost");
    // Every event is in a visit row: B took over A's visit from the rows A committed.
    let in_visits: i64 = p.value("SELECT CAST(SUM(events) AS BIGINT) FROM visits");
    assert_eq!(in_visits as usize, stored.len());
    // And in the statistics' rollups, which both writers kept.
    let in_rollups: i64 = p.value("SELECT CAST(SUM(events) AS BIGINT) FROM rollups WHERE dim = 0");
    assert_eq!(in_rollups as usize, stored.len());
    let (status, _) = p.b.get("/healthz");
    assert_eq!(status, 200);
}
