//! Durability: a server killed with SIGKILL while events flow has every event it answered 202 on disk.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;

#[test]
fn sigkill_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--rate-limit", "0"], &[]);
    let (status, body) = server.post(
        "/api/consent",
        &json!({"site": "demo", "revision": 1, "action": "accept_all"}),
        &[],
    );
    assert_eq!(status, 200);
    let id = body["consent_id"].as_str().unwrap().to_string();

    let acked = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let url = server.url.clone();
    let workers: Vec<_> = (0..8u64)
        .map(|w| {
            let (acked, stop, url, id) = (acked.clone(), stop.clone(), url.clone(), id.clone());
            std::thread::spawn(move || {
                let agent = Server::agent();
                for i in 0..100_000u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = w * 1_000_000 + i;
                    let body = json!({"site": "demo", "consent_id": id, "name": "tick", "url": "http://localhost/",
                                      "props": {"n": n}});
                    match agent.post(format!("{url}/api/event")).header("user-agent", UA).send(body.to_string()) {
                        Ok(res) if res.status().as_u16() == 202 => acked.lock().unwrap().push(n),
                        Ok(res) => panic!("unexpected status {}", res.status()),
                        Err(_) => break, // the server is gone
                    }
                }
            })
        })
        .collect();
    // Let a good number of events through, then kill the server mid-flow.
    wait_for(60, || (acked.lock().unwrap().len() >= 500).then_some(()));
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked: HashSet<u64> = acked.lock().unwrap().iter().copied().collect();
    assert!(acked.len() >= 500);

    let conn = rusqlite::Connection::open(dir.path().join("assent.db")).unwrap();
    let stored: HashSet<u64> = conn
        .prepare("SELECT json_extract(props, '$.n') FROM events")
        .unwrap()
        .query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|n| n.unwrap() as u64)
        .collect();
    let lost: Vec<&u64> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    drop(conn);

    // The data directory is usable again: a new server starts on it and still honours the consent.
    let again = Server::start(dir.path(), &[], &[]);
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
}
