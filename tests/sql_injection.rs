//! SQL injection through every parameter of the Stats API (v2 query and batch, v1 endpoints) and every
//! dashboard form, filter and path: each attempt gets a 4xx or a correct, harmless answer (the text taken
//! literally: a filter on it matches nothing, a name holding it is stored as written), and the database is
//! intact afterwards: the integrity check passes, every table holds what it held (plus what a form that was
//! meant to write wrote) and a reference query answers as before. On PostgreSQL (`ASSENT_TEST_ENGINE`), where
//! SQLite's integrity check and attached databases have no counterpart, the tables themselves are counted.

mod common;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{self, TestRequest};
use common::*;
use serde_json::{Value, json};

const ADMIN: (&str, &str) = ("ana@example.com", "a long password");

/// Classic and SQLite-specific injections, quoted every way a statement could be built.
const INJECTIONS: [&str; 12] = [
    "' OR '1'='1",
    "' OR 1=1 --",
    "\" OR \"\"=\"",
    "1; DROP TABLE events; --",
    "'); DELETE FROM consents; --",
    "demo' --",
    "%' OR 1=1 --",
    "' UNION SELECT secret, 1, 1 FROM sites --",
    "1) OR (1=1",
    "'; ATTACH DATABASE 'pwned.db' AS pwned; --",
    "*/ OR 1=1 /*",
    "`; UPDATE users SET is_admin = 1; --",
];

/// Every table but the statistics' aggregates (`rollups`, `rollup_visitors`), which the writer builds in
/// the background from the events; the reference query checks what they answer.
const TABLES: [&str; 12] = [
    "api_keys",
    "consents",
    "deletion_receipts",
    "events",
    "meta",
    "rollup_zones",
    "sessions",
    "site_revisions",
    "sites",
    "user_sites",
    "users",
    "visits",
];

/// The demo site with a few visits stored through the API, an admin and their key.
async fn app() -> (TestApp, String) {
    let app = TestApp::build(&[("ASSENT_RATE_LIMIT", "0")], |db| {
        db.add_user(ADMIN.0, ADMIN.1, true, 1).unwrap();
    });
    let key = app.with_database(|db| db.create_key(ADMIN.0, "ci", 1).unwrap());
    {
        let svc = service(&app).await;
        for (n, page) in ["/", "/pricing", "/blog"].iter().enumerate() {
            let id = consent(&svc, "demo", "accept_all", json!({})).await;
            let (s, _) = post(
                &svc,
                "/api/event",
                &event_body("demo", &id, "pageview", &format!("https://localhost{page}")),
            )
            .await;
            assert_eq!(s, 202, "visit {n}");
        }
    }
    wait_for(10, || (app.count("events") == 3).then_some(()));
    (app, key)
}

/// What must not change: every table's row count, the tables themselves, and on SQLite the integrity
/// check and the attached databases.
fn snapshot(app: &TestApp) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    if engine::postgres_selected() {
        // PostgreSQL has no ATTACH; a statement that got through could still create or drop a table.
        let tables = app
            .with_sql(|c| {
                c.value(
                    "SELECT COUNT(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
                    &[],
                )
            })
            .unwrap();
        out.push(("tables".to_string(), tables));
    } else {
        let db = app.db();
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let attached: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM pragma_database_list WHERE name NOT IN ('main', 'temp')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(attached, 0, "a database was attached");
    }
    let admins: i64 = app
        .with_sql(|c| c.value("SELECT COUNT(*) FROM users WHERE is_admin = 1", &[]))
        .unwrap();
    out.push(("admins".to_string(), admins));
    out.extend(TABLES.iter().map(|t| (t.to_string(), app.count(t))));
    out
}

fn reference() -> Value {
    json!({"site_id": "demo", "metrics": ["visitors", "pageviews"], "date_range": "all",
        "dimensions": ["event:page"], "order_by": [["event:page", "asc"]]})
}

async fn v2<S, B>(svc: &S, key: &str, path: &str, body: &Value) -> (u16, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let req = TestRequest::post()
        .uri(path)
        .insert_header(("authorization", format!("Bearer {key}")))
        .insert_header(("content-type", "application/json"))
        .set_payload(body.to_string());
    call(svc, req).await
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Whether a 200 answer counts nothing: every metric of every row is zero (or there are no rows).
fn counts_nothing(answer: &Value) -> bool {
    let rows = match &answer["results"] {
        Value::Array(rows) => rows.clone(),
        // v1 aggregate: {"visitors": {"value": 0}, ...}
        Value::Object(m) => {
            return m
                .values()
                .all(|v| v["value"].as_f64().unwrap_or(0.0) == 0.0);
        }
        _ => return false,
    };
    rows.iter().all(|r| {
        let metrics = r.get("metrics").cloned().unwrap_or_else(|| r.clone());
        match metrics {
            Value::Array(m) => m.iter().all(|v| v.as_f64().unwrap_or(0.0) == 0.0),
            Value::Object(m) => m
                .iter()
                .filter(|(k, _)| !k.contains(':') && *k != "date" && *k != "page")
                .all(|(_, v)| v.as_f64().unwrap_or(0.0) == 0.0),
            _ => false,
        }
    })
}

#[actix_web::test]
async fn the_stats_api_takes_every_parameter_literally() {
    let (app, key) = app().await;
    let svc = service(&app).await;
    let before = snapshot(&app);
    let (s, baseline) = v2(&svc, &key, "/api/v2/query", &reference()).await;
    assert_eq!(s, 200, "{baseline}");
    assert_eq!(baseline["results"].as_array().unwrap().len(), 3);

    for inj in INJECTIONS {
        // (where, body, whether an answer of 200 must count nothing)
        let base = json!({"site_id": "demo", "metrics": ["visitors"], "date_range": "all"});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        let cases = [
            ("site_id", with("site_id", json!(inj)), false),
            ("metric", with("metrics", json!([inj])), false),
            ("dimension", with("dimensions", json!([inj])), false),
            (
                "property dimension",
                with("dimensions", json!([format!("event:props:{inj}")])),
                false,
            ),
            (
                "filter value",
                with("filters", json!([["is", "event:page", [inj]]])),
                true,
            ),
            (
                "contains value",
                with("filters", json!([["contains", "event:page", [inj]]])),
                true,
            ),
            (
                "matches value",
                with("filters", json!([["matches", "event:page", [inj]]])),
                true,
            ),
            (
                "property value",
                with("filters", json!([["is", "event:props:plan", [inj]]])),
                true,
            ),
            (
                "property key",
                with(
                    "filters",
                    json!([["is", format!("event:props:{inj}"), ["x"]]]),
                ),
                true,
            ),
            (
                "filter dimension",
                with("filters", json!([["is", inj, ["x"]]])),
                false,
            ),
            (
                "filter operator",
                with("filters", json!([[inj, "event:page", ["/"]]])),
                false,
            ),
            (
                "logical operator",
                with("filters", json!([[inj, [["is", "event:page", ["/"]]]]])),
                false,
            ),
            ("date range", with("date_range", json!(inj)), false),
            (
                "date range dates",
                with("date_range", json!([inj, "2026-01-01"])),
                false,
            ),
            (
                "order by metric",
                with("order_by", json!([[inj, "desc"]])),
                false,
            ),
            (
                "order by direction",
                with("order_by", json!([["visitors", inj]])),
                false,
            ),
            (
                "pagination",
                with("pagination", json!({"limit": inj, "offset": inj})),
                false,
            ),
            (
                "huge pagination",
                with(
                    "pagination",
                    json!({"limit": 1e20, "offset": 18446744073709551615u64}),
                ),
                false,
            ),
            ("include", with("include", json!({inj: true})), false),
            (
                "comparison",
                with("include", json!({"comparisons": {"mode": inj}})),
                false,
            ),
            ("unknown key", with(inj, json!(1)), false),
        ];
        for (what, body, empty) in cases {
            let (s, answer) = v2(&svc, &key, "/api/v2/query", &body).await;
            assert!(matches!(s, 200 | 400 | 401), "{what} {inj:?}: {s} {answer}");
            if s == 200 && empty {
                assert!(counts_nothing(&answer), "{what} {inj:?} counted: {answer}");
            }
            if s != 200 {
                assert!(answer["error"].is_string(), "{what}: {answer}");
            }
        }
        // A batch: a good query and one with the injection.
        let batch = json!([
            reference(),
            with("filters", json!([["is", "visit:source", [inj]]]))
        ]);
        let (s, answer) = v2(&svc, &key, "/api/v2/queries", &batch).await;
        assert_eq!(s, 200, "batch {inj:?}: {answer}");
        assert_eq!(answer[0]["results"], baseline["results"]);
        assert!(counts_nothing(&answer[1]), "batch {inj:?}: {answer}");
        let batch = json!([reference(), with("site_id", json!(inj))]);
        let (s, _) = v2(&svc, &key, "/api/v2/queries", &batch).await;
        assert_eq!(s, 401, "batch site {inj:?}");

        // v1: every query parameter, and the endpoint's name.
        let e = enc(inj);
        let v1 = [
            (format!("/api/v1/stats/aggregate?site_id={e}"), false),
            (
                format!("/api/v1/stats/aggregate?site_id=demo&period={e}"),
                false,
            ),
            (
                format!("/api/v1/stats/aggregate?site_id=demo&period=custom&date={e}"),
                false,
            ),
            (
                format!("/api/v1/stats/aggregate?site_id=demo&period=all&metrics={e}"),
                false,
            ),
            (
                format!(
                    "/api/v1/stats/aggregate?site_id=demo&period=all&filters={}",
                    enc(&format!("event:page=={inj}"))
                ),
                true,
            ),
            (
                format!(
                    "/api/v1/stats/aggregate?site_id=demo&period=all&filters={}",
                    enc(&format!("event:props:plan=={inj}"))
                ),
                true,
            ),
            (
                format!("/api/v1/stats/aggregate?site_id=demo&period=all&filters={e}"),
                false,
            ),
            (
                format!("/api/v1/stats/aggregate?site_id=demo&period=all&compare={e}"),
                false,
            ),
            (
                format!("/api/v1/stats/timeseries?site_id=demo&period=all&interval={e}"),
                false,
            ),
            (
                format!("/api/v1/stats/breakdown?site_id=demo&period=all&property={e}"),
                false,
            ),
            (
                format!("/api/v1/stats/breakdown?site_id=demo&period=all&property=event:props:{e}"),
                false,
            ),
            (
                format!(
                    "/api/v1/stats/breakdown?site_id=demo&period=all&property=event:page&limit={e}&page={e}"
                ),
                false,
            ),
            (
                "/api/v1/stats/breakdown?site_id=demo&period=all&property=event:page&limit=99999999999999999999999"
                    .to_string(),
                false,
            ),
            (format!("/api/v1/stats/{e}?site_id=demo"), false),
            (
                format!("/api/v1/stats/realtime/visitors?site_id={e}"),
                false,
            ),
        ];
        for (path, empty) in v1 {
            let req = TestRequest::get()
                .uri(&path)
                .insert_header(("authorization", format!("Bearer {key}")));
            let (s, answer) = call(&svc, req).await;
            assert!(matches!(s, 200 | 400 | 401 | 404), "{path}: {s} {answer}");
            if s == 200 && empty {
                assert!(counts_nothing(&answer), "{path} counted: {answer}");
            }
        }
        // The key itself.
        let req = TestRequest::post()
            .uri("/api/v2/query")
            .insert_header(("authorization", format!("Bearer {inj}")))
            .insert_header(("content-type", "application/json"))
            .set_payload(reference().to_string());
        assert_eq!(call(&svc, req).await.0, 401, "key {inj:?}");
    }
    assert_eq!(snapshot(&app), before);
    let (s, after) = v2(&svc, &key, "/api/v2/query", &reference()).await;
    assert_eq!((s, &after["results"]), (200, &baseline["results"]));
}

// Dashboard helpers: a browser with a session cookie, posting forms with their CSRF token.

struct Got {
    status: u16,
    location: Option<String>,
    cookies: Vec<String>,
    body: String,
}

async fn send<S, B>(svc: &S, req: TestRequest) -> Got
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    send_from(svc, req, "192.0.2.10").await
}

/// [`send`] from a chosen address (logins are limited per network).
async fn send_from<S, B>(svc: &S, req: TestRequest, peer: &str) -> Got
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let peer = format!("{peer}:5000").parse().unwrap();
    let res = test::call_service(svc, req.peer_addr(peer).to_request()).await;
    let header = |n: &str| -> Vec<String> {
        res.headers()
            .get_all(n)
            .filter_map(|v| v.to_str().ok())
            .map(String::from)
            .collect()
    };
    let location = header("location").into_iter().next();
    let cookies = header("set-cookie");
    let status = res.status().as_u16();
    let body = String::from_utf8_lossy(&test::read_body(res).await).into_owned();
    Got {
        status,
        location,
        cookies,
        body,
    }
}

impl Got {
    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap_or("").to_string())
    }

    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        let rest = &self.body[at..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

fn form(path: &str, cookie: &str, fields: &[(&str, &str)]) -> TestRequest {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        body.append_pair(k, v);
    }
    TestRequest::post()
        .uri(path)
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .insert_header(("cookie", cookie.to_string()))
        .set_payload(body.finish())
}

/// A dashboard page with the session's cookie.
async fn open<S, B>(svc: &S, session: &str, path: &str) -> Got
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    send(
        svc,
        TestRequest::get()
            .uri(path)
            .insert_header(("cookie", session.to_string())),
    )
    .await
}

async fn try_login<S, B>(svc: &S, email: &str, password: &str, peer: &str) -> Got
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let page = send_from(svc, TestRequest::get().uri("/login"), peer).await;
    let nonce = page.cookie("assent_login").expect("login cookie");
    let fields = [
        ("email", email),
        ("password", password),
        ("csrf", nonce.as_str()),
    ];
    send_from(
        svc,
        form("/login", &format!("assent_login={nonce}"), &fields),
        peer,
    )
    .await
}

#[actix_web::test]
async fn dashboard_forms_filters_and_paths_take_text_literally() {
    let (app, key) = app().await;
    let svc = service(&app).await;
    let (_, baseline) = v2(&svc, &key, "/api/v2/query", &reference()).await;
    let mut before = snapshot(&app);

    let login = try_login(&svc, ADMIN.0, ADMIN.1, "192.0.2.10").await;
    assert_eq!(login.status, 303);
    let session = format!("assent_session={}", login.cookie("assent_session").unwrap());
    // Logging in with an injection as the address or the password: refused (each attempt from a network
    // of its own, as logins are limited per network; a password costs a slow hash, so a few suffice).
    for (n, inj) in INJECTIONS.iter().take(4).enumerate() {
        for (m, (email, password)) in [(*inj, "x"), (ADMIN.0, *inj)].into_iter().enumerate() {
            let got = try_login(&svc, email, password, &format!("198.51.{n}.{m}")).await;
            assert!(
                matches!(got.status, 400 | 401 | 429),
                "{email:?} {password:?}: {}",
                got.status
            );
            assert!(got.cookie("assent_session").is_none());
        }
    }
    let csrf = open(&svc, &session, "/settings").await.csrf();
    // The good login added a session, and nothing else was written.
    let sessions = before.iter_mut().find(|(t, _)| t == "sessions").unwrap();
    sessions.1 += 1;
    assert_eq!(snapshot(&app), before);

    for (n, inj) in INJECTIONS.iter().copied().enumerate() {
        let e = enc(inj);
        // Views, filters, searches and paths: pages or 4xx, figures of nothing for a filter on the text.
        let reads = [
            format!("/sites/demo?period={e}"),
            format!("/sites/demo?period=custom&from={e}&to={e}"),
            format!("/sites/demo?metric={e}&compare={e}"),
            format!("/sites/demo?f={e}"),
            format!("/sites/demo?f={}", enc(&format!("{inj}|is|x"))),
            format!("/sites/demo?f={}", enc(&format!("event:page|{inj}|x"))),
            format!("/sites/demo?fd=event:page&fo=is&fv={e}"),
            format!("/sites/demo/breakdown?panel={e}"),
            format!("/sites/demo/breakdown?panel=pages&q={e}&sort={e}&page={e}"),
            format!(
                "/sites/demo/breakdown?panel=pages&format=json&f={}",
                enc(&format!("event:page|is|{inj}"))
            ),
            format!(
                "/sites/demo/export?f={}",
                enc(&format!("event:page|contains|{inj}"))
            ),
            format!("/sites/demo/consents?id={e}&from={e}&to={e}&action={e}&page={e}"),
            format!("/sites/demo/consents.csv?id={e}&action={e}"),
            format!("/sites/demo/consents/revisions/{e}"),
            format!("/sites/{e}"),
            format!("/sites/{e}/settings"),
            format!("/sites/demo/realtime?period={e}"),
        ];
        for path in reads {
            let got = open(&svc, &session, &path).await;
            assert!(
                matches!(got.status, 200 | 400 | 404),
                "{path}: {}",
                got.status
            );
            assert!(!got.body.contains("database error"), "{path}");
        }
        let filtered = open(
            &svc,
            &session,
            &format!(
                "/sites/demo/breakdown?panel=pages&format=json&f={}",
                enc(&format!("event:page|is|{inj}"))
            ),
        )
        .await;
        assert_eq!(filtered.status, 200, "{}", filtered.body);
        assert!(
            !filtered.body.contains("/pricing"),
            "a filter on {inj:?} matched pages: {}",
            filtered.body
        );
        // Forms that write nothing when given the text: a user with it as the address, a site with it as
        // the id, a password change with it as the current password, removals and revocations by it.
        // (A password is hashed slowly in a debug build: the forms that hash one run for a few texts.)
        let mut refused: Vec<(String, Vec<(&str, &str)>)> = vec![
            (
                "/settings/users".into(),
                vec![
                    ("email", inj),
                    ("password", "long enough pw"),
                    ("role", "viewer"),
                ],
            ),
            (
                "/settings/users".into(),
                vec![
                    ("email", "new@example.com"),
                    ("password", "long enough pw"),
                    ("role", inj),
                    ("site", inj),
                ],
            ),
            (
                "/sites".into(),
                vec![("id", inj), ("domains", "site.example"), ("name", "x")],
            ),
            (
                "/settings/password".into(),
                vec![
                    ("current", inj),
                    ("new_password", "another long one"),
                    (
                        "confirm",
                        if n < 3 { "another long one" } else { "differs" },
                    ),
                ],
            ),
            (format!("/settings/users/{e}/remove"), vec![]),
            (format!("/settings/keys/{e}/revoke"), vec![]),
        ];
        if n >= 3 {
            refused.remove(1);
        }
        for (path, fields) in refused {
            let mut fields = fields;
            fields.push(("csrf", &csrf));
            let got = send(&svc, form(&path, &session, &fields)).await;
            if path == "/settings/users" && got.status == 303 {
                // An address may be valid with quotes in it; then it is stored exactly as given.
                let email = fields[0].1.trim().to_ascii_lowercase();
                let stored: i64 = app
                    .with_sql(|c| {
                        c.value(
                            "SELECT COUNT(*) FROM users WHERE email = ?1 AND is_admin = 0",
                            assent::args![email.as_str()],
                        )
                    })
                    .unwrap();
                assert_eq!(stored, 1, "{email:?}");
                app.with_sql(|c| {
                    c.execute(
                        "DELETE FROM users WHERE email = ?1",
                        assent::args![email.as_str()],
                    )?;
                    c.execute(
                        "DELETE FROM user_sites WHERE user_id NOT IN (SELECT id FROM users)",
                        &[],
                    )
                })
                .unwrap();
                continue;
            }
            assert!(
                matches!(got.status, 400 | 403 | 404 | 405 | 409 | 429),
                "{path} {inj:?}: {} {}",
                got.status,
                got.body
            );
            if let Some(to) = &got.location {
                assert!(!to.contains(['\r', '\n']), "{to:?}");
            }
        }
        assert_eq!(snapshot(&app), before, "after {inj:?}");
    }

    // Forms that store text: the text is stored as written, and shown escaped.
    for (n, inj) in INJECTIONS.iter().enumerate() {
        let got = send(
            &svc,
            form(
                "/settings/keys",
                &session,
                &[("name", inj), ("csrf", &csrf)],
            ),
        )
        .await;
        assert_eq!(got.status, 200, "key {inj:?}");
        let stored: i64 = app
            .with_sql(|c| {
                c.value(
                    "SELECT COUNT(*) FROM api_keys WHERE name = ?1",
                    assent::args![*inj],
                )
            })
            .unwrap();
        assert_eq!(stored, 1, "key {inj:?}");
        let id = format!("lit-{n}");
        let got = send(
            &svc,
            form(
                "/sites",
                &session,
                &[
                    ("id", &id),
                    ("domains", "lit.example"),
                    ("name", inj),
                    ("csrf", &csrf),
                ],
            ),
        )
        .await;
        assert_eq!(got.status, 303, "site named {inj:?}: {}", got.body);
        assert_eq!(
            got.location.as_deref(),
            Some(format!("/sites/{id}/settings?done=added").as_str())
        );
        assert_eq!(app.state.sites.get(&id).unwrap().config.name, *inj);
        let shown = open(&svc, &session, &format!("/sites/{id}/settings")).await;
        assert_eq!(shown.status, 200);
        assert!(
            !shown.body.contains(inj) || !inj.contains(['<', '>', '"', '\'']),
            "unescaped {inj:?}"
        );
    }
    // The site settings form: the text as the name is saved as written; as the time zone, a domain or a
    // language it is refused beside its field.
    let categories = toml::to_string(&json!({
        "categories": assent::domain::site::SiteConfig::new_default("x", vec![]).categories
    }))
    .unwrap();
    // The languages a new site offers: the form keeps them, so the policy (and its revision) stays.
    let languages = assent::domain::i18n::SHIPPED.join(" ");
    for (n, inj) in INJECTIONS.iter().enumerate() {
        let path = format!("/sites/lit-{n}/settings");
        let csrf = open(&svc, &session, &path).await.csrf();
        let fields = |k: &str, v: &str| {
            let mut f = vec![
                ("name", "Lit"),
                ("domains", "lit.example"),
                ("timezone", "UTC"),
                ("languages", &languages),
                ("default_language", "en"),
                ("privacy_url", ""),
                ("categories", categories.as_str()),
                ("texts", ""),
                ("csrf", csrf.as_str()),
            ];
            f.retain(|(x, _)| *x != k);
            f.push((k, v));
            f.into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        for field in [
            "timezone",
            "domains",
            "languages",
            "default_language",
            "privacy_url",
        ] {
            let f = fields(field, inj);
            let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let got = send(&svc, form(&path, &session, &refs)).await;
            assert_eq!(got.status, 400, "{field} {inj:?}");
        }
        let f = fields("name", inj);
        let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let got = send(&svc, form(&path, &session, &refs)).await;
        assert_eq!(got.status, 303, "name {inj:?}: {}", got.body);
        let entry = app.state.sites.get(&format!("lit-{n}")).unwrap();
        assert_eq!((entry.config.name.as_str(), entry.revision), (*inj, 1));
    }
    let keys = before.iter_mut().find(|(t, _)| t == "api_keys").unwrap();
    keys.1 += INJECTIONS.len() as i64;
    let sites = before.iter_mut().find(|(t, _)| t == "sites").unwrap();
    sites.1 += INJECTIONS.len() as i64;
    let revisions = before
        .iter_mut()
        .find(|(t, _)| t == "site_revisions")
        .unwrap();
    revisions.1 += INJECTIONS.len() as i64;
    assert_eq!(snapshot(&app), before);
    let (s, after) = v2(&svc, &key, "/api/v2/query", &reference()).await;
    assert_eq!((s, &after["results"]), (200, &baseline["results"]));
}
