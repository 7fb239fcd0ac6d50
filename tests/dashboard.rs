//! The dashboard in-process: logins (success, failure, limits, CSRF, cookie flags, logout, password
//! change), who sees which site, the security headers of every page, escaping of what websites sent
//! (HTML, attributes, SVG, CSV), and figures equal to the Stats API's for a small hand-made dataset.

mod common;
#[path = "common/dataset.rs"]
mod dataset;

use std::collections::BTreeMap;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{self, TestRequest};
use assent::domain::consent::{Action, ConsentId, ConsentRecord, add_months};
use assent::domain::dashboard::chart::format_metric;
use assent::domain::event::NewEvent;
use common::*;
use serde_json::{Value, json};

const ADMIN: (&str, &str) = ("ana@example.com", "a long password");
const VIEWER: (&str, &str) = ("vic@example.com", "another long one");

/// What a page answered: status, headers (lower-case names) and body.
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    /// The body's size as sent.
    bytes: usize,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value a `Set-Cookie` gives a cookie.
    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .iter()
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap_or("").to_string())
    }

    /// The value of the first hidden `csrf` field of the page.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body));
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

async fn send<S, B>(svc: &S, req: TestRequest) -> Got
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(svc, req.to_request()).await;
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let raw = test::read_body(res).await;
    Got {
        status,
        headers,
        body: String::from_utf8_lossy(&raw).into_owned(),
        bytes: raw.len(),
    }
}

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
    let site = app.state.sites.get("shop").unwrap();
    let now = time::OffsetDateTime::now_utc();
    for n in 1..=4u128 {
        store
            .append_consent(ConsentRecord {
                consent_id: ConsentId(n),
                site: "shop".into(),
                created_at: now,
                revision: 1,
                policy_hash: site.policy_hash.clone(),
                choices: BTreeMap::from([("analytics".into(), true)]),
                action: Action::AcceptAll,
                language: None,
                page_path: None,
                expires_at: add_months(now, 13),
            })
            .await
            .unwrap();
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

#[actix_web::test]
async fn login_succeeds_fails_and_sets_a_safe_cookie() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    assert_eq!(
        send(&svc, get("/", None)).await.header("location"),
        Some("/login")
    );
    let wrong = try_login(&svc, ADMIN.0, "not the password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong e-mail address or password"));
    assert!(wrong.cookie("assent_session").is_none());
    let ok = try_login(&svc, ADMIN.0, ADMIN.1).await;
    assert_eq!(ok.status, 303);
    let set = ok
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("assent_session="))
        .unwrap()
        .to_string();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let token = ok.cookie("assent_session").unwrap();
    // Only a digest of the token is stored.
    let stored: String = app
        .with_sql(|c| c.value("SELECT token_hash FROM sessions", &[]))
        .unwrap();
    assert_ne!(stored, token);
    let home = send(&svc, get("/", Some(&token))).await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains(ADMIN.0));
    // Each login gets a new token.
    assert_ne!(login(&svc, ADMIN).await, token);

    let (https, _) = app_with(&[("ASSENT_PUBLIC_URL", "https://stats.example")]).await;
    let svc = service(&https).await;
    let ok = try_login(&svc, ADMIN.0, ADMIN.1).await;
    let set = ok
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("assent_session="))
        .unwrap()
        .to_string();
    assert!(set.contains("; Secure"), "{set}");
}

#[actix_web::test]
async fn login_attempts_are_limited_with_a_clear_message() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..7 {
        let got = try_login(&svc, VIEWER.0, "guessing wrong").await;
        statuses.push(got.status);
        last = Some(got);
    }
    assert_eq!(&statuses[..5], [401; 5]);
    assert_eq!(statuses[6], 429);
    assert!(last.unwrap().body.contains("Too many login attempts"));
    // Even the right password waits now: the account is limited, not just the guesser.
    assert_eq!(try_login(&svc, VIEWER.0, VIEWER.1).await.status, 429);
    // Another account from another network is not affected.
    let form = send(&svc, get("/login", None)).await;
    let nonce = form.cookie("assent_login").unwrap();
    let other = send(
        &svc,
        post_form(
            "/login",
            Some(format!("assent_login={nonce}")),
            &[("email", ADMIN.0), ("password", ADMIN.1), ("csrf", &nonce)],
        )
        .peer_addr("198.51.100.7:4000".parse().unwrap()),
    )
    .await;
    assert_eq!(other.status, 303);
}

#[actix_web::test]
async fn forms_without_their_csrf_token_change_nothing() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    // Login without the token, or with a token that is not the cookie's.
    let refused = send(
        &svc,
        post_form("/login", None, &[("email", ADMIN.0), ("password", ADMIN.1)]),
    )
    .await;
    assert_eq!(refused.status, 403);
    let form = send(&svc, get("/login", None)).await;
    let nonce = form.cookie("assent_login").unwrap();
    let forged = send(
        &svc,
        post_form(
            "/login",
            Some(format!("assent_login={nonce}")),
            &[
                ("email", ADMIN.0),
                ("password", ADMIN.1),
                ("csrf", &"0".repeat(64)),
            ],
        ),
    )
    .await;
    assert_eq!(forged.status, 403);
    assert!(forged.cookie("assent_session").is_none());
    assert_eq!(app.count("sessions"), 0);

    // Logout without the token leaves the session open.
    let token = login(&svc, ADMIN).await;
    let cookie = Some(format!("assent_session={token}"));
    assert_eq!(
        send(&svc, post_form("/logout", cookie.clone(), &[]))
            .await
            .status,
        403
    );
    assert_eq!(send(&svc, get("/", Some(&token))).await.status, 200);
    // A cross-site form with the right token is refused too.
    let page = send(&svc, get("/", Some(&token))).await;
    let csrf = page.csrf();
    let cross = send(
        &svc,
        post_form("/logout", cookie.clone(), &[("csrf", &csrf)])
            .insert_header(("sec-fetch-site", "cross-site")),
    )
    .await;
    assert_eq!(cross.status, 403);
    // Other forms too: adding a user.
    let before = app.count("users");
    let add = send(
        &svc,
        post_form(
            "/settings/users",
            cookie.clone(),
            &[
                ("email", "eve@example.com"),
                ("password", "long enough pw"),
                ("role", "admin"),
            ],
        ),
    )
    .await;
    assert_eq!(add.status, 403);
    assert_eq!(app.count("users"), before);

    // With it, logout ends the session.
    let out = send(&svc, post_form("/logout", cookie, &[("csrf", &csrf)])).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/login"));
    let after = send(&svc, get("/", Some(&token))).await;
    assert_eq!(after.status, 303);
    assert_eq!(after.header("location"), Some("/login"));
}

#[actix_web::test]
async fn a_password_change_ends_the_other_sessions() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let here = login(&svc, VIEWER).await;
    let elsewhere = login(&svc, VIEWER).await;
    let settings = send(&svc, get("/settings", Some(&here))).await;
    assert_eq!(settings.status, 200);
    let csrf = settings.csrf();
    let cookie = Some(format!("assent_session={here}"));
    let wrong = send(
        &svc,
        post_form(
            "/settings/password",
            cookie.clone(),
            &[
                ("csrf", &csrf),
                ("current", "not it at all"),
                ("new_password", "a brand new one"),
                ("confirm", "a brand new one"),
            ],
        ),
    )
    .await;
    assert_eq!(wrong.status, 403);
    assert_eq!(send(&svc, get("/", Some(&elsewhere))).await.status, 200);
    let changed = send(
        &svc,
        post_form(
            "/settings/password",
            cookie,
            &[
                ("csrf", &csrf),
                ("current", VIEWER.1),
                ("new_password", "a brand new one"),
                ("confirm", "a brand new one"),
            ],
        ),
    )
    .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    let fresh = changed
        .cookie("assent_session")
        .expect("a new session here");
    assert_eq!(send(&svc, get("/", Some(&elsewhere))).await.status, 303);
    assert_eq!(send(&svc, get("/", Some(&here))).await.status, 303);
    assert_eq!(send(&svc, get("/", Some(&fresh))).await.status, 200);
    assert_eq!(try_login(&svc, VIEWER.0, VIEWER.1).await.status, 401);
    login(&svc, (VIEWER.0, "a brand new one")).await;
}

#[actix_web::test]
async fn admins_manage_users_and_keys_and_removal_ends_sessions() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let admin = login(&svc, ADMIN).await;
    let viewer = login(&svc, VIEWER).await;
    let cookie = Some(format!("assent_session={admin}"));
    let page = send(&svc, get("/settings", Some(&admin))).await;
    let csrf = page.csrf();
    assert!(page.body.contains(VIEWER.0));
    // A viewer cannot manage users.
    let vpage = send(&svc, get("/settings", Some(&viewer))).await;
    assert!(!vpage.body.contains(ADMIN.0));
    let denied = send(
        &svc,
        post_form(
            "/settings/users",
            Some(format!("assent_session={viewer}")),
            &[
                ("csrf", &vpage.csrf()),
                ("email", "x@example.com"),
                ("password", "long enough pw"),
            ],
        ),
    )
    .await;
    assert_eq!(denied.status, 403);

    let added = send(
        &svc,
        post_form(
            "/settings/users",
            cookie.clone(),
            &[
                ("csrf", &csrf),
                ("email", "new@example.com"),
                ("password", "long enough pw"),
                ("role", "viewer"),
                ("site", "shop"),
            ],
        ),
    )
    .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let newbie = login(&svc, ("new@example.com", "long enough pw")).await;
    assert_eq!(
        send(&svc, get("/sites/shop", Some(&newbie))).await.status,
        200
    );

    // Keys: shown once, then only their names; revoked keys stop working.
    let created = send(
        &svc,
        post_form(
            "/settings/keys",
            cookie.clone(),
            &[("csrf", &csrf), ("name", "reporting")],
        ),
    )
    .await;
    assert_eq!(created.status, 200);
    let at = created.body.find("assent_").expect("the new key");
    let key = created.body[at..at + 7 + 48].to_string();
    assert_eq!(
        call(
            &svc,
            TestRequest::get()
                .uri("/api/v1/stats/realtime/visitors?site_id=shop")
                .insert_header(("authorization", format!("Bearer {key}")))
        )
        .await
        .0,
        200
    );
    assert!(
        !send(&svc, get("/settings", Some(&admin)))
            .await
            .body
            .contains(&key)
    );
    let id: i64 = app
        .with_sql(|c| c.value("SELECT id FROM api_keys WHERE name = 'reporting'", &[]))
        .unwrap();
    let revoked = send(
        &svc,
        post_form(
            &format!("/settings/keys/{id}/revoke"),
            cookie.clone(),
            &[("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(
        call(
            &svc,
            TestRequest::get()
                .uri("/api/v1/stats/realtime/visitors?site_id=shop")
                .insert_header(("authorization", format!("Bearer {key}")))
        )
        .await
        .0,
        401
    );

    let uid: i64 = app
        .with_sql(|c| c.value("SELECT id FROM users WHERE email = 'new@example.com'", &[]))
        .unwrap();
    let removed = send(
        &svc,
        post_form(
            &format!("/settings/users/{uid}/remove"),
            cookie,
            &[("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(removed.status, 303);
    assert_eq!(send(&svc, get("/", Some(&newbie))).await.status, 303);
}

#[actix_web::test]
async fn a_viewer_sees_only_the_sites_granted() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, VIEWER).await;
    let home = send(&svc, get("/", Some(&token))).await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("/sites/demo?"));
    assert!(!home.body.contains("/sites/shop"));
    for path in [
        "/sites/shop",
        "/sites/shop/breakdown?panel=pages",
        "/sites/shop/export?panel=pages",
        "/sites/shop/realtime",
        "/sites/shop/consent",
        "/sites/nope",
    ] {
        let got = send(&svc, get(path, Some(&token))).await;
        assert_eq!(got.status, 404, "{path}");
        assert!(!got.body.contains("Shop"), "{path}");
    }
    assert_eq!(
        send(&svc, get("/sites/demo", Some(&token))).await.status,
        200
    );
    let admin = login(&svc, ADMIN).await;
    let home = send(&svc, get("/", Some(&admin))).await;
    for site in ["demo", "other", "shop", "fresh"] {
        assert!(home.body.contains(&format!("/sites/{site}?")), "{site}");
    }
}

#[actix_web::test]
async fn every_dashboard_page_has_the_security_headers() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let p = period();
    for (path, session) in [
        ("/login".to_string(), None),
        ("/".to_string(), Some(&token)),
        ("/".to_string(), None),
        (format!("/sites/shop?{p}"), Some(&token)),
        (
            format!("/sites/shop/breakdown?panel=countries&{p}"),
            Some(&token),
        ),
        (format!("/sites/shop/export?panel=pages&{p}"), Some(&token)),
        ("/sites/shop/realtime".to_string(), Some(&token)),
        ("/sites/shop/consent".to_string(), Some(&token)),
        ("/sites/fresh".to_string(), Some(&token)),
        ("/settings".to_string(), Some(&token)),
        ("/sites/nope".to_string(), Some(&token)),
        ("/sites/shop?period=8d".to_string(), Some(&token)),
    ] {
        let got = send(&svc, get(&path, session.map(String::as_str))).await;
        let csp = got
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP"));
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(
            got.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(got.header("referrer-policy"), Some("same-origin"), "{path}");
        assert_eq!(got.header("cache-control"), Some("no-store"), "{path}");
        if path.contains("/export") {
            assert!(
                got.header("content-disposition")
                    .unwrap()
                    .starts_with("attachment")
            );
            continue;
        }
        // No inline script or style on any page.
        assert!(!got.body.contains("<style"), "{path}");
        assert!(!got.body.contains(" style="), "{path}");
        assert!(!got.body.contains("<script>"), "{path}");
    }
    assert_eq!(
        send(&svc, get("/sites/shop?period=8d", Some(&token)))
            .await
            .status,
        400
    );
    let css = send(&svc, get("/assets/dashboard.css", None)).await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    assert!(css.body.contains("prefers-color-scheme:dark"));
    let js = send(&svc, get("/assets/dashboard.js", None)).await;
    assert!(
        js.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
}

#[actix_web::test]
async fn values_from_websites_are_escaped_everywhere() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let p = period();
    let mut pages = Vec::new();
    for path in [
        format!("/sites/shop?{p}"),
        format!("/sites/shop/breakdown?panel=pages&{p}"),
        format!("/sites/shop/breakdown?panel=referrers&{p}"),
        format!("/sites/shop/breakdown?panel=prop:plan&{p}"),
    ] {
        let got = send(&svc, get(&path, Some(&token))).await;
        assert_eq!(got.status, 200, "{path}: {}", got.body);
        for raw in ["<script>alert", "<img src=x", "\"'><img"] {
            assert!(!got.body.contains(raw), "{path} shows {raw} unescaped");
        }
        pages.push(got.body);
    }
    let all = pages.join("\n");
    for raw in [XSS_PATH, XSS_REFERRER, XSS_PROP] {
        assert!(all.contains(&html(raw)), "{raw} is not shown escaped");
    }
    // In the chart's SVG too (the titles of the property's rows are HTML; the chart's are its own).
    assert!(all.contains("<svg class=\"chart\""));
    // The filter link of a row carries the value percent-encoded.
    assert!(all.contains("f=event%3Apage%7Cis%7C%2F%3Cscript%3Ealert%281%29%3C%2Fscript%3E"));
}

#[actix_web::test]
async fn csv_exports_neutralise_formulas() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let got = send(
        &svc,
        get(
            &format!("/sites/shop/export?panel=pages&{}", period()),
            Some(&token),
        ),
    )
    .await;
    assert_eq!(got.status, 200);
    assert!(got.header("content-type").unwrap().starts_with("text/csv"));
    assert!(
        got.header("content-disposition")
            .unwrap()
            .contains("attachment")
    );
    let lines: Vec<&str> = got.body.lines().collect();
    assert_eq!(lines[0], "event:page,visitors,pageviews");
    assert!(
        lines.contains(&"\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",1,1"),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| !l.starts_with('=')));
    let series = send(
        &svc,
        get(
            &format!("/sites/shop/export?panel=timeseries&{}", period()),
            Some(&token),
        ),
    )
    .await;
    let lines: Vec<&str> = series.body.lines().collect();
    assert_eq!(
        lines[0],
        "time:day,visitors,visits,pageviews,bounce_rate,visit_duration"
    );
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[1].starts_with("2026-10-05,2,2,"), "{lines:?}");
}

#[actix_web::test]
async fn the_headline_equals_the_stats_api_and_filters_change_it() {
    let (app, key) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    for (filter, v2) in [
        ("", json!([])),
        (
            "&f=visit:country|is|FR",
            json!([["is", "visit:country", ["FR"]]]),
        ),
        (
            "&f=visit:country|is_not|FR",
            json!([["is_not", "visit:country", ["FR"]]]),
        ),
        (
            "&f=event:page|contains|PRIC",
            json!([["contains", "event:page", ["pric"], {"case_sensitive": false}]]),
        ),
    ] {
        let url = format!(
            "/sites/shop?{}&compare=none{}",
            period(),
            filter.replace('|', "%7C")
        );
        let page = send(&svc, get(&url, Some(&token))).await;
        assert_eq!(page.status, 200, "{url}: {}", page.body);
        let metrics: Vec<&str> = METRICS
            .iter()
            .copied()
            .filter(|m| *m != "views_per_visit" || !filter.contains("event:page"))
            .collect();
        let answer = api(
            &svc,
            &key,
            json!({"site_id": "shop", "metrics": metrics, "date_range": [FROM, TO], "filters": v2}),
        )
        .await;
        let values = &answer["results"][0]["metrics"];
        for (i, m) in metrics.iter().enumerate() {
            assert_eq!(
                shown(&page.body, m),
                format_metric(m, values[i].as_f64()),
                "{m} with {filter:?}"
            );
        }
    }
    // The whole dataset: 4 visitors; France alone: 2; the numbers differ with the filter.
    let all = send(
        &svc,
        get(&format!("/sites/shop?{}", period()), Some(&token)),
    )
    .await;
    let fr = send(
        &svc,
        get(
            &format!("/sites/shop?{}&f=visit%3Acountry%7Cis%7CFR", period()),
            Some(&token),
        ),
    )
    .await;
    assert_eq!(shown(&all.body, "visitors"), "4");
    assert_eq!(shown(&fr.body, "visitors"), "2");
    assert!(fr.body.contains("Country is <strong>FR</strong>"));
    // The chip's remove link leads back to the unfiltered view.
    assert!(fr.body.contains(&format!(
        "href=\"{}&amp;compare=previous_period\"",
        html(&format!("/sites/shop?{}", period()))
    )));
    // The time series has a bucket per day, with values in titles.
    assert_eq!(all.body.matches("<g class=\"hit\">").count(), 3);
    assert!(all.body.contains("<title>5 Oct: 2 Unique visitors"));
}

#[actix_web::test]
async fn breakdowns_search_sort_and_page() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let base = format!("/sites/shop/breakdown?panel=pages&{}", period());
    let all = send(&svc, get(&base, Some(&token))).await;
    assert_eq!(all.status, 200);
    assert!(all.body.contains("4 rows"), "{}", all.body);
    let found = send(&svc, get(&format!("{base}&q=PRIC"), Some(&token))).await;
    assert!(found.body.contains("1 rows"));
    assert!(found.body.contains(&html("/pricing")));
    let by_name = send(&svc, get(&format!("{base}&sort=name_asc"), Some(&token))).await;
    let first = by_name.body.find(&format!(">{}<", html("/"))).unwrap();
    let pricing = by_name
        .body
        .find(&format!(">{}<", html("/pricing")))
        .unwrap();
    assert!(first < pricing);
    let countries = send(
        &svc,
        get(
            &format!("/sites/shop/breakdown?panel=countries&{}", period()),
            Some(&token),
        ),
    )
    .await;
    assert!(countries.body.contains("🇫🇷"));
}

#[actix_web::test]
async fn a_new_site_shows_its_snippet_and_waits() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let got = send(&svc, get("/sites/fresh", Some(&token))).await;
    assert_eq!(got.status, 200);
    assert!(got.body.contains("Waiting for the first event"));
    let snippet = format!(
        "<script src=\"{}/s/fresh/assent.js\" defer></script>",
        app.state.settings.public_url
    );
    assert!(got.body.contains(&html(&snippet)), "{}", got.body);
}

#[actix_web::test]
async fn the_page_weight_stays_small() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let mut total = 0;
    for path in [
        format!("/sites/shop?{}", period()),
        "/assets/dashboard.css".into(),
        "/assets/dashboard.js".into(),
    ] {
        let got = send(
            &svc,
            get(&path, Some(&token)).insert_header(("accept-encoding", "gzip")),
        )
        .await;
        assert_eq!(got.header("content-encoding"), Some("gzip"), "{path}");
        total += got.bytes;
    }
    assert!(total < 20 * 1024, "{total} bytes gzip");
}

#[actix_web::test]
async fn every_period_and_comparison_renders_and_the_picker_needs_no_script() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    for (period, _) in assent::domain::dashboard::view::PERIODS {
        for (compare, _) in assent::domain::dashboard::view::COMPARISONS {
            let url = format!("/sites/shop?period={period}&from={FROM}&to={TO}&compare={compare}");
            let got = send(&svc, get(&url, Some(&token))).await;
            assert_eq!(got.status, 200, "{url}: {}", got.body);
            assert!(got.body.contains("<svg class=\"chart\""), "{url}");
        }
    }
    let day = send(&svc, get("/sites/shop?period=day", Some(&token))).await;
    // Hours for a day.
    assert_eq!(day.body.matches("<g class=\"hit\">").count(), 24);
    // The picker is a form of selects with a submit button: it works by keyboard, without script.
    assert!(day.body.contains("<select name=\"period\""));
    assert!(day.body.contains("<button type=\"submit\">Apply</button>"));
    // The page renews the session cookie.
    assert!(day.cookie("assent_session").is_some_and(|t| t == token));
    // The filter form of three fields adds one filter.
    let added = send(
        &svc,
        get(
            &format!("/sites/shop?{}&fd=visit:country&fo=is&fv=FR", period()),
            Some(&token),
        ),
    )
    .await;
    assert_eq!(shown(&added.body, "visitors"), "2");
}

#[actix_web::test]
async fn realtime_counts_a_new_visitor() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let before = send(&svc, get("/sites/shop/realtime?format=json", Some(&token))).await;
    let before: Value = serde_json::from_str(&before.body).unwrap();
    assert_eq!(before["visitors"], 0);
    let e = plain_event("shop", assent::now(), "pageview", "/now");
    assert!(app.state.store.record_event(ConsentId(2), e).await.unwrap());
    let after = send(&svc, get("/sites/shop/realtime?format=json", Some(&token))).await;
    let after: Value = serde_json::from_str(&after.body).unwrap();
    assert_eq!(after["visitors"], 1);
    assert_eq!(after["pages"][0]["page"], "/now");
    let page = send(&svc, get("/sites/shop/realtime", Some(&token))).await;
    assert!(page.body.contains("data-realtime-count>1<"));
}

/// The `href` values of a page, unescaped.
fn links(body: &str) -> Vec<String> {
    body.split("href=\"")
        .skip(1)
        .map(|rest| {
            rest[..rest.find('"').unwrap()]
                .replace("&#x2f;", "/")
                .replace("&quot;", "\"")
                .replace("&#x27;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
        .collect()
}

#[actix_web::test]
async fn every_link_of_the_dashboard_leads_somewhere() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let page = send(
        &svc,
        get(&format!("/sites/shop?{}", period()), Some(&token)),
    )
    .await;
    let targets: Vec<String> = links(&page.body)
        .into_iter()
        .filter(|l| l.starts_with("/sites/"))
        .collect();
    assert!(targets.len() > 40, "{targets:?}");
    // Rows filter the dashboard: the XSS path's row too, with its value intact.
    let xss = targets
        .iter()
        .find(|l| l.contains("%3Cscript%3Ealert%281%29"))
        .expect("a filter link for the XSS path");
    let filtered = send(&svc, get(xss, Some(&token))).await;
    assert_eq!(filtered.status, 200);
    assert_eq!(shown(&filtered.body, "visitors"), "1");
    for link in &targets {
        let got = send(&svc, get(link, Some(&token))).await;
        assert_eq!(got.status, 200, "{link}: {}", got.body);
    }
    // The country that is not known is shown, not linked (countries filter by code).
    let countries = send(
        &svc,
        get(
            &format!("/sites/shop/breakdown?panel=countries&{}", period()),
            Some(&token),
        ),
    )
    .await;
    assert!(
        countries
            .body
            .contains("<span class=\"plain\">(not set)</span>")
    );
}

/// A `Set-Cookie` header's value for a cookie, from a real server's answer.
fn set_cookie_value(res: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or("").to_string())
}

/// The real server: the admin login it prints on its first run opens the dashboard, where the demo site
/// waits for its first event.
#[test]
fn the_printed_admin_login_opens_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]);
    let out = String::from_utf8_lossy(&server.stdout.lock().unwrap()).into_owned();
    let line = out
        .lines()
        .find(|l| l.starts_with("Created the admin login"))
        .unwrap_or_else(|| panic!("no admin login printed: {out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let email = words[4];
    let password = words[7];
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut form = agent.get(format!("{}/login", server.url)).call().unwrap();
    let nonce = set_cookie_value(&form, "assent_login").unwrap();
    assert!(form.body_mut().read_to_string().unwrap().contains(&nonce));
    let res = agent
        .post(format!("{}/login", server.url))
        .header("cookie", format!("assent_login={nonce}"))
        .send_form([("email", email), ("password", password), ("csrf", &nonce)])
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let session = set_cookie_value(&res, "assent_session").unwrap();
    let mut home = agent
        .get(format!("{}/", server.url))
        .header("cookie", format!("assent_session={session}"))
        .call()
        .unwrap();
    assert_eq!(home.status().as_u16(), 200);
    assert!(
        home.body_mut()
            .read_to_string()
            .unwrap()
            .contains("/sites/demo?")
    );
    let mut demo = agent
        .get(format!("{}/sites/demo", server.url))
        .header("cookie", format!("assent_session={session}"))
        .call()
        .unwrap();
    let body = demo.body_mut().read_to_string().unwrap();
    assert!(body.contains("Waiting for the first event"), "{body}");
}

#[actix_web::test]
async fn the_consent_panel_shows_decisions_rates_and_the_estimate() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let store = &app.state.store;
    let site = app.state.sites.get("shop").unwrap();
    let now = time::OffsetDateTime::now_utc();
    // Four refusals besides the four acceptances, from a page whose path is hostile.
    for n in 5..=8u128 {
        store
            .append_consent(ConsentRecord {
                consent_id: ConsentId(n),
                site: "shop".into(),
                created_at: now,
                revision: 1,
                policy_hash: site.policy_hash.clone(),
                choices: BTreeMap::from([("analytics".into(), false), ("marketing".into(), false)]),
                action: Action::RejectAll,
                language: Some("fr".into()),
                page_path: Some(XSS_PATH.into()),
                expires_at: add_months(now, 13),
            })
            .await
            .unwrap();
    }
    // One visitor counted today.
    let e = plain_event("shop", assent::now(), "pageview", "/today");
    assert!(store.record_event(ConsentId(1), e).await.unwrap());
    let value = |body: &str, key: &str| {
        let marker = format!("data-consent=\"{key}\">");
        let at = body.find(&marker).unwrap_or_else(|| panic!("no {key}"));
        let rest = &body[at + marker.len()..];
        rest[..rest.find('<').unwrap()].to_string()
    };
    let page = send(&svc, get("/sites/shop/consent?period=day", Some(&token))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(value(&page.body, "decisions"), "8");
    assert_eq!(value(&page.body, "opt_in"), "50%");
    assert_eq!(value(&page.body, "counted"), "1");
    assert_eq!(value(&page.body, "estimate"), "≈ 2");
    assert!(page.body.contains("Accept all: 4"));
    assert!(page.body.contains("Reject all: 4"));
    assert!(page.body.contains(&html(XSS_PATH)));
    assert!(!page.body.contains("<script>alert"));
    // Per category: marketing was granted by none of the four who chose it.
    assert!(
        page.body
            .contains("marketing</span></td><td class=\"num\">0%</td><td class=\"num\">4</td>")
    );
    let dashboard = send(&svc, get("/sites/shop?period=day", Some(&token))).await;
    assert_eq!(value(&dashboard.body, "opt_in"), "50%");
    assert_eq!(value(&dashboard.body, "estimate"), "≈ 2");
    // A period without decisions says so rather than dividing by nothing.
    let old = send(
        &svc,
        get(&format!("/sites/shop/consent?{}", period()), Some(&token)),
    )
    .await;
    assert_eq!(value(&old.body, "opt_in"), "–");
    assert_eq!(value(&old.body, "estimate"), "–");
}

/// The value of a form field as the page shows it (`id="..."` then `value="..."`), unescaped.
fn field_value(body: &str, id: &str) -> String {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no field {id}"));
    let rest = &body[at..];
    let v = rest.find("value=\"").unwrap() + 7;
    let value = &rest[v..];
    value[..value.find('"').unwrap()]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// The message shown beside a field of the site settings form.
fn field_error(body: &str, field: &str) -> Option<String> {
    let marker = format!("<p class=\"field-error\" id=\"err-{field}\">");
    let at = body.find(&marker)?;
    let rest = &body[at + marker.len()..];
    Some(rest[..rest.find("</p>").unwrap()].to_string())
}

/// The site settings form's fields as the page has them, to post back with changes.
fn settings_fields(body: &str) -> Vec<(String, String)> {
    let textarea = |id: &str| {
        let start = body.find(&format!("id=\"{id}\"")).unwrap();
        let open = start + body[start..].find('>').unwrap() + 1;
        let close = open + body[open..].find("</textarea>").unwrap();
        body[open..close]
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
    };
    let mut f: Vec<(String, String)> = [
        "name",
        "timezone",
        "languages",
        "default_language",
        "privacy_url",
    ]
    .iter()
    .map(|k| (k.to_string(), field_value(body, k)))
    .collect();
    for k in ["domains", "categories", "texts"] {
        f.push((k.to_string(), textarea(k)));
    }
    for k in [
        "floating_button",
        "spa",
        "google_consent_mode",
        "outbound_links",
        "file_downloads",
        "allow_http",
    ] {
        if body.contains(&format!("name=\"{k}\" value=\"on\" checked")) {
            f.push((k.to_string(), "on".to_string()));
        }
    }
    f
}

fn with(fields: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = fields.iter().filter(|(k, _)| k != key).cloned().collect();
    f.push((key.to_string(), value.to_string()));
    f
}

fn refs(f: &[(String, String)]) -> Vec<(&str, &str)> {
    f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[actix_web::test]
async fn site_settings_validate_like_the_cli_and_show_errors_beside_fields() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    // Viewers (even of the site) and strangers get the 404 of a site that does not exist.
    let viewer = login(&svc, VIEWER).await;
    for path in ["/sites/demo/settings", "/sites/shop/settings"] {
        assert_eq!(send(&svc, get(path, Some(&viewer))).await.status, 404);
    }
    let token = login(&svc, ADMIN).await;
    let cookie = Some(format!("assent_session={token}"));
    let page = send(&svc, get("/sites/shop/settings", Some(&token))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&html("/s/shop/assent.js")),
        "the embed snippet"
    );
    assert!(page.body.contains("data-copy="));
    let csrf = page.csrf();
    let fields = settings_fields(&page.body);
    assert_eq!(field_value(&page.body, "timezone"), "UTC");

    // Without the CSRF token nothing changes.
    let forged = send(
        &svc,
        post_form(
            "/sites/shop/settings",
            cookie.clone(),
            &refs(&with(&fields, "timezone", "Europe/Paris")),
        ),
    )
    .await;
    assert_eq!(forged.status, 403);

    let post = |f: Vec<(String, String)>| {
        let mut f = f;
        f.push(("csrf".into(), csrf.clone()));
        post_form("/sites/shop/settings", cookie.clone(), &refs(&f))
    };
    // Refusals: the message beside its field, the submitted values kept, nothing stored (400). Each
    // message is the one `assent site update` gives for the same document.
    let cases = [
        ("timezone", "Mars/Olympus", "timezone"),
        ("domains", "shop.test\nhttps://bad.example/x", "domains"),
        ("languages", "en Fr", "languages"),
        ("default_language", "it-xx", "default_language"),
        ("name", "  ", "name"),
        ("privacy_url", "ftp://x.example/", "privacy_url"),
        (
            "categories",
            "[[categories]]\nid = \"analytics\"\n",
            "categories",
        ),
        (
            "categories",
            "[[categories]]\nid = \"necessary\"\nrequired = true\nsurprise = 1\n",
            "categories",
        ),
        ("texts", "[texts.en\n", "texts"),
    ];
    for (key, value, field) in cases {
        let got = send(&svc, post(with(&fields, key, value))).await;
        assert_eq!(got.status, 400, "{key}={value:?}: {}", got.body);
        let message = field_error(&got.body, field)
            .unwrap_or_else(|| panic!("no message beside {field} for {value:?}: {}", got.body));
        assert!(!message.is_empty());
        if key == "timezone" {
            assert!(message.contains("unknown time zone"), "{message}");
            assert_eq!(field_value(&got.body, "timezone"), "Mars/Olympus");
        }
        if key == "domains" {
            assert!(message.contains("invalid domain"), "{message}");
        }
        assert!(got.body.contains("aria-invalid=\"true\""));
    }
    // The CLI refuses the same document with the same message.
    let text = app
        .state
        .sites
        .get("shop")
        .unwrap()
        .config
        .to_toml("shop", 1)
        .replace("timezone = \"UTC\"", "timezone = \"Mars/Olympus\"");
    let cli_error = assent::domain::site::SiteConfig::from_toml("shop", &text).unwrap_err();
    assert!(cli_error.ends_with("unknown time zone \"Mars/Olympus\": use an IANA name such as \"Europe/Paris\" or \"UTC\""), "{cli_error}");
    assert_eq!(app.state.sites.get("shop").unwrap().config.timezone, "UTC");

    // A valid change: stored, the registry reloaded at once, the revision kept (no text changed).
    let mut ok = with(&fields, "timezone", "Europe/Paris");
    ok.retain(|(k, _)| k != "floating_button");
    let saved = send(&svc, post(ok)).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        saved.header("location"),
        Some("/sites/shop/settings?done=saved")
    );
    let shop = app.state.sites.get("shop").unwrap();
    assert_eq!(shop.config.timezone, "Europe/Paris");
    assert!(!shop.config.options.floating_button);
    assert_eq!(shop.revision, 1);
    let stored = app.with_database(|db| db.site("shop").unwrap().unwrap());
    assert_eq!(stored.config.timezone, "Europe/Paris");

    // A changed text is a new policy revision; only the override is stored.
    let page = send(&svc, get("/sites/shop/settings", Some(&token))).await;
    let fields = settings_fields(&page.body);
    let texts = fields.iter().find(|(k, _)| k == "texts").unwrap().1.clone();
    let accept = texts
        .lines()
        .find(|l| l.starts_with("accept_all = "))
        .expect("accept_all text")
        .to_string();
    let changed = texts.replacen(&accept, "accept_all = \"Yes, fine\"", 1);
    let saved = send(&svc, post(with(&fields, "texts", &changed))).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        saved.header("location"),
        Some("/sites/shop/settings?done=asked")
    );
    let shop = app.state.sites.get("shop").unwrap();
    assert_eq!(shop.revision, 2);
    assert_eq!(shop.config.texts.len(), 1, "{:?}", shop.config.texts);
    assert!(shop.script.contains("Yes, fine"));
}

#[actix_web::test]
async fn ask_again_and_removal_need_their_confirmation() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let cookie = Some(format!("assent_session={token}"));
    let csrf = send(&svc, get("/sites/shop/settings", Some(&token)))
        .await
        .csrf();
    let unconfirmed = send(
        &svc,
        post_form(
            "/sites/shop/settings/ask-again",
            cookie.clone(),
            &[("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(unconfirmed.status, 400);
    assert!(field_error(&unconfirmed.body, "ask_again").is_some());
    assert_eq!(app.state.sites.get("shop").unwrap().revision, 1);
    let asked = send(
        &svc,
        post_form(
            "/sites/shop/settings/ask-again",
            cookie.clone(),
            &[("csrf", &csrf), ("confirm", "yes")],
        ),
    )
    .await;
    assert_eq!(asked.status, 303);
    assert_eq!(app.state.sites.get("shop").unwrap().revision, 2);
    let page = send(&svc, get("/sites/shop/settings?done=asked", Some(&token))).await;
    assert!(page.body.contains("every visitor is asked again"));

    for typed in ["", "Shop", "demo"] {
        let got = send(
            &svc,
            post_form(
                "/sites/shop/settings/remove",
                cookie.clone(),
                &[("csrf", &csrf), ("confirm_id", typed)],
            ),
        )
        .await;
        assert_eq!(got.status, 400, "{typed:?}");
        assert!(field_error(&got.body, "remove").is_some());
        assert!(app.state.sites.get("shop").is_some());
    }
    let events_before = app.count("events");
    assert!(events_before > 0);
    let removed = send(
        &svc,
        post_form(
            "/sites/shop/settings/remove",
            cookie.clone(),
            &[("csrf", &csrf), ("confirm_id", "shop")],
        ),
    )
    .await;
    assert_eq!(removed.status, 303);
    assert_eq!(removed.header("location"), Some("/?done=removed"));
    assert!(app.state.sites.get("shop").is_none());
    assert_eq!(app.count("events"), 0, "everything collected for it went");
    assert_eq!(
        send(&svc, get("/sites/shop", Some(&token))).await.status,
        404
    );
    let home = send(&svc, get("/?done=removed", Some(&token))).await;
    assert!(home.body.contains("The site was removed"));
}

#[actix_web::test]
async fn admins_add_sites_from_the_list_with_the_cli_rules() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let viewer = login(&svc, VIEWER).await;
    let home = send(&svc, get("/", Some(&viewer))).await;
    assert!(!home.body.contains("Add a site"));
    let vcsrf = home.csrf();
    let refused = send(
        &svc,
        post_form(
            "/sites",
            Some(format!("assent_session={viewer}")),
            &[
                ("csrf", &vcsrf),
                ("id", "blog"),
                ("domains", "blog.example"),
            ],
        ),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert!(app.state.sites.get("blog").is_none());

    let token = login(&svc, ADMIN).await;
    let cookie = Some(format!("assent_session={token}"));
    let home = send(&svc, get("/", Some(&token))).await;
    assert!(home.body.contains("Add a site"));
    let csrf = home.csrf();
    for (id, domains, status, text) in [
        ("Blog", "blog.example", 400, "invalid site id"),
        ("blog", "https://blog.example", 400, "invalid domain"),
        ("blog", "", 400, "at least one domain"),
        ("shop", "shop.example", 409, "already exists"),
    ] {
        let got = send(
            &svc,
            post_form(
                "/sites",
                cookie.clone(),
                &[("csrf", &csrf), ("id", id), ("domains", domains)],
            ),
        )
        .await;
        assert_eq!(got.status, status, "{id} {domains}: {}", got.body);
        assert!(got.body.contains(text), "{text}: {}", got.body);
        assert!(got.body.contains(&format!("value=\"{id}\"")), "kept");
    }
    assert!(app.state.sites.get("blog").is_none());
    let added = send(
        &svc,
        post_form(
            "/sites",
            cookie.clone(),
            &[
                ("csrf", &csrf),
                ("id", "blog"),
                ("domains", "blog.example\nwww.blog.example"),
                ("name", "The <b>Blog</b>"),
            ],
        ),
    )
    .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(
        added.header("location"),
        Some("/sites/blog/settings?done=added")
    );
    let blog = app.state.sites.get("blog").unwrap();
    assert_eq!(blog.config.domains, ["blog.example", "www.blog.example"]);
    assert_eq!(blog.revision, 1);
    let home = send(&svc, get("/", Some(&token))).await;
    assert!(home.body.contains("The &lt;b&gt;Blog&lt;&#x2f;b&gt;"));
}

#[actix_web::test]
async fn the_consent_log_searches_pages_and_exports_proof() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let store = &app.state.store;
    let site = app.state.sites.get("shop").unwrap();
    let at = |s: &str| time::OffsetDateTime::from_unix_timestamp(ts(s)).unwrap();
    // 60 refusals on 3 October from a page whose path is a formula, and a withdrawal of id 1.
    for n in 100..160u128 {
        let t = at("2026-10-03T12:00:00Z");
        store
            .append_consent(ConsentRecord {
                consent_id: ConsentId(n),
                site: "shop".into(),
                created_at: t,
                revision: 1,
                policy_hash: site.policy_hash.clone(),
                choices: BTreeMap::from([("analytics".into(), false)]),
                action: Action::RejectAll,
                language: Some("fr".into()),
                page_path: Some(FORMULA.into()),
                expires_at: add_months(t, 13),
            })
            .await
            .unwrap();
    }
    let t = at("2026-10-04T09:30:00Z");
    store
        .append_consent(ConsentRecord {
            consent_id: ConsentId(1),
            site: "shop".into(),
            created_at: t,
            revision: 1,
            policy_hash: site.policy_hash.clone(),
            choices: BTreeMap::from([("analytics".into(), false)]),
            action: Action::Withdraw,
            language: Some("en".into()),
            page_path: Some(XSS_PATH.into()),
            expires_at: add_months(t, 13),
        })
        .await
        .unwrap();
    let viewer = login(&svc, VIEWER).await;
    assert_eq!(
        send(&svc, get("/sites/shop/consents", Some(&viewer)))
            .await
            .status,
        404
    );
    let token = login(&svc, ADMIN).await;
    let total = |body: &str| {
        let at = body.find("<span data-total>").unwrap() + 17;
        body[at..at + body[at..].find('<').unwrap()].to_string()
    };
    let all = send(&svc, get("/sites/shop/consents", Some(&token))).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(total(&all.body), "65");
    assert!(all.body.contains("Page 1 of 2"));
    assert!(all.body.contains(&html(XSS_PATH)));
    assert!(!all.body.contains("<script>alert"));
    let id1 = ConsentId(1).to_string();
    let by_id = send(
        &svc,
        get(&format!("/sites/shop/consents?id={id1}"), Some(&token)),
    )
    .await;
    assert_eq!(total(&by_id.body), "2");
    assert!(by_id.body.contains("Withdraw") && by_id.body.contains("Accept all"));
    assert!(by_id.body.contains("analytics: no"));
    assert!(by_id.body.contains(&site.policy_hash[..12]));
    // The revision links to what was shown, checked against its hash; the current one to the notice.
    assert!(
        by_id
            .body
            .contains(&html("/sites/shop/consents/revisions/1"))
    );
    assert!(by_id.body.contains("/s/shop/privacy"));
    let rev = send(&svc, get("/sites/shop/consents/revisions/1", Some(&token))).await;
    assert_eq!(rev.status, 200);
    assert!(rev.body.contains("data-hash-check=\"ok\""), "{}", rev.body);
    assert!(rev.body.contains(&site.policy_hash));
    assert_eq!(
        send(&svc, get("/sites/shop/consents/revisions/9", Some(&token)))
            .await
            .status,
        404
    );
    let ranged = send(
        &svc,
        get(
            "/sites/shop/consents?from=2026-10-03&to=2026-10-03&action=reject_all&page=2",
            Some(&token),
        ),
    )
    .await;
    assert_eq!(total(&ranged.body), "60");
    assert!(ranged.body.contains("Page 2 of 2"));
    let withdrawn = send(
        &svc,
        get("/sites/shop/consents?action=withdraw", Some(&token)),
    )
    .await;
    assert_eq!(total(&withdrawn.body), "1");
    for bad in [
        "id=123",
        "id=%3Cscript%3E",
        "from=2026-13-01",
        "from=2026-10-05&to=2026-10-01",
        "action=maybe",
        "page=0",
    ] {
        let got = send(
            &svc,
            get(&format!("/sites/shop/consents?{bad}"), Some(&token)),
        )
        .await;
        assert_eq!(got.status, 400, "{bad}");
        let got = send(
            &svc,
            get(&format!("/sites/shop/consents.csv?{bad}"), Some(&token)),
        )
        .await;
        assert_eq!(got.status, 400, "{bad}");
    }
    // The CSV of a range: every record of it, oldest first, formulas written as text.
    let csv = send(
        &svc,
        get(
            "/sites/shop/consents.csv?from=2026-10-03&to=2026-10-04",
            Some(&token),
        ),
    )
    .await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(
        csv.header("content-disposition")
            .unwrap()
            .contains("shop-consents-2026-10-03_2026-10-04.csv")
    );
    let lines: Vec<&str> = csv.body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "time_utc,consent_id,action,choices,language,page,revision,policy_hash,expires_at_utc"
    );
    assert_eq!(lines.len(), 62);
    assert!(lines[1].starts_with("2026-10-03T12:00:00+00:00,"));
    assert!(
        lines[1].contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\","),
        "{}",
        lines[1]
    );
    assert!(
        lines[61].contains(&format!(",{id1},withdraw,")),
        "{}",
        lines[61]
    );
    assert!(lines[61].contains(&site.policy_hash));
}

#[actix_web::test]
async fn the_whole_view_exports_as_one_zip_archive() {
    use std::io::Read;
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let res = test::call_service(
        &svc,
        get(
            &format!("/sites/shop/export.zip?{}", period()),
            Some(&token),
        )
        .to_request(),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/zip"
    );
    let bytes = test::read_body(res).await;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.to_string()))
        .collect();
    let mut read = |name: &str| {
        let mut s = String::new();
        zip.by_name(name)
            .unwrap_or_else(|e| panic!("{name}: {e} in {names:?}"))
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    let series = read("timeseries.csv");
    let lines: Vec<&str> = series.lines().collect();
    assert!(lines[0].starts_with("time:day,visitors,"), "{series}");
    assert_eq!(lines.len(), 4, "three days: {series}");
    assert!(lines[1].starts_with("2026-10-05,2,"), "{series}");
    let countries = read("countries.csv");
    assert!(countries.contains("\r\nFR,2,"), "{countries}");
    let pages = read("pages.csv");
    assert!(
        pages.contains("\"'=HYPERLINK("),
        "formulas as text: {pages}"
    );
    assert!(read("prop-plan.csv").contains(",1,"));
    // Filters of the view apply to every file.
    let res = test::call_service(
        &svc,
        get(
            &format!("/sites/shop/export.zip?{}&f=visit:country|is|DE", period()),
            Some(&token),
        )
        .to_request(),
    )
    .await;
    let bytes = test::read_body(res).await;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut s = String::new();
    zip.by_name("countries.csv")
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "visit:country,visitors,visits\r\nDE,1,1\r\n");
    let viewer = login(&svc, VIEWER).await;
    assert_eq!(
        send(&svc, get("/sites/shop/export.zip", Some(&viewer)))
            .await
            .status,
        404
    );
}

/// The real server with debug logs: a consent id searched in the consent log appears in no log line
/// (the request log writes route patterns, not paths or query strings).
#[test]
fn the_consent_log_never_writes_a_consent_id_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut db = assent::storage::Database::open(&dir.path().join("assent.db")).unwrap();
        assent::commands::site::add(&mut db, "demo", vec!["localhost".into()], None).unwrap();
        db.add_user(ADMIN.0, ADMIN.1, true, 1).unwrap();
    }
    let server = Server::start(dir.path(), &[], &[("RUST_LOG", "debug")]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let form = agent.get(format!("{}/login", server.url)).call().unwrap();
    let nonce = set_cookie_value(&form, "assent_login").unwrap();
    let res = agent
        .post(format!("{}/login", server.url))
        .header("cookie", format!("assent_login={nonce}"))
        .send_form([("email", ADMIN.0), ("password", ADMIN.1), ("csrf", &nonce)])
        .unwrap();
    let session = set_cookie_value(&res, "assent_session").unwrap();
    let id = "0123456789abcdef0123456789abcdef";
    for path in [
        format!("/sites/demo/consents?id={id}"),
        format!("/sites/demo/consents.csv?id={id}"),
        format!("/sites/demo/consents?id={id}&page=abc"),
    ] {
        let res = agent
            .get(format!("{}{path}", server.url))
            .header("cookie", format!("assent_session={session}"))
            .call()
            .unwrap();
        assert!(res.status().as_u16() < 500, "{path}");
    }
    let out = || {
        format!(
            "{}{}",
            server.stderr_text(),
            String::from_utf8_lossy(&server.stdout.lock().unwrap())
        )
    };
    // The request lines are written (debug), by route.
    wait_for(10, || {
        out().contains("/sites/{site}/consents.csv").then_some(())
    });
    let log = out();
    assert!(log.contains("/sites/{site}/consents"), "{log}");
    assert!(!log.contains(id), "a consent id in the log:\n{log}");
    assert!(!log.contains(&id[..16]));
}

/// The hand-built dataset of the statistics tests, written by the seeder into a data directory (as the
/// browser tests do before starting a server): the dashboard's headline shows the numbers that
/// `tests/stats.rs` knows are right.
#[actix_web::test]
async fn the_hand_built_dataset_shows_its_known_right_headline() {
    let app = TestApp::build(&[], |db| {
        dataset::seed_shop(db);
        db.add_user(ADMIN.0, ADMIN.1, true, 1).unwrap();
    });
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let [from, to] = dataset::PERIOD;
    let page = send(
        &svc,
        get(
            &format!("/sites/shop?period=custom&from={from}&to={to}&compare=none"),
            Some(&token),
        ),
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (visitors, visits, pageviews, _, bounce, duration, per_visit) = dataset::HEADLINE;
    for (metric, value) in [
        ("visitors", visitors as f64),
        ("visits", visits as f64),
        ("pageviews", pageviews as f64),
        ("bounce_rate", bounce as f64),
        ("visit_duration", duration as f64),
        ("views_per_visit", per_visit),
    ] {
        assert_eq!(
            shown(&page.body, metric),
            format_metric(metric, Some(value)),
            "{metric}"
        );
    }
}
