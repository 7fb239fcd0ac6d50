//! The HTTP API in-process: consent recording, opt-in-only collection (invariant 2), bad input, CORS,
//! rate limiting, the served script and pages.

mod common;

use actix_web::test::TestRequest;
use common::*;
use serde_json::json;

#[actix_web::test]
async fn consent_is_recorded_and_read_back() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let (status, body) = post(
        &svc,
        "/api/consent",
        &json!({"site": "demo", "revision": 1, "action": "custom", "choices": {"analytics": true},
                    "language": "fr", "url": "https://localhost/shop?secret=1"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["consent_id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(
        body["choices"],
        json!({"necessary": true, "analytics": true, "marketing": false, "preferences": false})
    );
    assert_eq!(body["revision"], 1);
    let expires = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let months = (expires - time::OffsetDateTime::now_utc()).whole_days();
    assert!(
        (390..=400).contains(&months),
        "13 months ahead, got {months} days"
    );

    let (status, state) = call(&svc, TestRequest::get().uri(&format!("/api/consent/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(state["action"], "custom");
    assert_eq!(state["choices"]["analytics"], true);

    // The log row proves the choice: time, revision, policy hash, language, path without query.
    let (hash, lang, path, action): (String, String, String, String) = app
        .with_sql(|c| {
            c.row(
                "SELECT policy_hash, language, page_path, action FROM consents",
                &[],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
        })
        .unwrap()
        .unwrap();
    assert_eq!(hash, app.state.sites.get("demo").unwrap().policy_hash);
    assert_eq!(
        (lang.as_str(), path.as_str(), action.as_str()),
        ("fr", "/shop", "custom")
    );

    // Same id again: appended to the same history.
    let (_, again) = post(
        &svc,
        "/api/consent",
        &json!({"site": "demo", "consent_id": id, "revision": 1, "action": "withdraw"}),
    )
    .await;
    assert_eq!(again["consent_id"], id.as_str());
    assert_eq!(app.count("consents"), 2);
    let (_, state) = call(&svc, TestRequest::get().uri(&format!("/api/consent/{id}"))).await;
    assert_eq!(state["action"], "withdraw");
    assert_eq!(state["choices"]["analytics"], false);

    // An unknown id, or another site's, gets a fresh one.
    let unknown = "0123456789abcdef0123456789abcdef";
    let (_, fresh) = post(
        &svc,
        "/api/consent",
        &json!({"site": "demo", "consent_id": unknown, "revision": 1, "action": "reject_all"}),
    )
    .await;
    assert_ne!(fresh["consent_id"], unknown);
    let (_, other) = post(
        &svc,
        "/api/consent",
        &json!({"site": "other", "consent_id": id, "revision": 1, "action": "accept_all"}),
    )
    .await;
    assert_ne!(other["consent_id"], id.as_str());

    let (status, _) = call(
        &svc,
        TestRequest::get().uri(&format!("/api/consent/{unknown}")),
    )
    .await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn stale_revision_is_refused() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let (status, body) = post(
        &svc,
        "/api/consent",
        &json!({"site": "demo", "revision": 7, "action": "accept_all"}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("revision"));
    assert_eq!(app.count("consents"), 0);
}

#[actix_web::test]
async fn events_need_a_current_analytics_grant() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let url = "https://localhost/pricing";

    // No consent at all.
    let nobody = "0123456789abcdef0123456789abcdef";
    let (status, body) = post(
        &svc,
        "/api/event",
        &event_body("demo", nobody, "pageview", url),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // Refused.
    let refused = consent(&svc, "demo", "reject_all", json!({})).await;
    let (status, _) = post(
        &svc,
        "/api/event",
        &event_body("demo", &refused, "pageview", url),
    )
    .await;
    assert_eq!(status, 403);

    // Marketing only.
    let marketing = consent(&svc, "demo", "custom", json!({"marketing": true})).await;
    let (status, _) = post(
        &svc,
        "/api/event",
        &event_body("demo", &marketing, "pageview", url),
    )
    .await;
    assert_eq!(status, 403);

    // Granted: stored.
    let granted = consent(&svc, "demo", "accept_all", json!({})).await;
    let (status, body) = post(
        &svc,
        "/api/event",
        &event_body("demo", &granted, "pageview", url),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["stored"], true);
    assert_eq!(app.count("events"), 1);

    // Another site's consent.
    let (status, _) = post(
        &svc,
        "/api/event",
        &event_body("other", &granted, "pageview", "https://other.example/"),
    )
    .await;
    assert_eq!(status, 403);

    // Withdrawn.
    let (status, _) = post(
        &svc,
        "/api/consent",
        &json!({"site": "demo", "consent_id": granted, "revision": 1, "action": "withdraw"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &svc,
        "/api/event",
        &event_body("demo", &granted, "pageview", url),
    )
    .await;
    assert_eq!(status, 403);

    // Expired: a grant whose validity ended.
    let old = assent::domain::consent::ConsentId::random().unwrap();
    let then = time::OffsetDateTime::now_utc() - time::Duration::days(400);
    app.state
        .store
        .append_consent(assent::domain::consent::ConsentRecord {
            consent_id: old,
            site: "demo".into(),
            created_at: then,
            revision: 1,
            policy_hash: "h".into(),
            choices: [
                ("necessary".to_string(), true),
                ("analytics".to_string(), true),
            ]
            .into(),
            action: assent::domain::consent::Action::AcceptAll,
            language: None,
            page_path: None,
            expires_at: assent::domain::consent::add_months(then, 13),
        })
        .await
        .unwrap();
    let (status, body) = post(
        &svc,
        "/api/event",
        &event_body("demo", &old.to_string(), "pageview", url),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("expired"));

    assert_eq!(
        app.count("events"),
        1,
        "nothing but the consented event was stored"
    );
}

#[actix_web::test]
async fn events_are_enriched_and_grouped_into_visits() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let mut first = event_body(
        "demo",
        &id,
        "pageview",
        "https://localhost/landing/?utm_source=newsletter&utm_campaign=spring&token=secret#x",
    );
    first["referrer"] = json!("https://www.google.co.uk/search?q=assent");
    let (status, _) = post(&svc, "/api/event", &first).await;
    assert_eq!(status, 202);
    let (status, _) = post(
        &svc,
        "/api/event",
        &event_body("demo", &id, "pageview", "https://localhost/pricing"),
    )
    .await;
    assert_eq!(status, 202);
    let mut custom = event_body("demo", &id, "Signup", "https://localhost/pricing");
    custom["props"] = json!({"plan": "pro", "seats": 3});
    let (status, _) = post(&svc, "/api/event", &custom).await;
    assert_eq!(status, 202);

    let (status, export) = call(&svc, TestRequest::get().uri(&format!("/api/visitor/{id}"))).await;
    assert_eq!(status, 200);
    let visits = export["visits"].as_array().unwrap();
    assert_eq!(visits.len(), 1, "{export}");
    let v = &visits[0];
    assert_eq!(v["entry_page"], "/landing");
    assert_eq!(v["exit_page"], "/pricing");
    assert_eq!(v["pageviews"], 2);
    assert_eq!(v["events"], 3);
    assert_eq!(v["source"], "Newsletter");
    assert_eq!(v["referrer"], "google.co.uk");
    assert_eq!(v["utm_campaign"], "spring");
    assert_eq!(v["browser"], "Chrome");
    assert_eq!(v["device"], "Desktop");
    let events = export["events"].as_array().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0]["path"], "/landing");
    assert_eq!(events[2]["name"], "Signup");
    assert_eq!(events[2]["props"], json!({"plan": "pro", "seats": 3}));
    let stored = String::from_utf8_lossy(&db_bytes(app.dir.path())).into_owned();
    assert!(
        !stored.contains("token=secret"),
        "query strings other than UTM are dropped"
    );
    assert!(
        !stored.contains("Windows NT 10.0"),
        "raw user agents are not stored"
    );

    // A bot is answered but not stored.
    let req = post_json(
        "/api/event",
        &event_body("demo", &id, "pageview", "https://localhost/"),
    )
    .insert_header((
        "user-agent",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ));
    let (status, body) = call(&svc, req).await;
    assert_eq!((status, body["stored"].as_bool()), (202, Some(false)));
    assert_eq!(app.count("events"), 3);
}

#[actix_web::test]
async fn cors_is_limited_to_site_domains() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let pre = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api/event")
        .insert_header(("origin", "http://localhost:3000"))
        .insert_header(("access-control-request-method", "POST"))
        .to_request();
    let res = actix_web::test::call_service(&svc, pre).await;
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(
        res.headers().get("access-control-allow-origin").unwrap(),
        "http://localhost:3000"
    );

    let pre = TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/api/event")
        .insert_header(("origin", "https://evil.example"))
        .to_request();
    let res = actix_web::test::call_service(&svc, pre).await;
    assert!(res.headers().get("access-control-allow-origin").is_none());

    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let req = post_json(
        "/api/event",
        &event_body("demo", &id, "pageview", "https://localhost/"),
    )
    .insert_header(("origin", "https://evil.example"));
    let (status, body) = call(&svc, req).await;
    assert_eq!(status, 403, "{body}");
    // A page of another site may not record consent for this one either.
    let req = post_json(
        "/api/consent",
        &json!({"site": "demo", "revision": 1, "action": "accept_all"}),
    )
    .insert_header(("origin", "https://other.example"));
    let (status, _) = call(&svc, req).await;
    assert_eq!(status, 403);

    let req = post_json(
        "/api/event",
        &event_body("demo", &id, "pageview", "https://localhost/"),
    )
    .insert_header(("origin", "http://localhost:8000"))
    .insert_header(("content-type", "text/plain;charset=UTF-8"))
    .to_request();
    let res = actix_web::test::call_service(&svc, req).await;
    assert_eq!(res.status().as_u16(), 202);
    assert_eq!(
        res.headers().get("access-control-allow-origin").unwrap(),
        "http://localhost:8000"
    );
    assert_eq!(app.count("events"), 1);
}

#[actix_web::test]
async fn rate_limit_answers_429_per_network() {
    let app = TestApp::with_env(&[("ASSENT_RATE_LIMIT", "2")]);
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let (s, _) = post(
            &svc,
            "/api/event",
            &event_body("demo", &id, "pageview", "https://localhost/"),
        )
        .await;
        statuses.push(s);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let stored = app.count("events") as usize;
    assert_eq!(
        stored,
        statuses.iter().filter(|s| **s == 202).count(),
        "a 429 stores nothing"
    );
    // Another network is not limited.
    let req = post_json(
        "/api/event",
        &event_body("demo", &id, "pageview", "https://localhost/"),
    )
    .peer_addr("198.51.100.7:1".parse().unwrap());
    let (status, _) = call(&svc, req).await;
    assert_eq!(status, 202);
}

#[actix_web::test]
async fn script_is_served_with_settings_and_etag() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let res = actix_web::test::call_service(
        &svc,
        TestRequest::get().uri("/s/demo/assent.js").to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let etag = res
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        res.headers()
            .get("cache-control")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("max-age=300")
    );
    let body = String::from_utf8(actix_web::test::read_body(res).await.to_vec()).unwrap();
    assert!(body.contains("\"site\":\"demo\""));
    assert!(body.contains("\"revision\":1"));
    assert!(body.contains("\"gpc\":false"));
    assert!(!body.contains("__ASSENT_CONFIG__"));
    let res = actix_web::test::call_service(
        &svc,
        TestRequest::get()
            .uri("/s/demo/assent.js")
            .insert_header(("if-none-match", etag.as_str()))
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 304);
    let res = actix_web::test::call_service(
        &svc,
        TestRequest::get()
            .uri("/s/demo/assent.js")
            .insert_header(("sec-gpc", "1"))
            .to_request(),
    )
    .await;
    let body = String::from_utf8(actix_web::test::read_body(res).await.to_vec()).unwrap();
    assert!(body.contains("\"gpc\":true"));
    let res = actix_web::test::call_service(
        &svc,
        TestRequest::get().uri("/s/nope/assent.js").to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 404);
    let res =
        actix_web::test::call_service(&svc, TestRequest::get().uri("/s/assent.css").to_request())
            .await;
    assert_eq!(res.status().as_u16(), 200);
    // Served compressed to browsers that accept it.
    let res = actix_web::test::call_service(
        &svc,
        TestRequest::get()
            .uri("/s/demo/assent.js")
            .insert_header(("accept-encoding", "gzip"))
            .to_request(),
    )
    .await;
    assert_eq!(res.headers().get("content-encoding").unwrap(), "gzip");
    let gz = actix_web::test::read_body(res).await;
    assert!(
        gz.len() < 12_000 && gz.starts_with(&[0x1f, 0x8b]),
        "{} bytes",
        gz.len()
    );
}

#[actix_web::test]
async fn pages_render() {
    let app = TestApp::new();
    let svc = service(&app).await;
    for (uri, needle) in [
        ("/healthz", "ok"),
        ("/demo", "/s/demo/assent.js"),
        ("/s/demo/privacy", "assent_consent"),
        ("/s/demo/privacy?lang=fr", "lang=\"fr\""),
    ] {
        let res =
            actix_web::test::call_service(&svc, TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(res.status().as_u16(), 200, "{uri}");
        let body = String::from_utf8(actix_web::test::read_body(res).await.to_vec()).unwrap();
        assert!(body.contains(needle), "{uri} lacks {needle}");
    }
    let res =
        actix_web::test::call_service(&svc, TestRequest::get().uri("/s/nope/privacy").to_request())
            .await;
    assert_eq!(res.status().as_u16(), 404);
}
