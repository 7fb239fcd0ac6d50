//! Every kind of bad input gets a clear 4xx with a message saying what is wrong, and stores nothing.

mod common;

use std::collections::BTreeMap;

use actix_web::test::TestRequest;
use common::*;
use serde_json::json;

#[actix_web::test]
async fn bad_input_gets_a_clear_4xx_and_stores_nothing() {
    let app = TestApp::new();
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let consents_before = app.count("consents");
    let ok = event_body("demo", &id, "pageview", "https://localhost/");
    let with = |k: &str, v: serde_json::Value| {
        let mut b = ok.clone();
        b[k] = v;
        b.to_string().into_bytes()
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b.to_string().into_bytes()
    };
    let big = with("props", json!({"x": "y".repeat(9000)}));
    // (what, path, body, content type, expected status, words the error must contain)
    type Case<'a> = (&'a str, &'a str, Vec<u8>, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("malformed JSON", "/api/event", b"{\"site\": ".to_vec(), "application/json", 400, "invalid JSON"),
        ("not an object", "/api/event", b"[1,2]".to_vec(), "application/json", 400, "invalid JSON"),
        ("invalid UTF-8", "/api/event", b"{\"site\": \"\xff\xfe\"}".to_vec(), "application/json", 400, "UTF-8"),
        ("empty body", "/api/event", Vec::new(), "application/json", 400, "empty"),
        ("missing site", "/api/event", without("site"), "application/json", 400, "missing field `site`"),
        ("missing name", "/api/event", without("name"), "text/plain", 400, "missing field `name`"),
        ("missing consent id", "/api/event", without("consent_id"), "application/json", 400, "consent_id"),
        ("unknown site", "/api/event", with("site", json!("nope")), "application/json", 404, "unknown site"),
        ("oversized body", "/api/event", big, "application/json", 413, "larger than"),
        ("bad consent id", "/api/event", with("consent_id", json!("not-an-id")), "application/json", 400, "bad consent id"),
        ("wrong type", "/api/event", with("screen_width", json!("wide")), "application/json", 400, "invalid JSON"),
        ("bad url", "/api/event", with("url", json!("javascript:alert(1)")), "application/json", 400, "url"),
        ("foreign url", "/api/event", with("url", json!("https://evil.example/")), "application/json", 400, "domains"),
        ("long name", "/api/event", with("name", json!("n".repeat(500))), "application/json", 400, "name"),
        ("nested props", "/api/event", with("props", json!({"a": {"b": 1}})), "application/json", 400, "props.a"),
        ("form body", "/api/event", ok.to_string().into_bytes(), "application/x-www-form-urlencoded", 415, "content type"),
        ("consent: malformed", "/api/consent", b"{oops".to_vec(), "application/json", 400, "invalid JSON"),
        ("consent: bad action", "/api/consent", json!({"site": "demo", "revision": 1, "action": "maybe"}).to_string().into_bytes(), "application/json", 400, "unknown variant"),
        ("consent: unknown category", "/api/consent", json!({"site": "demo", "revision": 1, "action": "custom", "choices": {"spying": true}}).to_string().into_bytes(), "application/json", 400, "unknown category"),
        ("consent: contradiction", "/api/consent", json!({"site": "demo", "revision": 1, "action": "reject_all", "choices": {"analytics": true}}).to_string().into_bytes(), "application/json", 400, "contradict"),
        ("consent: refuse necessary", "/api/consent", json!({"site": "demo", "revision": 1, "action": "custom", "choices": {"necessary": false}}).to_string().into_bytes(), "application/json", 400, "required"),
        ("consent: bad id", "/api/consent", json!({"site": "demo", "revision": 1, "action": "accept_all", "consent_id": "x"}).to_string().into_bytes(), "application/json", 400, "bad consent id"),
        ("consent: unknown site", "/api/consent", json!({"site": "zzz", "revision": 1, "action": "accept_all"}).to_string().into_bytes(), "application/json", 404, "unknown site"),
        ("consent: missing revision", "/api/consent", json!({"site": "demo", "action": "accept_all"}).to_string().into_bytes(), "application/json", 400, "revision"),
        ("consent: formula as page", "/api/consent", json!({"site": "demo", "revision": 1, "action": "accept_all", "url": "=HYPERLINK(\"https://evil.example\",\"x\")"}).to_string().into_bytes(), "application/json", 400, "url"),
        ("consent: page on another domain", "/api/consent", json!({"site": "demo", "revision": 1, "action": "accept_all", "url": "https://evil.example/x"}).to_string().into_bytes(), "application/json", 400, "site's domains"),
        ("consent: control character in page", "/api/consent", json!({"site": "demo", "revision": 1, "action": "accept_all", "url": "/a\u{0}b"}).to_string().into_bytes(), "application/json", 400, "control characters"),
        ("CR LF in props", "/api/event", with("props", json!({"a": "x\r\nSet-Cookie: y"})), "application/json", 400, "control characters"),
        ("NUL in a props key", "/api/event", with("props", json!({"a\u{0}": "x"})), "application/json", 400, "control characters"),
        ("consent: bad language", "/api/consent", json!({"site": "demo", "revision": 1, "action": "accept_all", "language": "<script>"}).to_string().into_bytes(), "application/json", 400, "language"),
    ];
    for (what, path, body, ctype, want, needle) in cases {
        let req = TestRequest::post()
            .uri(path)
            .insert_header(("content-type", ctype))
            .insert_header(("user-agent", UA))
            .set_payload(body);
        let (status, body) = call(&svc, req).await;
        assert_eq!(status, want, "{what}: {body}");
        let msg = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no error message in {body}"));
        assert!(
            msg.contains(needle),
            "{what}: {msg:?} should mention {needle:?}"
        );
    }
    for (what, path) in [
        ("GET bad id", "/api/consent/xyz"),
        ("visitor bad id", "/api/visitor/ABC"),
    ] {
        let (status, body) = call(&svc, TestRequest::get().uri(path)).await;
        assert_eq!(status, 400, "{what}");
        assert!(body["error"].as_str().unwrap().contains("bad consent id"));
    }
    let (status, _) = call(&svc, TestRequest::delete().uri("/api/visitor/nope")).await;
    assert_eq!(status, 400);
    assert_eq!(app.count("events"), 0);
    assert_eq!(app.count("visits"), 0);
    assert_eq!(app.count("consents"), consents_before);
}

/// Mutated and random bodies: whatever arrives, the answer is never a 5xx, and a body that was not
/// accepted stores nothing.
#[actix_web::test]
async fn random_and_mutated_bodies_never_cause_a_server_error() {
    let app = TestApp::with_env(&[("ASSENT_RATE_LIMIT", "0")]);
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let seeds = [
        event_body("demo", &id, "pageview", "https://localhost/a?utm_source=x"),
        json!({"site": "demo", "consent_id": id, "name": "Signup", "url": "https://localhost/", "props": {"a": 1, "b": "c"},
               "referrer": "https://www.google.com/", "screen_width": 390, "engaged_ms": 1200}),
        json!({"site": "demo", "revision": 1, "action": "custom", "choices": {"analytics": true}, "language": "fr", "url": "/x"}),
    ];
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut accepted_events = 0;
    let mut accepted_consents = 0;
    for round in 0..1500 {
        let seed = seeds[round % seeds.len()].to_string().into_bytes();
        let mut body = seed.clone();
        match next() % 5 {
            // Flip, insert or delete a few bytes.
            0..=2 => {
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % body.len().max(1);
                    match next() % 3 {
                        0 => body[at] = next() as u8,
                        1 => body.insert(at, b"{}[]\",:\\\x00\xff0-e9"[(next() % 14) as usize]),
                        _ => {
                            body.remove(at);
                        }
                    }
                }
            }
            // Random bytes.
            3 => body = (0..next() % 300).map(|_| next() as u8).collect(),
            // Deep nesting.
            _ => body = format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        }
        let path = if round % 3 == 2 {
            "/api/consent"
        } else {
            "/api/event"
        };
        let ctype =
            ["application/json", "text/plain", "text/plain;charset=UTF-8"][(next() % 3) as usize];
        let req = TestRequest::post()
            .uri(path)
            .insert_header(("content-type", ctype))
            .insert_header(("user-agent", UA))
            .peer_addr("192.0.2.10:5000".parse().unwrap())
            .set_payload(body.clone());
        let (status, answer) = call(&svc, req).await;
        assert!(
            (200..500).contains(&status),
            "{status} for {:?}: {answer}",
            String::from_utf8_lossy(&body)
        );
        if status >= 400 {
            assert!(answer["error"].is_string(), "{status} without a message");
        }
        match (path, status) {
            ("/api/event", 202) if answer["stored"] == true => accepted_events += 1,
            ("/api/consent", 200) => accepted_consents += 1,
            _ => {}
        }
    }
    // Some mutations leave a valid body (a changed letter in a path), most do not: both paths ran.
    assert!(
        accepted_events > 10 && accepted_consents > 10,
        "{accepted_events} {accepted_consents}"
    );
    assert_eq!(app.count("events") as usize, accepted_events);
    assert_eq!(app.count("consents") as usize, accepted_consents + 1);
}

/// A JSON body with `field` (a JSON pointer) set to a string whose bytes are not UTF-8.
fn with_bad_bytes(body: &serde_json::Value, field: &str) -> Vec<u8> {
    const MARK: &str = "MARK-FOR-BAD-BYTES";
    let mut b = body.clone();
    match field.strip_prefix("key:") {
        // An object's key: `key:/props` replaces the object with one whose key is the mark.
        Some(object) => *b.pointer_mut(object).unwrap() = json!({ MARK: "x" }),
        None => *b.pointer_mut(field).unwrap() = json!(MARK),
    }
    let text = b.to_string();
    let at = text.find(MARK).unwrap();
    let mut bytes = text.as_bytes()[..at].to_vec();
    bytes.extend_from_slice(b"ok\xff\xfe\xc3\x28");
    bytes.extend_from_slice(&text.as_bytes()[at + MARK.len()..]);
    bytes
}

/// Bytes that are not UTF-8 in every field of both ingestion bodies, lone surrogates spelled as JSON
/// escapes, and in the headers that are read: a 400 (or, for a header, the request treated as though
/// the header were absent or unreadable), and nothing stored.
#[actix_web::test]
async fn invalid_utf8_in_every_field_is_refused() {
    let app = TestApp::with_env(&[("ASSENT_RATE_LIMIT", "0")]);
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let consents = app.count("consents");
    let event = json!({"site": "demo", "consent_id": id, "name": "pageview", "url": "https://localhost/",
        "referrer": "https://www.google.com/", "props": {"plan": "pro"}});
    let choice = json!({"site": "demo", "consent_id": id, "revision": 1, "action": "custom",
        "choices": {"analytics": true}, "language": "en", "url": "/"});
    let mut bodies = Vec::new();
    for f in [
        "/site",
        "/consent_id",
        "/name",
        "/url",
        "/referrer",
        "/props/plan",
        "key:/props",
    ] {
        bodies.push(("/api/event", f, with_bad_bytes(&event, f)));
    }
    for f in [
        "/site",
        "/consent_id",
        "/action",
        "/language",
        "/url",
        "key:/choices",
    ] {
        bodies.push(("/api/consent", f, with_bad_bytes(&choice, f)));
    }
    for (path, field, body) in bodies {
        let (status, answer) = call(&svc, post_json(path, &json!(null)).set_payload(body)).await;
        assert_eq!(status, 400, "{path} {field}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("UTF-8"),
            "{path} {field}: {answer}"
        );
        // The same field holding a lone surrogate, which no UTF-8 text can hold either.
        let text = String::from_utf8_lossy(&with_bad_bytes(
            if path == "/api/event" {
                &event
            } else {
                &choice
            },
            field,
        ))
        .replace('\u{FFFD}', "\\ud800");
        let (status, answer) = call(&svc, post_json(path, &json!(null)).set_payload(text)).await;
        assert_eq!(status, 400, "{path} {field} surrogate: {answer}");
    }
    // Headers: an unreadable User-Agent is no browser's (accepted, not stored); an unreadable Origin is
    // refused; an unreadable forwarding header from a peer that is not a proxy changes nothing.
    let header = |name: &'static str, value: &'static [u8]| {
        post_json("/api/event", &event).insert_header((
            name,
            actix_web::http::header::HeaderValue::from_bytes(value).unwrap(),
        ))
    };
    let (status, answer) = call(&svc, header("user-agent", b"Mozilla/5.0 \xff\xfe")).await;
    assert_eq!(
        (status, answer["stored"].as_bool()),
        (202, Some(false)),
        "{answer}"
    );
    let (status, answer) = call(&svc, header("origin", b"https://localhost\xff")).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("Origin"));
    let (status, answer) = call(&svc, header("x-forwarded-for", b"203.0.113.\xff")).await;
    assert_eq!(
        (status, answer["stored"].as_bool()),
        (202, Some(true)),
        "{answer}"
    );
    assert_eq!(app.count("events"), 1, "only the well-formed event");
    assert_eq!(app.count("consents"), consents);
}

/// Nesting deeper than the JSON reader follows, on every endpoint that reads JSON and in every place a
/// body may nest (the top, props, choices, a Stats API filter): a 400, nothing stored, no overflow.
#[actix_web::test]
async fn deep_json_nesting_is_refused() {
    let app = TestApp::with_env(&[("ASSENT_RATE_LIMIT", "0")]);
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let consents = app.count("consents");
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let cases = [
        ("/api/event", deep(3000)),
        (
            "/api/event",
            format!(
                r#"{{"site":"demo","consent_id":"{id}","name":"x","url":"https://localhost/","props":{{"a":{}}}}}"#,
                deep(200)
            ),
        ),
        ("/api/consent", deep(3000)),
        (
            "/api/consent",
            format!(
                r#"{{"site":"demo","revision":1,"action":"custom","choices":{{"analytics":{}}}}}"#,
                deep(200)
            ),
        ),
        ("/api/v2/query", deep(30_000)),
        (
            "/api/v2/query",
            format!(
                r#"{{"site_id":"demo","metrics":["visitors"],"date_range":"7d","filters":{}}}"#,
                deep(500)
            ),
        ),
        ("/api/v2/queries", format!("[{}]", deep(30_000))),
    ];
    for (path, body) in cases {
        let req = post_json(path, &json!(null))
            .insert_header(("authorization", "Bearer assent_nope"))
            .set_payload(body.clone());
        let (status, answer) = call(&svc, req).await;
        assert_eq!(status, 400, "{path} {}: {answer}", &body[..40]);
        assert!(
            answer["error"].as_str().unwrap().contains("JSON"),
            "{answer}"
        );
    }
    assert_eq!(app.count("events"), 0);
    assert_eq!(app.count("consents"), consents);
}

/// Numbers past every type's range, fractions where integers go, and numbers JSON cannot hold: a 400
/// naming the field, or, where the value is in range (a property), stored exactly as sent.
#[actix_web::test]
async fn huge_numbers_are_refused_or_kept_exactly() {
    let app = TestApp::with_env(&[("ASSENT_RATE_LIMIT", "0")]);
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let consents = app.count("consents");
    let event = |field: &str, raw: &str| {
        format!(
            r#"{{"site":"demo","consent_id":"{id}","name":"pageview","url":"https://localhost/","{field}":{raw}}}"#
        )
    };
    let choice = |raw: &str| format!(r#"{{"site":"demo","revision":{raw},"action":"accept_all"}}"#);
    let refused = [
        (
            "/api/event",
            event("screen_width", "4294967296"),
            "expected u32",
        ),
        ("/api/event", event("screen_width", "-1"), "invalid JSON"),
        ("/api/event", event("screen_width", "1.5"), "invalid JSON"),
        ("/api/event", event("screen_width", "1e308"), "invalid JSON"),
        (
            "/api/event",
            event("screen_width", "100001"),
            "screen_width",
        ),
        (
            "/api/event",
            event("engaged_ms", "18446744073709551616"),
            "invalid JSON",
        ),
        (
            "/api/event",
            event("engaged_ms", "18446744073709551615"),
            "engaged_ms",
        ),
        ("/api/event", event("engaged_ms", "1e999"), "invalid JSON"),
        (
            "/api/event",
            event("props", r#"{"n": 1e999}"#),
            "invalid JSON",
        ),
        (
            "/api/event",
            event("props", r#"{"n": -1e400}"#),
            "invalid JSON",
        ),
        ("/api/consent", choice("4294967296"), "invalid JSON"),
        ("/api/consent", choice("-1"), "invalid JSON"),
        ("/api/consent", choice("1e3"), "invalid JSON"),
        (
            "/api/consent",
            choice("99999999999999999999999999999999"),
            "invalid JSON",
        ),
    ];
    for (path, body, needle) in refused {
        let (status, answer) = call(
            &svc,
            post_json(path, &json!(null)).set_payload(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {answer}");
        let msg = answer["error"].as_str().unwrap();
        assert!(
            msg.contains(needle),
            "{body}: {msg:?} should name {needle:?}"
        );
    }
    assert_eq!(app.count("events"), 0);
    assert_eq!(app.count("consents"), consents);
    // In range: the largest numbers JSON holds, kept as the reader gave them.
    let body = event(
        "props",
        r#"{"max": 1.7976931348623157e308, "min": -9223372036854775808, "u": 18446744073709551615}"#,
    );
    let (status, answer) = call(
        &svc,
        post_json("/api/event", &json!(null)).set_payload(body),
    )
    .await;
    assert_eq!(
        (status, answer["stored"].as_bool()),
        (202, Some(true)),
        "{answer}"
    );
    let stored: String = app
        .with_sql(|c| c.value("SELECT props FROM events", &[]))
        .unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        stored,
        json!({"max": 1.7976931348623157e308, "min": -9223372036854775808i64, "u": 18446744073709551615u64})
    );
}

/// Origins a hostile page might hope pass for the site's own: each is refused on the writing endpoints
/// and never echoed in `Access-Control-Allow-Origin`, on answers and preflights alike.
#[actix_web::test]
async fn forged_origins_are_refused_and_never_echoed() {
    let app = TestApp::with_env(&[("ASSENT_RATE_LIMIT", "0")]);
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    let consents = app.count("consents");
    let forged = [
        "https://localhost.evil.example",
        "https://evillocalhost",
        "https://localhost@evil.example",
        "https://evil.example/https://localhost",
        "https://evil.example#https://localhost",
        "https://evil.example?https://localhost",
        "https://localhost/",
        "https://LOCALHOST",
        "https://localhost:443",
        "https://localhost.",
        "https://127.0.0.1.evil.example",
        "https://127.0.0.1@evil.example",
        "https://other.example",
        "https://www.other.example",
        "http://evil.example:80",
        "file://localhost",
        "null",
        "https://localhost https://evil.example",
        "https://localhost, https://evil.example",
        "https://xn--lcalhost-0za",
        "",
    ];
    for origin in forged {
        let ev = post_json(
            "/api/event",
            &event_body("demo", &id, "pageview", "https://localhost/"),
        )
        .insert_header(("origin", origin))
        .to_request();
        let res = actix_web::test::call_service(&svc, ev).await;
        assert_eq!(res.status().as_u16(), 403, "event from {origin:?}");
        assert!(res.headers().get("access-control-allow-origin").is_none());
        let choice = post_json(
            "/api/consent",
            &json!({"site": "demo", "revision": 1, "action": "accept_all"}),
        )
        .insert_header(("origin", origin))
        .to_request();
        let res = actix_web::test::call_service(&svc, choice).await;
        assert_eq!(res.status().as_u16(), 403, "consent from {origin:?}");
        // Reads answer (holding the id is the authorisation) but a foreign page cannot read them. (A
        // preflight names no site: the pages of every site get one, so "other" is left out there.)
        let preflight_ok = origin.contains("other.example");
        for req in [
            TestRequest::get().uri(&format!("/api/consent/{id}")),
            TestRequest::default()
                .method(actix_web::http::Method::OPTIONS)
                .uri("/api/event")
                .insert_header(("access-control-request-method", "POST")),
        ] {
            let res = actix_web::test::call_service(
                &svc,
                req.insert_header(("origin", origin))
                    .peer_addr("192.0.2.10:5000".parse().unwrap())
                    .to_request(),
            )
            .await;
            assert!(res.status().as_u16() < 300, "{origin:?}: {}", res.status());
            let preflight = res.request().method() == actix_web::http::Method::OPTIONS;
            assert!(
                res.headers().get("access-control-allow-origin").is_none()
                    || (preflight && preflight_ok),
                "{origin:?} echoed"
            );
        }
    }
    assert_eq!(app.count("events"), 0);
    assert_eq!(app.count("consents"), consents);
}

/// `X-Forwarded-For` and `Forwarded` from a peer that is not a trusted proxy are ignored: a client
/// cannot spread its requests over invented networks to escape the rate limit or the limit on new
/// consent ids. From a trusted proxy, the networks it names are limited each on its own.
#[actix_web::test]
async fn forwarding_headers_from_untrusted_peers_do_not_escape_limits() {
    let app = TestApp::with_env(&[
        ("ASSENT_RATE_LIMIT", "2"),
        ("ASSENT_TRUSTED_PROXIES", "10.0.0.0/8"),
    ]);
    let svc = service(&app).await;
    let forwarded = |req: TestRequest, i: usize| {
        req.insert_header(("x-forwarded-for", format!("198.51.{i}.7")))
            .insert_header(("forwarded", format!("for=203.0.{i}.9")))
    };
    // New consent ids: two a second, a burst of ten.
    let mut ids = Vec::new();
    let mut statuses = Vec::new();
    for i in 0..40 {
        let req = post_json(
            "/api/consent",
            &json!({"site": "demo", "revision": 1, "action": "accept_all"}),
        );
        let (s, body) = call(&svc, forwarded(req, i)).await;
        statuses.push(s);
        if s == 200 {
            ids.push(body["consent_id"].as_str().unwrap().to_string());
        }
    }
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 20,
        "{statuses:?}"
    );
    assert_eq!(app.count("consents") as usize, ids.len());
    // Events: two a second, a burst of ten.
    let mut statuses = Vec::new();
    for i in 0..60 {
        let req = post_json(
            "/api/event",
            &event_body("demo", &ids[0], "pageview", "https://localhost/"),
        );
        statuses.push(call(&svc, forwarded(req, i)).await.0);
    }
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 30,
        "{statuses:?}"
    );
    assert_eq!(
        app.count("events") as usize,
        accepted,
        "a 429 stores nothing"
    );
    // Through the trusted proxy, each forwarded network has a bucket of its own.
    for i in 0..30 {
        let req = post_json(
            "/api/event",
            &event_body("demo", &ids[0], "pageview", "https://localhost/"),
        )
        .peer_addr("10.0.0.1:4000".parse().unwrap())
        .insert_header(("x-forwarded-for", format!("198.51.{}.7", 100 + i)));
        let (s, body) = call(&svc, req).await;
        assert_eq!(s, 202, "{body}");
    }
}

/// Consent ids are 128 random bits, and trying them is limited like ingestion: a guesser gets 404s, then
/// 429s, never someone's record; a guessed id sent with a choice is never adopted (a fresh one is
/// issued, under the stricter limit on new ids).
#[actix_web::test]
async fn consent_ids_cannot_be_guessed_quickly() {
    let app = TestApp::with_env(&[("ASSENT_RATE_LIMIT", "5")]);
    let svc = service(&app).await;
    let owner = post_json(
        "/api/consent",
        &json!({"site": "demo", "revision": 1, "action": "accept_all"}),
    )
    .peer_addr("198.51.100.1:1".parse().unwrap());
    let (s, body) = call(&svc, owner).await;
    assert_eq!(s, 200);
    let real = body["consent_id"].as_str().unwrap().to_string();
    let guess = |i: u32| format!("{:032x}", 0x5eed_0000_u128 + i as u128);
    let mut statuses = BTreeMap::new();
    for i in 0..120 {
        let req = match i % 3 {
            0 => TestRequest::get().uri(&format!("/api/consent/{}", guess(i))),
            1 => TestRequest::get().uri(&format!("/api/visitor/{}", guess(i))),
            _ => TestRequest::delete().uri(&format!("/api/visitor/{}", guess(i))),
        };
        let (s, _) = call(&svc, req.peer_addr("192.0.2.44:1".parse().unwrap())).await;
        *statuses.entry(s).or_insert(0) += 1;
    }
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        vec![404, 429],
        "{statuses:?}"
    );
    assert!(statuses[&429] >= 60, "{statuses:?}");
    // A guessed id with a choice: a fresh id each time, until the limit on new ids.
    let mut issued = Vec::new();
    let mut refused = 0;
    for i in 0..30 {
        let req = post_json(
            "/api/consent",
            &json!({"site": "demo", "revision": 1, "action": "accept_all", "consent_id": guess(i)}),
        )
        .peer_addr("192.0.2.45:1".parse().unwrap());
        let (s, body) = call(&svc, req).await;
        match s {
            200 => issued.push(body["consent_id"].as_str().unwrap().to_string()),
            429 => refused += 1,
            other => panic!("{other}: {body}"),
        }
    }
    assert!(refused >= 15, "{refused} refused of 30");
    for (i, id) in issued.iter().enumerate() {
        assert_ne!(id, &guess(i as u32));
        assert_ne!(id, &real);
    }
    assert_eq!(app.count("consents") as usize, 1 + issued.len());
    // The owner, from their own network, still reads their record.
    let (s, body) = call(
        &svc,
        TestRequest::get()
            .uri(&format!("/api/consent/{real}"))
            .peer_addr("198.51.100.1:1".parse().unwrap()),
    )
    .await;
    assert_eq!((s, body["consent_id"].as_str()), (200, Some(real.as_str())));
}
