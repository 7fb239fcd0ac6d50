//! The dashboard in-process (and, in `real_server`, the binary): the helpers and the small hand-made
//! dataset shared by the modules under `tests/dashboard/`, one per part of the dashboard.

mod common;
#[path = "common/dataset.rs"]
mod dataset;

#[path = "dashboard/accounts.rs"]
mod accounts;
#[path = "dashboard/consent_log.rs"]
mod consent_log;
#[path = "dashboard/figures.rs"]
mod figures;
#[path = "dashboard/page_safety.rs"]
mod page_safety;
#[path = "dashboard/real_server.rs"]
mod real_server;
#[path = "dashboard/site_admin.rs"]
mod site_admin;

use std::collections::BTreeMap;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{self, TestRequest};
use assent::domain::consent::{Action, ConsentId, ConsentRecord, add_months};
use assent::domain::dashboard::chart::format_metric;
use assent::domain::event::NewEvent;
use common::page::{Got, send};
use common::*;
use serde_json::{Value, json};

const ADMIN: (&str, &str) = ("ana@example.com", "a long password");
const VIEWER: (&str, &str) = ("vic@example.com", "another long one");

fn get(path: &str, session: Option<&str>) -> TestRequest {
    let req = TestRequest::get()
        .uri(path)
        .peer_addr("192.0.2.10:5000".parse().unwrap());
    match session {
        Some(s) => req.insert_header(("cookie", format!("assent_session={s}"))),
        None => req,
    }
}

fn post_form(path: &str, cookie: Option<String>, fields: &[(&str, &str)]) -> TestRequest {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        body.append_pair(k, v);
    }
    let req = TestRequest::post()
        .uri(path)
        .peer_addr("192.0.2.10:5000".parse().unwrap())
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .set_payload(body.finish());
    match cookie {
        Some(c) => req.insert_header(("cookie", c)),
        None => req,
    }
}

/// Logs in through the form; the answer to the POST.
async fn try_login<S, B>(svc: &S, email: &str, password: &str) -> Got
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let form = send(svc, get("/login", None)).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let nonce = form.cookie("assent_login").expect("login cookie");
    assert_eq!(form.csrf(), nonce);
    send(
        svc,
        post_form(
            "/login",
            Some(format!("assent_login={nonce}")),
            &[("email", email), ("password", password), ("csrf", &nonce)],
        ),
    )
    .await
}

/// Logs in; the session token.
async fn login<S, B>(svc: &S, who: (&str, &str)) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let got = try_login(svc, who.0, who.1).await;
    assert_eq!(got.status, 303, "{}", got.body);
    assert_eq!(got.header("location"), Some("/"));
    got.cookie("assent_session").expect("session cookie")
}

fn ts(s: &str) -> i64 {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

/// One event of the dataset.
struct Hit {
    who: u128,
    at: &'static str,
    name: &'static str,
    path: &'static str,
    referrer: Option<&'static str>,
    country: Option<&'static str>,
    prop: Option<(&'static str, &'static str)>,
}

const XSS_PATH: &str = "/<script>alert(1)</script>";
const XSS_REFERRER: &str = "evil.example/<script>alert(2)</script>";
const XSS_PROP: &str = "<script>alert(3)</script>\"'><img src=x onerror=alert(4)>";
const FORMULA: &str = "=HYPERLINK(\"http://evil.example\",\"x\")";

fn hits() -> Vec<Hit> {
    let h = |who, at, name, path, referrer, country, prop| Hit {
        who,
        at,
        name,
        path,
        referrer,
        country,
        prop,
    };
    vec![
        h(
            1,
            "2026-10-05T08:00:00Z",
            "pageview",
            "/",
            Some("google.com"),
            Some("FR"),
            None,
        ),
        h(
            1,
            "2026-10-05T08:02:00Z",
            "pageview",
            "/pricing",
            Some("google.com"),
            Some("FR"),
            None,
        ),
        h(
            1,
            "2026-10-05T08:03:00Z",
            "Signup",
            "/pricing",
            Some("google.com"),
            Some("FR"),
            Some(("plan", XSS_PROP)),
        ),
        h(
            2,
            "2026-10-05T12:00:00Z",
            "pageview",
            XSS_PATH,
            Some(XSS_REFERRER),
            Some("DE"),
            None,
        ),
        h(
            3,
            "2026-10-06T07:00:00Z",
            "pageview",
            "/pricing",
            None,
            Some("FR"),
            None,
        ),
        h(
            3,
            "2026-10-06T07:01:00Z",
            "Signup",
            "/pricing",
            None,
            Some("FR"),
            Some(("plan", "free")),
        ),
        h(
            4,
            "2026-10-07T10:00:00Z",
            "pageview",
            FORMULA,
            None,
            None,
            None,
        ),
        h(4, "2026-10-07T10:01:00Z", "pageview", "/", None, None, None),
    ]
}

const FROM: &str = "2026-10-05";
const TO: &str = "2026-10-07";

/// The demo and other sites, "shop" with the dataset and "fresh" with nothing; an admin (with a Stats
/// API key) and a viewer of "demo".
async fn app() -> (TestApp, String) {
    app_with(&[]).await
}

async fn app_with(env: &[(&str, &str)]) -> (TestApp, String) {
    let mut all = vec![("ASSENT_RATE_LIMIT", "0")];
    all.extend_from_slice(env);
    let app = TestApp::build(&all, |db| {
        let cfg = assent::domain::site::SiteConfig::new_default("Shop", vec!["shop.test".into()]);
        db.add_site("shop", &cfg, assent::now()).unwrap();
        let cfg = assent::domain::site::SiteConfig::new_default("Fresh", vec!["fresh.test".into()]);
        db.add_site("fresh", &cfg, assent::now()).unwrap();
        db.add_user(ADMIN.0, ADMIN.1, true, 1).unwrap();
        db.add_user(VIEWER.0, VIEWER.1, false, 1).unwrap();
        db.grant_site(VIEWER.0, "demo").unwrap();
    });
    let key = app.with_database(|db| db.create_key(ADMIN.0, "ci", 1).unwrap());
    let store = &app.state.store;
    for n in 1..=4u128 {
        let record = consent_record(&app, "shop", n, Action::AcceptAll, &[("analytics", true)]);
        store.append_consent(record).await.unwrap();
    }
    for h in hits() {
        let e = NewEvent {
            referrer: h.referrer.map(String::from),
            source: h.referrer.map(String::from),
            country: h.country.map(String::from),
            props: h.prop.map(|(k, v)| json!({ k: v }).to_string()),
            prop_pairs: h
                .prop
                .map(|(k, v)| vec![(k.to_string(), v.to_string())])
                .unwrap_or_default(),
            ..plain_event("shop", ts(h.at), h.name, h.path)
        };
        assert!(store.record_event(ConsentId(h.who), e).await.unwrap());
    }
    (app, key)
}

/// Text as the templates escape it (minijinja's HTML escaping, which includes `/`).
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
}

fn period() -> String {
    format!("period=custom&from={FROM}&to={TO}")
}

/// The headline figure of a metric as the page shows it.
fn shown(body: &str, metric: &str) -> String {
    let marker = format!("data-metric=\"{metric}\">");
    let at = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {metric} in the page"));
    let rest = &body[at + marker.len()..];
    rest[..rest.find('<').unwrap()].to_string()
}

async fn api<S, B>(svc: &S, key: &str, body: Value) -> Value
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let req = TestRequest::post()
        .uri("/api/v2/query")
        .insert_header(("authorization", format!("Bearer {key}")))
        .insert_header(("content-type", "application/json"))
        .set_payload(body.to_string());
    let (status, body) = call(svc, req).await;
    assert_eq!(status, 200, "{body}");
    body
}

const METRICS: [&str; 6] = [
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
];
