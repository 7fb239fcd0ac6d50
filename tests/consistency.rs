//! The server's state agrees with its log at the edges: sites changed by commands, older policy
//! revisions, consent records removed by retention, a writer that died; and the edges an attacker reaches
//! (CORS per site, forged forwarding headers, minting consent ids).

mod common;

use std::collections::BTreeMap;

use actix_web::test::{self as atest, TestRequest};
use assent::domain::consent::{Action, ConsentId, ConsentRecord, add_months};
use assent::domain::visits::visitor_key;
use common::*;
use serde_json::json;

const DAY: i64 = 86_400;

async fn event_status<S, B>(svc: &S, id: &str) -> u16
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    post(
        svc,
        "/api/event",
        &event_body("demo", id, "pageview", "https://localhost/"),
    )
    .await
    .0
}

#[actix_web::test]
async fn a_site_removed_and_added_again_takes_no_old_consent_id() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    assert_eq!(event_status(&svc, &id).await, 202);
    app.with_database(|db| {
        assert!(db.remove_site("demo").unwrap());
        let cfg = assent::domain::site::SiteConfig::new_default(
            "demo",
            vec!["localhost".into(), "127.0.0.1".into()],
        );
        db.add_site("demo", &cfg, assent::now()).unwrap();
    });
    // Before the server's registry noticed, and after: no consent record, no event.
    assert_eq!(event_status(&svc, &id).await, 403);
    app.state.refresh_sites().await.unwrap();
    assert_eq!(event_status(&svc, &id).await, 403);
    assert_eq!(app.count("events"), 0);
    assert_eq!(app.count("consents"), 0);
}

#[actix_web::test]
async fn a_grant_from_an_older_policy_revision_is_refused_until_asked_again() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    assert_eq!(event_status(&svc, &id).await, 202);
    app.with_database(|db| {
        let cfg = db.site("demo").unwrap().unwrap().config;
        assert_eq!(
            db.update_site("demo", &cfg, true, assent::now()).unwrap(),
            2
        );
    });
    app.state.refresh_sites().await.unwrap();
    let (status, body) = post(
        &svc,
        "/api/event",
        &event_body("demo", &id, "pageview", "https://localhost/"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("revision"),
        "{body}"
    );
    let (status, _) = post(
        &svc,
        "/api/consent",
        &json!({"site": "demo", "consent_id": id, "revision": 2, "action": "accept_all"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(event_status(&svc, &id).await, 202);
    assert_eq!(app.count("events"), 2);
}

#[actix_web::test]
async fn export_and_erasure_outlive_the_consent_records_retention_removed() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let now = assent::now();
    let id = ConsentId::random().unwrap();
    let site = app.state.sites.get("demo").unwrap();
    // A choice made over a year ago; the visitor came back last month.
    let made = time::OffsetDateTime::from_unix_timestamp(now - 380 * DAY).unwrap();
    let visitor = visitor_key(&site.secret, id);
    let policy_hash = site.policy_hash.clone();
    app.with_database(|db| {
        let mut seeder = db.seeder("demo").unwrap();
        seeder
            .consent(&ConsentRecord {
                consent_id: id,
                site: "demo".into(),
                created_at: made,
                revision: 1,
                policy_hash,
                choices: BTreeMap::from([("analytics".to_string(), true)]),
                action: Action::AcceptAll,
                language: None,
                page_path: None,
                expires_at: add_months(made, 13),
            })
            .unwrap();
        let visit = plain_event("demo", now - 30 * DAY, "pageview", "/back");
        seeder.visit(visitor, &[visit]).unwrap();
        seeder.commit().unwrap();
    });
    let r = app.state.store.purge(now - 379 * DAY, now).await.unwrap();
    assert_eq!((r.consent_records, r.visits), (1, 0));

    let uri = format!("/api/visitor/{id}");
    let (status, export) = call(&svc, TestRequest::get().uri(&uri)).await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["visits"].as_array().unwrap().len(), 1);
    assert_eq!(export["events"][0]["path"], "/back");
    let res = atest::call_service(&svc, TestRequest::delete().uri(&uri).to_request()).await;
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(app.count("events") + app.count("visits"), 0);
    let (status, _) = call(&svc, TestRequest::get().uri(&uri)).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn a_dead_writer_is_reported_by_healthz_and_writes_answer_503() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let res = atest::call_service(&svc, TestRequest::get().uri("/healthz").to_request()).await;
    assert_eq!(res.status().as_u16(), 200);
    app.state.store.crash_writer().await;
    app.state.store.writer_stopped().await;
    for req in [
        TestRequest::get(),
        TestRequest::default().method(actix_web::http::Method::HEAD),
    ] {
        let res = atest::call_service(&svc, req.uri("/healthz").to_request()).await;
        assert_eq!(res.status().as_u16(), 503);
    }
    let (status, body) = post(
        &svc,
        "/api/event",
        &event_body("demo", &id, "pageview", "https://localhost/"),
    )
    .await;
    assert_eq!(status, 503, "{body}");
}

#[actix_web::test]
async fn the_server_exits_with_an_error_when_its_writer_dies() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), &[]);
    let (state, writer) = assent::state::AppState::open(settings).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let serving = actix_web::rt::spawn(assent::commands::serve::serve(
        state.clone(),
        writer,
        listener,
    ));
    state.store.crash_writer().await;
    let result = serving.await.unwrap();
    let err = result.expect_err("the server stops with an error");
    assert!(err.to_string().contains("writer"), "{err}");
}

#[actix_web::test]
async fn methods_and_api_headers() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let head = TestRequest::default()
        .method(actix_web::http::Method::HEAD)
        .uri("/healthz");
    let res = atest::call_service(&svc, head.to_request()).await;
    assert_eq!(res.status().as_u16(), 200);
    let res = atest::call_service(&svc, TestRequest::post().uri("/healthz").to_request()).await;
    assert_eq!(res.status().as_u16(), 405);
    let (status, body) = call(&svc, TestRequest::put().uri("/api/event")).await;
    assert_eq!(status, 405);
    assert!(
        body["error"].as_str().unwrap().contains("not allowed"),
        "{body}"
    );
    let (status, body) = call(&svc, TestRequest::get().uri("/api/nothing-here")).await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());

    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    for uri in [format!("/api/consent/{id}"), format!("/api/visitor/{id}")] {
        let res = atest::call_service(&svc, TestRequest::get().uri(&uri).to_request()).await;
        assert_eq!(res.status().as_u16(), 200);
        let h = res.headers();
        assert_eq!(h.get("cache-control").unwrap(), "no-store", "{uri}");
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff", "{uri}");
    }
}

#[actix_web::test]
async fn cors_answers_each_site_only_for_its_own_pages() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let consent_from = |site: &str, origin: &str| {
        post_json(
            "/api/consent",
            &json!({"site": site, "revision": 1, "action": "accept_all"}),
        )
        .insert_header(("origin", origin.to_string()))
    };
    // "other" is served on https://other.example only.
    for bad in [
        "http://other.example",
        "https://other.example:8443",
        "https://other.example.",
        "foo://other.example",
        "https://localhost",
    ] {
        let (status, body) = call(&svc, consent_from("other", bad)).await;
        assert_eq!(status, 403, "{bad}: {body}");
    }
    let res = atest::call_service(
        &svc,
        consent_from("other", "https://other.example").to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers().get("access-control-allow-origin").unwrap(),
        "https://other.example"
    );

    // A demo consent read from another site's page: answered, but not readable there.
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let read = |origin: &str| {
        TestRequest::get()
            .uri(&format!("/api/consent/{id}"))
            .insert_header(("origin", origin.to_string()))
            .to_request()
    };
    let res = atest::call_service(&svc, read("https://other.example")).await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = atest::call_service(&svc, read("http://localhost:3000")).await;
    assert_eq!(
        res.headers().get("access-control-allow-origin").unwrap(),
        "http://localhost:3000"
    );
    // Preflights name no site: any site's page gets one, strangers do not.
    let preflight = |origin: &str| {
        TestRequest::default()
            .method(actix_web::http::Method::OPTIONS)
            .uri("/api/event")
            .insert_header(("origin", origin.to_string()))
            .to_request()
    };
    let res = atest::call_service(&svc, preflight("https://other.example")).await;
    assert!(res.headers().get("access-control-allow-origin").is_some());
    let res = atest::call_service(&svc, preflight("https://evil.example")).await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn behind_a_proxy_only_its_header_counts() {
    let app = TestApp::with_env(&[
        ("ASSENT_TRUSTED_PROXIES", "10.0.0.0/8"),
        ("ASSENT_RATE_LIMIT", "5"),
    ]);
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    // One client behind the proxy, pretending with each request to come from another network.
    let mut limited = 0;
    for i in 0..60 {
        let req = post_json(
            "/api/event",
            &event_body("demo", &id, "pageview", "https://localhost/"),
        )
        .peer_addr("10.0.0.1:1000".parse().unwrap())
        .insert_header(("x-forwarded-for", "198.51.100.7"))
        .insert_header(("forwarded", format!("for=203.0.{i}.1")));
        let (status, _) = call(&svc, req).await;
        assert!(status == 202 || status == 429, "{status}");
        limited += (status == 429) as usize;
    }
    assert!(
        limited >= 30,
        "the proxy's header decides the network: {limited} limited"
    );
}

#[actix_web::test]
async fn new_consent_ids_are_limited_far_below_events() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let mut issued = 0;
    let mut limited = 0;
    for _ in 0..40 {
        let (status, _) = post(
            &svc,
            "/api/consent",
            &json!({"site": "demo", "revision": 1, "action": "accept_all"}),
        )
        .await;
        match status {
            200 => issued += 1,
            429 => limited += 1,
            other => panic!("{other}"),
        }
    }
    assert!(
        issued < 20 && limited > 20,
        "{issued} issued, {limited} limited"
    );
    // The network's visitors who already have an id go on as before.
    assert_eq!(event_status(&svc, &id).await, 202);
    let (status, _) = post(
        &svc,
        "/api/consent",
        &json!({"site": "demo", "consent_id": id, "revision": 1, "action": "reject_all"}),
    )
    .await;
    assert_eq!(status, 200);
}
