//! SQL injection through every parameter of the Stats API (v2 query and batch, v1 endpoints) and every
//! dashboard form, filter and path: each attempt gets a 4xx or a correct, harmless answer (the text taken
//! literally: a filter on it matches nothing, a name holding it is stored as written), and the database is
//! intact afterwards: the integrity check passes, every table holds what it held (plus what a form that was
//! meant to write wrote) and a reference query answers as before. On PostgreSQL (`ASSENT_TEST_ENGINE`), where
//! SQLite's integrity check and attached databases have no counterpart, the tables themselves are counted.
//! This file holds the injections, the snapshot and the reference query; the tests are in `tests/sql_injection/`.

mod common;

#[path = "sql_injection/dashboard.rs"]
mod dashboard;
#[path = "sql_injection/stats_api.rs"]
mod stats_api;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::TestRequest;
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
