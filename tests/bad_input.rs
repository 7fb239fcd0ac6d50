//! Every kind of bad input gets a clear 4xx with a message saying what is wrong, and stores nothing.

mod common;

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
