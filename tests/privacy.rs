//! The privacy invariants of CONTRACT.md, each with a test that fails if it breaks.

mod common;

use actix_web::test::TestRequest;
use common::*;
use serde_json::json;

const V4: &str = "67.43.156.77"; // in 67.43.156.0/24, BT in the test database
const V6: &str = "2001:218:1234:5678:9abc:def0:1234:5678"; // in 2001:218::/32, JP
const MAPPED: &str = "::ffff:50.114.1.77"; // IPv4-mapped, 50.114.0.0/22 is US

/// Invariant 1: the full address reaches neither the database (file and WAL) nor the log; the country is
/// still found from the network. Runs a real server with debug logging behind a trusted proxy (loopback).
#[test]
fn invariant_1_full_address_never_stored_or_logged() {
    let dir = tempfile::tempdir().unwrap();
    let pg = engine::scratch_database();
    let mut env = vec![("RUST_LOG", "debug".to_string())];
    env.extend(engine::engine_env(&pg));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let geo = fixture("geoip/GeoLite2-Country-Test.mmdb");
    let server = Server::start(
        dir.path(),
        &[
            "--trusted-proxy",
            "127.0.0.1/32",
            "--geoip",
            geo.to_str().unwrap(),
        ],
        &env,
    );
    let mut ids = Vec::new();
    for (i, (header, value)) in [
        ("x-forwarded-for", V4.to_string()),
        ("x-forwarded-for", V6.to_string()),
        ("x-forwarded-for", MAPPED.to_string()),
    ]
    .iter()
    .enumerate()
    {
        let (status, body) = server.post(
            "/api/consent",
            &json!({"site": "demo", "revision": 1, "action": "accept_all"}),
            &[(header, value.as_str())],
        );
        assert_eq!(status, 200, "{body}");
        let id = body["consent_id"].as_str().unwrap().to_string();
        for path in ["/a", "/b"] {
            let (status, body) = server.post(
                "/api/event",
                &json!({"site": "demo", "consent_id": id, "name": "pageview", "url": format!("http://localhost{path}?n={i}")}),
                &[(header, value.as_str()), ("user-agent", UA)],
            );
            assert_eq!(status, 202, "{body}");
        }
        ids.push(id);
    }
    let countries: Vec<String> = ids
        .iter()
        .map(|id| {
            let (status, text) = server.get(&format!("/api/visitor/{id}"));
            assert_eq!(status, 200);
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            v["visits"][0]["country"]
                .as_str()
                .unwrap_or("none")
                .to_string()
        })
        .collect();
    assert_eq!(
        countries,
        ["BT", "JP", "US"],
        "the country comes from the network"
    );

    let stdout = server.stdout.clone();
    let stderr = server.stderr.clone();
    let status = server.terminate();
    assert!(status.success(), "graceful stop exits 0: {status:?}");
    let disk = engine::store_bytes(dir.path(), &pg);
    assert!(disk.len() > 1_000, "the database was read");
    // The server logs to stderr; stdout carries its start-up lines. Once it exited, both pipes are drained
    // (poll until the log holds the shutdown line).
    let logs = wait_for(10, || {
        let mut all = stdout.lock().unwrap().clone();
        all.extend_from_slice(&stderr.lock().unwrap());
        contains(&all, b"stopped").then_some(all)
    });
    assert!(contains(&logs, b"/api/event"), "debug logging was on");
    let v6: std::net::Ipv6Addr = V6.parse().unwrap();
    let needles: Vec<(&str, Vec<u8>)> = vec![
        ("v4 text", V4.as_bytes().to_vec()),
        ("v4 bytes", vec![67, 43, 156, 77]),
        ("v6 text", V6.as_bytes().to_vec()),
        ("v6 host part", b"9abc:def0".to_vec()),
        ("v6 bytes", v6.octets().to_vec()),
        ("mapped text", b"50.114.1.77".to_vec()),
        ("mapped bytes", vec![50, 114, 1, 77]),
    ];
    for (what, needle) in &needles {
        assert!(
            !contains(&disk, needle),
            "{what} found in the database files"
        );
        assert!(!contains(&logs, needle), "{what} found in the log");
    }
    for id in &ids {
        assert!(
            !contains(&logs, id.as_bytes()),
            "a consent id reached the log"
        );
    }
}

/// Invariant 1 for the log, directly: stderr of a debug-logging server sees no address or consent id.
#[test]
fn invariant_1_log_has_no_address_or_consent_id() {
    let dir = tempfile::tempdir().unwrap();
    let pg = engine::scratch_database();
    let mut env = vec![("RUST_LOG", "trace".to_string())];
    env.extend(engine::engine_env(&pg));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(dir.path(), &["--trusted-proxy", "127.0.0.1"], &env);
    let (_, body) = server.post(
        "/api/consent",
        &json!({"site": "demo", "revision": 1, "action": "accept_all"}),
        &[("x-forwarded-for", V4)],
    );
    let id = body["consent_id"].as_str().unwrap().to_string();
    let (status, _) = server.post(
        "/api/event",
        &json!({"site": "demo", "consent_id": id, "name": "pageview", "url": "http://localhost/"}),
        &[("x-forwarded-for", V4), ("user-agent", UA)],
    );
    assert_eq!(status, 202);
    let (status, _) = server.get(&format!("/api/consent/{id}"));
    assert_eq!(status, 200);
    let (status, _) = server.get(&format!("/api/visitor/{id}"));
    assert_eq!(status, 200);
    let log = wait_for(10, || {
        let t = server.stderr_text();
        t.contains("/api/visitor/{id}").then_some(t)
    });
    assert!(
        log.contains("/api/event"),
        "requests are logged by route: {log}"
    );
    assert!(!log.contains(V4), "client address in log");
    // The server's own listening address may appear; a client's (the peer, with its port) may not.
    let without_own = log.replace(&server.addr.to_string(), "");
    assert!(
        !without_own.contains("127.0.0.1"),
        "peer address in log: {without_own}"
    );
    assert!(!log.contains(&id), "consent id in log");
}

/// Invariant 4: forwarding headers count only from trusted proxies.
#[actix_web::test]
async fn invariant_4_forwarded_headers_only_from_trusted_proxies() {
    let geo = fixture("geoip/GeoLite2-Country-Test.mmdb");
    let app = TestApp::with_env(&[
        ("ASSENT_GEOIP", geo.to_str().unwrap()),
        ("ASSENT_TRUSTED_PROXIES", "10.0.0.0/8"),
    ]);
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let send = |peer: &str, header: (&'static str, &'static str), path: &str| {
        post_json(
            "/api/event",
            &event_body("demo", &id, "pageview", &format!("https://localhost{path}")),
        )
        .peer_addr(peer.parse().unwrap())
        .insert_header(header)
    };
    // Untrusted peer claiming a Bhutanese address: ignored, the peer's own network (unknown) counts.
    let (s, _) = call(
        &svc,
        send(
            "192.0.2.1:1",
            ("x-forwarded-for", "67.43.156.7"),
            "/untrusted",
        ),
    )
    .await;
    assert_eq!(s, 202);
    let (s, _) = call(
        &svc,
        send(
            "192.0.2.1:1",
            ("forwarded", "for=67.43.156.7"),
            "/untrusted2",
        ),
    )
    .await;
    assert_eq!(s, 202);
    let untrusted: Option<String> = app
        .with_sql(|c| c.value("SELECT country FROM visits ORDER BY id LIMIT 1", &[]))
        .unwrap();
    assert_eq!(untrusted, None);
    // A trusted proxy's header is believed: a new visitor from Japan.
    let id2 = consent(&svc, "demo", "accept_all", json!({})).await;
    let req = post_json(
        "/api/event",
        &event_body("demo", &id2, "pageview", "https://localhost/jp"),
    )
    .peer_addr("10.1.2.3:1".parse().unwrap())
    .insert_header(("x-forwarded-for", "2001:218::99, 10.9.9.9"));
    let (s, _) = call(&svc, req).await;
    assert_eq!(s, 202);
    let trusted: Option<String> = app
        .with_sql(|c| c.value("SELECT country FROM visits ORDER BY id DESC LIMIT 1", &[]))
        .unwrap();
    assert_eq!(trusted.as_deref(), Some("JP"));
}

/// Invariant 2 (the consent check) is covered in api.rs; here: the cache follows erasure and purge.
/// Invariant 3: the retention job deletes what is older than the retention period and forgets the grants.
#[actix_web::test]
async fn invariant_3_retention_job_deletes_old_data_and_grants() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let (s, _) = post(
        &svc,
        "/api/event",
        &event_body("demo", &id, "pageview", "https://localhost/"),
    )
    .await;
    assert_eq!(s, 202);
    // Nothing is old yet.
    let now = assent::now();
    let cutoff =
        assent::domain::consent::sub_months(time::OffsetDateTime::now_utc(), 13).unix_timestamp();
    let r = app.state.store.purge(cutoff, now).await.unwrap();
    assert_eq!((r.events, r.visits, r.consent_records), (0, 0, 0));
    // Fourteen months later, everything is.
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(14 * 31);
    let cutoff = assent::domain::consent::sub_months(later, 13).unix_timestamp();
    let r = app
        .state
        .store
        .purge(cutoff, later.unix_timestamp())
        .await
        .unwrap();
    assert_eq!((r.events, r.visits, r.consent_records), (1, 1, 1));
    assert_eq!(
        app.count("events") + app.count("visits") + app.count("consents"),
        0
    );
    let (s, _) = post(
        &svc,
        "/api/event",
        &event_body("demo", &id, "pageview", "https://localhost/"),
    )
    .await;
    assert_eq!(s, 403, "a purged consent no longer grants anything");
}

/// Invariant 5: erasure removes every row derived from the consent id.
#[actix_web::test]
async fn invariant_5_erasure_removes_everything() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let keep = consent(&svc, "demo", "accept_all", json!({})).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    for who in [&keep, &id] {
        for p in ["/", "/x"] {
            let (s, _) = post(
                &svc,
                "/api/event",
                &event_body("demo", who, "pageview", &format!("https://localhost{p}")),
            )
            .await;
            assert_eq!(s, 202);
        }
    }
    let (s, _) = post(&svc, "/api/consent", &json!({"site": "demo", "consent_id": id, "revision": 1, "action": "custom", "choices": {"analytics": true, "marketing": true}})).await;
    assert_eq!(s, 200);
    let site = app.state.sites.get("demo").unwrap();
    let key = assent::domain::visits::visitor_key(
        &site.secret,
        assent::domain::consent::ConsentId::parse(&id).unwrap(),
    );

    let res = actix_web::test::call_service(
        &svc,
        TestRequest::delete()
            .uri(&format!("/api/visitor/{id}"))
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 204);

    app.with_sql(|db| {
        let gone = db
            .value::<i64>(
                "SELECT COUNT(*) FROM consents WHERE consent_id = ?1",
                assent::args![&id],
            )
            .unwrap();
        assert_eq!(gone, 0);
        // Events hold no visitor key: none may be left without its visit.
        let orphans: i64 = db
            .value(
                "SELECT COUNT(*) FROM events WHERE visit_id NOT IN (SELECT id FROM visits)",
                &[],
            )
            .unwrap();
        assert_eq!(orphans, 0);
        let visits_of_key: i64 = db
            .value(
                "SELECT COUNT(*) FROM visits WHERE visitor = ?1",
                assent::args![key],
            )
            .unwrap();
        assert_eq!(visits_of_key, 0);
        // The other visitor's data is untouched.
        assert_eq!(app.count("events"), 2);
        assert_eq!(app.count("visits"), 1);
        assert_eq!(app.count("consents"), 1);
        // Every table, column by column: neither the id nor the key is anywhere.
        let tables: Vec<String> = db
            .rows(
                match db.engine() {
                    assent::storage::sql::Engine::Sqlite => {
                        "SELECT name FROM sqlite_master WHERE type = 'table'"
                    }
                    assent::storage::sql::Engine::Postgres => {
                        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'"
                    }
                },
                &[],
                |r| r.get(0),
            )
            .unwrap();
        assert!(tables.len() >= 10, "{tables:?}");
        let mut cells = 0;
        for t in tables {
            let mut dump = String::new();
            db.for_each(&format!("SELECT * FROM {t}"), &[], |r| {
                for i in 0..r.len() {
                    let value: assent::storage::sql::Value = r.get(i)?;
                    dump.push_str(&format!("{value:?}\n"));
                    cells += 1;
                }
                Ok(())
            })
            .unwrap();
            assert!(!dump.contains(&id), "{t} still holds the consent id");
            assert!(
                !dump.contains(&key.to_string()),
                "{t} still holds the visitor key"
            );
        }
        assert!(cells > 50, "the dump read the tables' cells ({cells})");
    });
    let (s, _) = call(&svc, TestRequest::get().uri(&format!("/api/visitor/{id}"))).await;
    assert_eq!(s, 404);
    let (s, _) = call(&svc, TestRequest::get().uri(&format!("/api/consent/{id}"))).await;
    assert_eq!(s, 404);
    let (s, _) = post(
        &svc,
        "/api/event",
        &event_body("demo", &id, "pageview", "https://localhost/"),
    )
    .await;
    assert_eq!(s, 403, "an erased consent grants nothing");
    let res = actix_web::test::call_service(
        &svc,
        TestRequest::delete()
            .uri(&format!("/api/visitor/{id}"))
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 404);
}
