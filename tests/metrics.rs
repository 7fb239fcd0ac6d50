//! `GET /metrics` in-process: the counters move with real requests, the labels never hold a consent id,
//! a path or an address, both text formats read cleanly, and the `metrics` setting decides who may read.

mod common;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{self, TestRequest};
use common::prometheus::{self, Family, value};
use common::*;
use serde_json::json;

const LOOPBACK: &str = "127.0.0.1:40000";

/// The metrics as a loopback client reads them, in the format asked for.
async fn scrape<S, B>(svc: &S, openmetrics: bool) -> (String, Vec<Family>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let mut req = TestRequest::get()
        .uri("/metrics")
        .peer_addr(LOOPBACK.parse().unwrap());
    if openmetrics {
        req = req.insert_header((
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        ));
    }
    let res = test::call_service(svc, req.to_request()).await;
    assert_eq!(res.status(), 200);
    let content_type = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let expected = if openmetrics {
        "application/openmetrics-text; version=1.0.0"
    } else {
        "text/plain; version=0.0.4"
    };
    assert!(content_type.starts_with(expected), "{content_type}");
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    let families = prometheus::parse(&text, openmetrics);
    (text, families)
}

fn get(families: &[Family], name: &str, labels: &[(&str, &str)]) -> f64 {
    value(families, name, labels).unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
}

#[actix_web::test]
async fn counters_move_with_real_requests() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let (_, before) = scrape(&svc, true).await;
    assert_eq!(get(&before, "assent_events_stored_total", &[]), 0.0);
    assert_eq!(
        get(
            &before,
            "assent_consent_decisions_total",
            &[("action", "accept_all")]
        ),
        0.0,
        "every action is there from the start"
    );

    let yes = consent(&svc, "demo", "accept_all", json!({})).await;
    let no = consent(&svc, "demo", "reject_all", json!({})).await;
    for _ in 0..3 {
        let (s, _) = post(
            &svc,
            "/api/event",
            &event_body("demo", &yes, "pageview", "https://localhost/a"),
        )
        .await;
        assert_eq!(s, 202);
    }
    let (s, _) = post(
        &svc,
        "/api/event",
        &event_body("demo", &no, "pageview", "https://localhost/a"),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = post(&svc, "/api/event", &json!({"site": "demo"})).await;
    assert_eq!(s, 400);
    let (s, _) = post(
        &svc,
        "/api/event",
        &event_body("nope", &yes, "pageview", "https://localhost/a"),
    )
    .await;
    assert_eq!(s, 404);
    let bot = post_json(
        "/api/event",
        &event_body("demo", &yes, "pageview", "https://localhost/a"),
    )
    .insert_header((
        "user-agent",
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
    ));
    let (s, body) = call(&svc, bot).await;
    assert_eq!((s, &body["stored"]), (202, &json!(false)), "{body}");
    let (s, _) = call(&svc, TestRequest::get().uri(&format!("/api/consent/{yes}"))).await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &svc,
        TestRequest::delete().uri(&format!("/api/visitor/{yes}")),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(&svc, TestRequest::get().uri("/no/such/page")).await;
    assert_eq!(s, 404);
    let purged = app.state.store.purge(0, assent::now()).await.unwrap();
    assert_eq!(purged.events, 0);

    let (_, after) = scrape(&svc, true).await;
    assert_eq!(get(&after, "assent_events_stored_total", &[]), 3.0);
    for (reason, n) in [
        ("forbidden", 1.0),
        ("invalid", 1.0),
        ("unknown_site", 1.0),
        ("bot", 1.0),
    ] {
        assert_eq!(
            get(&after, "assent_events_refused_total", &[("reason", reason)]),
            n,
            "{reason}"
        );
    }
    for (action, n) in [("accept_all", 1.0), ("reject_all", 1.0), ("withdraw", 0.0)] {
        assert_eq!(
            get(
                &after,
                "assent_consent_decisions_total",
                &[("action", action)]
            ),
            n,
            "{action}"
        );
    }
    assert_eq!(get(&after, "assent_erasures_total", &[]), 1.0);
    assert_eq!(
        get(&after, "assent_erased_records_total", &[("kind", "events")]),
        3.0
    );
    assert_eq!(
        get(
            &after,
            "assent_erased_records_total",
            &[("kind", "consent_records")]
        ),
        1.0
    );
    assert_eq!(get(&after, "assent_retention_runs_total", &[]), 1.0);
    let requests = |route: &str, method: &str, status: &str| {
        get(
            &after,
            "assent_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert_eq!(requests("/api/event", "POST", "202"), 4.0);
    assert_eq!(requests("/api/event", "POST", "403"), 1.0);
    assert_eq!(requests("/api/consent", "POST", "200"), 2.0);
    assert_eq!(requests("/api/consent/{id}", "GET", "200"), 1.0);
    assert_eq!(requests("/api/visitor/{id}", "DELETE", "204"), 1.0);
    assert_eq!(requests("(no route)", "GET", "404"), 1.0);
    assert_eq!(requests("/metrics", "GET", "200"), 1.0, "the first scrape");
    // Every write went through the writer: consents, stored events, the erasure, the purge.
    let batches = get(&after, "assent_writer_batch_size_count", &[]);
    let jobs = get(&after, "assent_writer_batch_size_sum", &[]);
    assert!(
        batches >= 1.0 && jobs >= 7.0,
        "{batches} batches, {jobs} jobs"
    );
    assert_eq!(
        get(&after, "assent_writer_commit_seconds_count", &[]),
        batches
    );
    assert!(get(&after, "assent_writer_commit_seconds_sum", &[]) > 0.0);
    assert_eq!(get(&after, "assent_writer_queue_depth", &[]), 0.0);
    let reported = get(&after, "assent_database_size_bytes", &[]);
    if engine::postgres_selected() {
        // What the server reports for the database; it moves with its own bookkeeping, so only near.
        let now: i64 = app
            .with_sql(|c| c.value("SELECT pg_database_size(current_database())", &[]))
            .unwrap();
        assert!(
            reported > 0.0 && (reported - now as f64).abs() <= now as f64 * 0.1,
            "{reported} reported, {now} now"
        );
    } else {
        let on_disk = ["assent.db", "assent.db-wal"]
            .iter()
            .filter_map(|f| std::fs::metadata(app.dir.path().join(f)).ok())
            .map(|m| m.len())
            .sum::<u64>();
        assert_eq!(reported, on_disk as f64);
    }
}

#[actix_web::test]
async fn labels_hold_no_consent_id_path_or_address() {
    let app = TestApp::with_env(&[("ASSENT_TRUSTED_PROXIES", "192.0.2.0/24")]);
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let unknown = "0123456789abcdef0123456789abcdef";
    for path in [
        format!("/api/consent/{id}"),
        format!("/api/visitor/{id}"),
        format!("/api/consent/{unknown}"),
        format!("/api/visitor/{unknown}"),
        format!("/api/nothing/{id}"),
        format!("/{id}"),
        "/s/demo/assent.js?token=s3cr3t".to_string(),
    ] {
        let req = TestRequest::get()
            .uri(&path)
            .peer_addr("192.0.2.10:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "203.0.113.77"));
        call(&svc, req).await;
    }
    // A method nobody uses does not become a label value of its own.
    let odd = TestRequest::default()
        .method(actix_web::http::Method::from_bytes(b"BREW").unwrap())
        .uri(&format!("/api/consent/{id}"));
    call(&svc, odd).await;
    for openmetrics in [true, false] {
        let (text, families) = scrape(&svc, openmetrics).await;
        for secret in [
            id.as_str(),
            unknown,
            "203.0.113",
            "192.0.2",
            "127.0.0",
            "s3cr3t",
            "BREW",
        ] {
            assert!(!text.contains(secret), "{secret} in\n{text}");
        }
        let routes: Vec<&str> = families
            .iter()
            .flat_map(|f| &f.samples)
            .filter_map(|s| prometheus::label(s, "route"))
            .collect();
        assert!(routes.contains(&"/api/visitor/{id}"), "{routes:?}");
        assert!(routes.contains(&"/s/{site}/assent.js"), "{routes:?}");
        assert!(
            routes
                .iter()
                .all(|r| *r == "(no route)" || r.starts_with('/')),
            "{routes:?}"
        );
        assert!(
            value(
                &families,
                "assent_http_requests_total",
                &[("method", "other"), ("route", "/api/consent/{id}")]
            )
            .is_some()
        );
    }
}

async fn status_of(app: &TestApp, peer: &str, headers: &[(&str, &str)]) -> u16 {
    let svc = service(app).await;
    let mut req = TestRequest::get()
        .uri("/metrics")
        .peer_addr(peer.parse().unwrap());
    for h in headers {
        req = req.insert_header(*h);
    }
    test::call_service(&svc, req.to_request())
        .await
        .status()
        .as_u16()
}

#[actix_web::test]
async fn who_may_read_is_a_setting() {
    const TOKEN: &str = "metrics-token-0123456789";
    let bearer = format!("Bearer {TOKEN}");
    // Default: loopback clients only; a client behind a trusted local proxy is not one.
    let app = TestApp::with_env(&[("ASSENT_TRUSTED_PROXIES", "127.0.0.1")]);
    assert_eq!(status_of(&app, LOOPBACK, &[]).await, 200);
    assert_eq!(status_of(&app, "[::1]:4000", &[]).await, 200);
    assert_eq!(status_of(&app, "192.0.2.10:4000", &[]).await, 403);
    assert_eq!(
        status_of(&app, LOOPBACK, &[("x-forwarded-for", "203.0.113.7")]).await,
        403
    );
    assert_eq!(
        status_of(&app, "192.0.2.10:4000", &[("authorization", &bearer)]).await,
        403,
        "no token is configured"
    );

    let app = TestApp::with_env(&[("ASSENT_METRICS_TOKEN", TOKEN)]);
    assert_eq!(
        status_of(&app, "192.0.2.10:4000", &[("authorization", &bearer)]).await,
        200
    );
    for wrong in [
        "Bearer metrics-token-012345678",
        "Bearer metrics-token-0123456789x",
        TOKEN,
    ] {
        assert_eq!(
            status_of(&app, "192.0.2.10:4000", &[("authorization", wrong)]).await,
            403,
            "{wrong}"
        );
    }

    let app = TestApp::with_env(&[("ASSENT_METRICS", "off")]);
    assert_eq!(status_of(&app, LOOPBACK, &[]).await, 404);
    let app = TestApp::with_env(&[("ASSENT_METRICS", "public")]);
    assert_eq!(status_of(&app, "192.0.2.10:4000", &[]).await, 200);
}
