//! The server's log against the real binary: `--log-format json` writes one JSON object a line, every
//! request has an id that its answer's `X-Request-Id` and its log lines share (a trusted proxy's sane id is
//! kept, anything else replaced), and no line holds a client address or a consent id.

mod common;

use common::*;
use serde_json::{Value, json};

const CLIENT: &str = "203.0.113.77";

/// Sends a request through a pretend proxy on 127.0.0.1; returns (status, X-Request-Id, body).
fn send(
    server: &Server,
    method: &str,
    path: &str,
    request_id: Option<&str>,
    body: Option<&Value>,
) -> (u16, String, String) {
    let url = format!("{}{path}", server.url);
    let agent = Server::agent();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(&url)
        .header("x-forwarded-for", CLIENT)
        .header("user-agent", UA)
        .header("content-type", "application/json");
    if let Some(id) = request_id {
        req = req.header("x-request-id", id);
    }
    let req = req
        .body(body.map(|b| b.to_string()).unwrap_or_default())
        .unwrap();
    let mut res = agent.run(req).expect("request");
    let id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    (res.status().as_u16(), id, text)
}

/// The log lines that name `request_id`, once there are `n` of them.
fn lines_with(server: &Server, request_id: &str, n: usize) -> Vec<String> {
    wait_for(10, || {
        let lines: Vec<String> = server
            .stderr_text()
            .lines()
            .filter(|l| l.contains(request_id))
            .map(str::to_string)
            .collect();
        (lines.len() >= n).then_some(lines)
    })
}

#[test]
fn json_lines_with_request_ids_and_no_addresses_or_consent_ids() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--log-format", "json", "--trusted-proxy", "127.0.0.1"],
        &[("RUST_LOG", "debug,actix_server=warn")],
    );

    // A proxy's sane id is kept and echoed; the request's log line carries it.
    let (status, id, _) = send(&server, "GET", "/healthz", Some("edge-42_Ab"), None);
    assert_eq!((status, id.as_str()), (200, "edge-42_Ab"));
    let line = &lines_with(&server, "edge-42_Ab", 1)[0];
    let v: Value = serde_json::from_str(line).expect("a JSON line");
    assert_eq!(v["span"]["request_id"], "edge-42_Ab", "{line}");
    assert_eq!(v["fields"]["route"], "/healthz", "{line}");

    // An id that is not a sane token is replaced, never echoed or logged.
    for bad in ["has space", "semi;colon", &"x".repeat(65)] {
        let (_, id, _) = send(&server, "GET", "/healthz", Some(bad), None);
        assert!(!id.is_empty() && id != bad, "{bad:?} -> {id:?}");
        lines_with(&server, &id, 1);
    }

    // A visitor's whole life: the id of each request is in its lines, the consent id in none.
    let (status, _, body) = send(
        &server,
        "POST",
        "/api/consent",
        None,
        Some(&json!({"site": "demo", "revision": 1, "action": "accept_all", "choices": {}})),
    );
    assert_eq!(status, 200, "{body}");
    let consent_id = serde_json::from_str::<Value>(&body).unwrap()["consent_id"]
        .as_str()
        .unwrap()
        .to_string();
    let event = event_body("demo", &consent_id, "pageview", "https://localhost/a");
    let mut ids = Vec::new();
    for (method, path, body) in [
        ("POST", "/api/event".to_string(), Some(&event)),
        ("GET", format!("/api/consent/{consent_id}"), None),
        ("GET", format!("/api/visitor/{consent_id}"), None),
        ("DELETE", format!("/api/visitor/{consent_id}"), None),
    ] {
        let (status, id, _) = send(&server, method, &path, None, body);
        assert!(status < 300, "{method} {path}: {status}");
        assert!(!id.is_empty());
        ids.push(id);
    }
    for id in &ids {
        let line = &lines_with(&server, id, 1)[0];
        assert!(line.contains("\"route\":\"/api/"), "{line}");
    }
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        ids.len(),
        "one id per request"
    );

    let log = server.stderr_text();
    for line in log.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    assert!(
        !log.contains(&consent_id),
        "a consent id was logged:\n{log}"
    );
    assert!(
        !log.contains("203.0.113"),
        "a client address was logged:\n{log}"
    );
}

#[test]
fn text_lines_carry_the_request_id_and_ids_from_clients_are_replaced() {
    let dir = tempfile::tempdir().unwrap();
    // No trusted proxy: a client's own X-Request-Id is not believed.
    let server = Server::start(dir.path(), &[], &[("RUST_LOG", "assent=debug")]);
    let (status, id, _) = send(&server, "GET", "/healthz", Some("client-chosen"), None);
    assert_eq!(status, 200);
    assert!(!id.is_empty() && id != "client-chosen", "{id}");
    let line = &lines_with(&server, &id, 1)[0];
    assert!(line.contains(&format!("request_id={id}")), "{line}");
    assert!(!server.stderr_text().contains("client-chosen"));
}
