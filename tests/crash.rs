//! Durability: a server killed with SIGKILL while events flow has every event it answered 202 on disk;
//! one stopped with SIGTERM while events flow commits what it acknowledged, writes its visits and exits 0.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use assent::storage::engine::Location;
use assent::storage::postgres::ScratchDatabase;
use common::*;
use serde_json::json;

/// A data directory and, when the suite runs on PostgreSQL, the database the servers store in.
struct Store {
    dir: tempfile::TempDir,
    pg: Option<ScratchDatabase>,
}

impl Store {
    fn new() -> Store {
        Store {
            dir: tempfile::tempdir().unwrap(),
            pg: engine::scratch_database(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn start(&self, args: &[&str]) -> Server {
        let env = engine::engine_env(&self.pg);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Server::start(self.path(), args, &env)
    }

    fn location(&self) -> Location {
        match &self.pg {
            Some(db) => Location::Postgres(db.url.clone()),
            None => Location::Sqlite(self.path().join("assent.db")),
        }
    }

    fn value<T: assent::storage::sql::Col>(&self, sql: &str) -> T {
        engine::open(&self.location())
            .conn()
            .value(sql, &[])
            .unwrap()
    }

    fn is_sqlite(&self) -> bool {
        self.pg.is_none()
    }
}

/// Eight clients sending events as fast as they are answered, until `stop` or until the server is gone.
struct Load {
    acked: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: &str, id: &str) -> Load {
        Load::start_at(url, id, 0)
    }

    /// The same, numbering the events from `base`.
    fn start_at(url: &str, id: &str, base: u64) -> Load {
        let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..8u64)
            .map(|w| {
                let (acked, stop, url, id) =
                    (acked.clone(), stop.clone(), url.to_string(), id.to_string());
                std::thread::spawn(move || {
                    let agent = Server::agent();
                    for i in 0..100_000u64 {
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
                            Ok(res) if res.status().as_u16() == 202 => {
                                acked.lock().unwrap().push(n)
                            }
                            // A server that is stopping may refuse new work; that is not an acknowledgement.
                            Ok(res) if res.status().as_u16() == 503 => break,
                            Ok(res) => panic!("unexpected status {}", res.status()),
                            Err(_) => break, // the server is gone
                        }
                    }
                })
            })
            .collect();
        Load {
            acked,
            stop,
            workers,
        }
    }

    fn wait_for(&self, n: usize) {
        wait_for(60, || (self.acked.lock().unwrap().len() >= n).then_some(()));
    }

    fn finish(self) -> HashSet<u64> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.join().unwrap();
        }
        self.acked.lock().unwrap().iter().copied().collect()
    }
}

/// The numbers of the events stored (in their properties).
fn stored(store: &Store) -> HashSet<u64> {
    engine::stored_numbers(&store.location())
}

fn consent(server: &Server) -> String {
    let (status, body) = server.post(
        "/api/consent",
        &json!({"site": "demo", "revision": 1, "action": "accept_all"}),
        &[],
    );
    assert_eq!(status, 200);
    body["consent_id"].as_str().unwrap().to_string()
}

#[test]
fn sigkill_loses_no_acknowledged_event() {
    let store = Store::new();
    let mut server = store.start(&["--rate-limit", "0"]);
    let id = consent(&server);
    let load = Load::start(&server.url, &id);
    // Let a good number of events through, then kill the server mid-flow.
    load.wait_for(500);
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    let acked = load.finish();
    assert!(acked.len() >= 500);

    let stored = stored(&store);
    let lost: Vec<&u64> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );

    // The store is usable again: a new server starts on it and still honours the consent.
    let again = store.start(&[]);
    let (status, _) = again.post(
        "/api/event",
        &json!({"site": "demo", "consent_id": id, "name": "pageview", "url": "http://localhost/"}),
        &[("user-agent", UA)],
    );
    assert_eq!(status, 202);

    // Visit rows lag their events in memory; after the crash they were recomputed from the events.
    let (status, text) = again.get(&format!("/api/visitor/{id}"));
    assert_eq!(status, 200);
    let export: serde_json::Value = serde_json::from_str(&text).unwrap();
    let in_visits: u64 = export["visits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["events"].as_u64().unwrap())
        .sum();
    assert_eq!(
        in_visits as usize,
        stored.len() + 1,
        "visit aggregates match the stored events"
    );
    assert_eq!(export["events"].as_array().unwrap().len(), stored.len() + 1);
    // SQLite's writer leaves visit rows behind their events for a few seconds and mends them at the next
    // start; PostgreSQL's writes them with every transaction (other instances read them), so there is
    // nothing to mend.
    assert_eq!(
        again.stderr_text().contains("did not stop cleanly"),
        store.is_sqlite()
    );
}

#[test]
fn sigterm_commits_what_was_acknowledged_and_exits_0() {
    let store = Store::new();
    let server = store.start(&["--rate-limit", "0"]);
    let id = consent(&server);
    let load = Load::start(&server.url, &id);
    load.wait_for(300);
    let status = server.terminate();
    let acked = load.finish();
    assert!(status.success(), "a graceful stop exits 0: {status:?}");

    let stored = stored(&store);
    let lost: Vec<&u64> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged events lost", lost.len());
    // The visit rows were written before exiting: no repair needed, and they match the events.
    let clean: String = store.value("SELECT value FROM meta WHERE key = 'clean_shutdown'");
    let in_visits: i64 = store.value("SELECT CAST(SUM(events) AS BIGINT) FROM visits");
    assert_eq!(clean, "1");
    let watermark: String = store.value("SELECT value FROM meta WHERE key = 'flushed_event'");
    let last: i64 = store.value("SELECT MAX(id) FROM events");
    assert_eq!(
        watermark,
        last.to_string(),
        "every event is in the visit rows"
    );
    assert_eq!(in_visits as usize, stored.len());
}

/// New consent records as fast as they are answered; the ids acknowledged with a 200.
fn consent_load(url: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<String>> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let agent = Server::agent();
        let mut acked = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let body = json!({"site": "demo", "revision": 1, "action": "accept_all"});
            match agent
                .post(format!("{url}/api/consent"))
                .header("content-type", "application/json")
                .send(body.to_string())
            {
                Ok(mut res) if res.status().as_u16() == 200 => {
                    let v: serde_json::Value = res.body_mut().read_json().unwrap();
                    acked.push(v["consent_id"].as_str().unwrap().to_string());
                }
                Ok(res) if res.status().as_u16() == 503 || res.status().as_u16() == 429 => {}
                Ok(res) => panic!("unexpected status {}", res.status()),
                Err(_) => break,
            }
        }
        acked
    })
}

/// SIGKILL at random moments while events and consents flow: after each, nothing acknowledged is missing,
/// the SQLite file passes its integrity check (PostgreSQL recovers by itself), and the next start repairs
/// the visits from their events.
/// Five trials here; `ASSENT_LONG_TESTS=1` runs twenty.
#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let trials = if std::env::var_os("ASSENT_LONG_TESTS").is_some() {
        20
    } else {
        5
    };
    let store = Store::new();
    // A seed from the clock, printed so that a failing trial can be told apart.
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    eprintln!("kill delays seeded with {seed}");
    let mut all_events: HashSet<u64> = HashSet::new();
    let trials = trials as u64;
    let mut all_consents: Vec<String> = Vec::new();
    for trial in 0..trials {
        let mut server = store.start(&["--rate-limit", "0"]);
        if trial > 0 && store.is_sqlite() {
            assert!(
                wait_for(10, || server
                    .stderr_text()
                    .contains("checked and is sound")
                    .then_some(true)),
                "trial {trial}: the unclean stop was noticed: {}",
                server.stderr_text()
            );
        }
        let id = consent(&server);
        all_consents.push(id.clone());
        // Events numbered apart per trial (the Load numbers them from 0 per worker).
        let load = Load::start_at(&server.url, &id, trial * 100_000_000);
        let stop = Arc::new(AtomicBool::new(false));
        let consents = consent_load(&server.url, stop.clone());
        load.wait_for(50);
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(seed % 400));
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        let acked = load.finish();
        all_consents.extend(consents.join().unwrap());
        if store.is_sqlite() {
            let check: String = store.value("PRAGMA integrity_check");
            assert_eq!(check, "ok", "trial {trial}");
        }
        let stored_events = stored(&store);
        all_events.extend(acked.iter().copied());
        let lost: Vec<&u64> = acked.difference(&stored_events).collect();
        assert!(lost.is_empty(), "trial {trial}: {} events lost", lost.len());
        let ids: HashSet<String> = engine::open(&store.location())
            .conn()
            .rows("SELECT consent_id FROM consents", &[], |r| r.get(0))
            .unwrap()
            .into_iter()
            .collect();
        let missing = all_consents.iter().filter(|c| !ids.contains(*c)).count();
        assert_eq!(
            missing, 0,
            "trial {trial}: acknowledged consent records lost"
        );
    }
    // The last start repairs the visits: their counts match the events.
    let server = store.start(&[]);
    let log = server.stderr.clone();
    let status = server.terminate();
    assert!(
        status.success(),
        "{status:?}: {}",
        String::from_utf8_lossy(&log.lock().unwrap())
    );
    let events: i64 = store.value("SELECT COUNT(*) FROM events");
    let in_visits: i64 = store.value("SELECT CAST(SUM(events) AS BIGINT) FROM visits");
    assert_eq!(events, in_visits, "visits repaired after {trials} kills");
    assert!(all_events.len() as u64 >= 50 * trials);
    assert_eq!(events as usize, stored(&store).len());
}
