//! Keys that see only their user's sites, bad parameters named in a 400, and the hourly limit of a key.

use super::*;

#[actix_web::test]
async fn keys_see_their_sites_only_and_bad_parameters_are_named() {
    let (app, admin, viewer) = shop().await;
    let svc = service(&app).await;
    let q = json!({"site_id": "shop", "metrics": ["visitors"], "date_range": PERIOD});
    let (s, body) = v2(&svc, &viewer, q.clone()).await;
    assert_eq!(s, 401, "a viewer of demo reads shop: {body}");
    let (s, _) = v2(
        &svc,
        &viewer,
        json!({"site_id": "demo", "metrics": ["visitors"], "date_range": "7d"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = v2(&svc, "assent_nope", q.clone()).await;
    assert_eq!(s, 401);
    let (s, body) = call(
        &svc,
        TestRequest::post()
            .uri("/api/v2/query")
            .set_payload(q.to_string()),
    )
    .await;
    assert_eq!(s, 401, "{body}");
    let (s, _) = v1(&svc, &viewer, "/api/v1/stats/aggregate?site_id=shop").await;
    assert_eq!(s, 401);
    let (s, _) = v2(
        &svc,
        &admin,
        json!({"site_id": "nosuch", "metrics": ["visitors"], "date_range": "7d"}),
    )
    .await;
    assert_eq!(s, 401, "an unknown site looks like a forbidden one");

    let bad = [
        (
            json!({"site_id": "shop", "metrics": ["visitors", "frobs"], "date_range": "7d"}),
            "#/metrics/1: Invalid metric \"frobs\"",
        ),
        (
            json!({"site_id": "shop", "metrics": ["visitors"], "date_range": "8d"}),
            "#/date_range",
        ),
        (
            json!({"site_id": "shop", "metrics": ["visitors"], "date_range": ["2026-10-07", "2026-10-05"]}),
            "#/date_range",
        ),
        (
            json!({"site_id": "shop", "metrics": ["visitors"], "date_range": "7d", "dimensions": ["visit:planet"]}),
            "#/dimensions/0: Invalid dimension \"visit:planet\"",
        ),
        (
            json!({"site_id": "shop", "metrics": ["visitors"], "date_range": "7d", "filters": [["is", "event:page"]]}),
            "#/filters/0: Invalid filter",
        ),
        (
            json!({"site_id": "shop", "metrics": ["visitors"], "date_range": "7d", "filters": [["sounds_like", "event:page", ["/"]]]}),
            "unknown operator",
        ),
        (
            json!({"site_id": "shop", "metrics": ["visitors"], "date_range": "7d", "filters": [["matches", "event:page", ["("]]]}),
            "invalid pattern",
        ),
        (
            json!({"site_id": "shop", "metrics": ["bounce_rate"], "date_range": "7d", "dimensions": ["event:name"]}),
            "Session metric(s) `bounce_rate` cannot be queried along with event dimension(s) `event:name`",
        ),
        (
            json!({"site_id": "shop", "metrics": ["pageviews"], "date_range": "7d", "dimensions": ["visit:exit_page"]}),
            "Event metric(s) `pageviews`",
        ),
        (
            json!({"site_id": "shop", "metrics": ["views_per_visit"], "date_range": "7d", "dimensions": ["visit:source"]}),
            "views_per_visit",
        ),
        (
            json!({"site_id": "shop", "metrics": ["time_on_page"], "date_range": "7d"}),
            "time_on_page",
        ),
        (
            json!({"site_id": "shop", "metrics": ["visitors"], "date_range": "7d", "include": {"time_labels": true}}),
            "requires a time dimension",
        ),
        (
            json!({"site_id": "shop", "metrics": ["visitors"], "date_range": "7d", "order_by": [["visits", "desc"]]}),
            "order_by",
        ),
        (
            json!({"site_id": "shop", "metrics": ["visitors"], "date_range": "7d", "pagination": {"limit": 0}}),
            "#/pagination/limit",
        ),
        (
            json!({"site_id": "shop", "metrics": ["visitors"], "date_range": "7d", "colour": "red"}),
            "#/colour",
        ),
        (
            json!({"site_id": "shop", "date_range": "7d"}),
            "Required properties metrics",
        ),
    ];
    for (body, needle) in bad {
        let (s, answer) = v2(&svc, &admin, body.clone()).await;
        assert_eq!(s, 400, "{body}: {answer}");
        let msg = answer["error"].as_str().unwrap();
        assert!(
            msg.contains(needle),
            "{body}: {msg:?} should name {needle:?}"
        );
    }
    for (path, needle) in [
        (
            "/api/v1/stats/aggregate?site_id=shop&period=fortnight",
            "period",
        ),
        (
            "/api/v1/stats/aggregate?site_id=shop&metrics=visitors,frobs",
            "metrics",
        ),
        ("/api/v1/stats/breakdown?site_id=shop", "property"),
        (
            "/api/v1/stats/breakdown?site_id=shop&property=event:page&limit=5000",
            "limit",
        ),
        (
            "/api/v1/stats/aggregate?site_id=shop&filters=visit:country~FR",
            "filters",
        ),
        (
            "/api/v1/stats/aggregate?site_id=shop&period=custom&date=2026-13-01,2026-10-07",
            "date",
        ),
    ] {
        let (s, answer) = v1(&svc, &admin, path).await;
        assert_eq!(s, 400, "{path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{path}: {answer}"
        );
    }
}

#[actix_web::test]
async fn a_key_is_limited_to_600_requests_an_hour() {
    let (app, key, _) = shop().await;
    let svc = service(&app).await;
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..610 {
        let (s, _) = v1(&svc, &key, "/api/v1/stats/realtime/visitors?site_id=shop").await;
        *statuses.entry(s).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&200), Some(&600), "{statuses:?}");
    assert_eq!(statuses.get(&429), Some(&10), "{statuses:?}");
}
