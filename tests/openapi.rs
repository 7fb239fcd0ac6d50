//! `GET /api/openapi.json`: a valid OpenAPI 3.1 document whose paths and methods are exactly the public
//! routes the app registers (`assent::http::PUBLIC_ROUTES`, the same table that registers them), and each
//! of those routes is really served under that pattern.

mod common;

use std::collections::BTreeSet;

use actix_web::test::{self, TestRequest};
use common::*;
use serde_json::Value;

async fn document() -> (String, Value) {
    let app = TestApp::new();
    let svc = service(&app).await;
    let res = test::call_service(
        &svc,
        TestRequest::get().uri("/api/openapi.json").to_request(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    );
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    let json = serde_json::from_str(&text).expect("the document is JSON");
    (text, json)
}

fn registered() -> BTreeSet<(String, String)> {
    assent::http::PUBLIC_ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

#[actix_web::test]
async fn the_document_describes_exactly_the_registered_routes() {
    let (text, json) = document().await;
    assert!(
        json["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        json["openapi"]
    );
    let spec = oas3::from_json(&text).expect("the document reads as OpenAPI 3.1");
    spec.validate_version().expect("a 3.1.x version");
    assert_eq!(spec.info.title, "Assent");
    assert_eq!(spec.info.version, env!("CARGO_PKG_VERSION"));

    let described: BTreeSet<(String, String)> = spec
        .operations()
        .map(|(path, method, _)| (method.as_str().to_ascii_lowercase(), path))
        .collect();
    let routes = registered();
    let missing: Vec<_> = routes.difference(&described).collect();
    let extra: Vec<_> = described.difference(&routes).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "registered but not described: {missing:?}\ndescribed but not registered: {extra:?}"
    );
    for path in [
        "/api/consent",
        "/api/event",
        "/api/visitor/{id}",
        "/api/v2/query",
        "/metrics",
        "/healthz",
    ] {
        assert!(routes.iter().any(|(_, p)| p == path), "{path} is public");
    }

    for (path, method, op) in spec.operations() {
        let what = format!("{method} {path}");
        assert!(!op.responses(&spec).is_empty(), "{what}: no responses");
        op.request_body(&spec)
            .unwrap_or_else(|e| panic!("{what}: request body: {e}"));
        let params = op
            .parameters(&spec)
            .unwrap_or_else(|e| panic!("{what}: parameters: {e}"));
        // Every `{name}` of the path is declared as a path parameter, and no other.
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let declared: BTreeSet<&str> = params
            .iter()
            .filter(|p| p.location == oas3::spec::ParameterIn::Path)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(in_path, declared, "{what}: path parameters");
    }

    // Every reference resolves.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&json, &mut all);
    assert!(!all.is_empty(), "schemas are referenced");
    for r in all {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external ref {r}"));
        assert!(json.pointer(pointer).is_some(), "{r} does not resolve");
    }
    // The bearer schemes the operations name exist.
    for scheme in ["api_key", "metrics_token"] {
        assert_eq!(
            json["components"]["securitySchemes"][scheme]["scheme"], "bearer",
            "{scheme}"
        );
    }
}

/// Each listed route is served under its own pattern: after a request to it, the metrics count that
/// pattern with that method (a route the table lists but the app served elsewhere would show another).
#[actix_web::test]
async fn every_listed_route_is_served_under_its_pattern() {
    let app = TestApp::new();
    let svc = service(&app).await;
    for (method, path) in assent::http::PUBLIC_ROUTES {
        let uri = path
            .replace("{site}", "demo")
            .replace("{id}", "0123456789abcdef0123456789abcdef")
            .replace("{endpoint}", "aggregate");
        let method = actix_web::http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .expect("a method");
        let req = TestRequest::default()
            .method(method)
            .uri(&uri)
            .peer_addr("127.0.0.1:4000".parse().unwrap());
        test::call_service(&svc, req.to_request()).await;
    }
    let res = test::call_service(
        &svc,
        TestRequest::get()
            .uri("/metrics")
            .peer_addr("127.0.0.1:4000".parse().unwrap())
            .to_request(),
    )
    .await;
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    let families = common::prometheus::parse(&text, false);
    for (method, path) in assent::http::PUBLIC_ROUTES {
        let method = method.to_ascii_uppercase();
        assert!(
            common::prometheus::value(
                &families,
                "assent_http_requests_total",
                &[("method", method.as_str()), ("route", path)]
            )
            .is_some(),
            "{method} {path} was not served under that pattern\n{text}"
        );
    }
}
