//! The statistics engine and the Stats API on a dataset built by hand (`common/dataset.rs`), whose right
//! answers are written in the tests, one module per concern under `tests/stats/`: every metric, every
//! dimension, filters with `not` and `or`, a comparison, a time zone (a visit across midnight in
//! Europe/Paris counts on the Paris day), through v2, v1 and CSV alike; keys that see only their user's
//! sites; bad parameters named in a 400; sets of queries in one request. This file holds the app and the
//! request helpers they share.

mod common;

use actix_web::test::TestRequest;
use assent::domain::consent::{Action, ConsentId};
use assent::domain::event::NewEvent;
use common::*;
use serde_json::{Value, json};

#[path = "common/dataset.rs"]
mod dataset;

#[path = "stats/access.rs"]
mod access;
#[path = "stats/api_versions.rs"]
mod api_versions;
#[path = "stats/batches.rs"]
mod batches;
#[path = "stats/hand_built.rs"]
mod hand_built;

use dataset::{dataset, ts};

/// The app with the "shop" site (Europe/Paris) holding the dataset, and two keys: an admin's, and a
/// viewer's who may read "demo" only.
async fn shop() -> (TestApp, String, String) {
    let app = TestApp::build(&[("ASSENT_RATE_LIMIT", "0")], |db| {
        let mut cfg =
            assent::domain::site::SiteConfig::new_default("Shop", vec!["shop.test".into()]);
        cfg.timezone = "Europe/Paris".into();
        db.add_site("shop", &cfg, assent::now()).unwrap();
        db.add_user("ana@example.com", "a long password", true, 1)
            .unwrap();
        db.add_user("vic@example.com", "another long one", false, 1)
            .unwrap();
        db.grant_site("vic@example.com", "demo").unwrap();
    });
    let (admin, viewer) = app.with_database(|db| {
        (
            db.create_key("ana@example.com", "ci", 1).unwrap(),
            db.create_key("vic@example.com", "ci", 1).unwrap(),
        )
    });
    let store = &app.state.store;
    for n in 1..=4u128 {
        let record = consent_record(&app, "shop", n, Action::AcceptAll, &[("analytics", true)]);
        store.append_consent(record).await.unwrap();
    }
    for (who, v) in dataset() {
        for (at, name, page, prop, engaged) in &v.events {
            let e = NewEvent {
                site: "shop".into(),
                ts: ts(at),
                name: name.to_string(),
                path: page.to_string(),
                referrer: v.referrer.map(String::from),
                source: v.source.map(String::from),
                utm_source: v.utm.map(|u| u.0.to_string()),
                utm_medium: v.utm.map(|u| u.1.to_string()),
                utm_campaign: v.utm.map(|u| u.2.to_string()),
                utm_content: None,
                utm_term: None,
                country: v.country.map(String::from),
                browser: v.client.0.into(),
                os: v.client.1.into(),
                device: v.client.2.into(),
                screen: v.client.3.into(),
                props: prop.map(|(k, val)| json!({ k: val }).to_string()),
                prop_pairs: prop
                    .map(|(k, val)| vec![(k.to_string(), val.to_string())])
                    .unwrap_or_default(),
                engaged_ms: *engaged,
            };
            assert!(store.record_event(ConsentId(who), e).await.unwrap());
        }
    }
    (app, admin, viewer)
}

const PERIOD: [&str; 2] = ["2026-10-05", "2026-10-07"];

async fn v2<S, B>(svc: &S, key: &str, body: Value) -> (u16, Value)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let req = TestRequest::post()
        .uri("/api/v2/query")
        .insert_header(("authorization", format!("Bearer {key}")))
        .insert_header(("content-type", "application/json"))
        .set_payload(body.to_string());
    call(svc, req).await
}

async fn v1<S, B>(svc: &S, key: &str, path: &str) -> (u16, Value)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let req = TestRequest::get()
        .uri(path)
        .insert_header(("authorization", format!("Bearer {key}")));
    call(svc, req).await
}

/// The result rows as (dimensions, metrics).
fn rows(body: &Value) -> Vec<(Value, Value)> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {body}"))
        .iter()
        .map(|r| (r["dimensions"].clone(), r["metrics"].clone()))
        .collect()
}
