//! Every metric and dimension on the hand-built dataset, with filters, a time zone and comparisons, paging
//! and CSV: the right answers are written in the tests.

use super::*;

#[actix_web::test]
async fn every_metric_and_dimension_on_the_hand_built_dataset() {
    let (app, key, _) = shop().await;
    let svc = service(&app).await;
    let query = |metrics: Value, dims: Value, filters: Value| json!({"site_id": "shop", "metrics": metrics, "date_range": PERIOD, "dimensions": dims, "filters": filters});

    let (s, body) = v2(
        &svc,
        &key,
        query(
            json!([
                "visitors",
                "visits",
                "pageviews",
                "events",
                "bounce_rate",
                "visit_duration",
                "views_per_visit"
            ]),
            json!([]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        rows(&body),
        [(json!([]), json!([4, 5, 8, 10, 20, 210, 1.6]))]
    );
    assert_eq!(
        body["query"]["date_range"],
        json!(["2026-10-05T00:00:00+02:00", "2026-10-07T23:59:59+02:00"])
    );

    let (_, body) = v2(
        &svc,
        &key,
        query(
            json!([
                "visitors",
                "visits",
                "pageviews",
                "bounce_rate",
                "time_on_page"
            ]),
            json!(["event:page"]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(
        rows(&body),
        [
            (json!(["/"]), json!([3, 3, 4, 33, null])),
            (json!(["/pricing"]), json!([2, 2, 2, 0, 15])),
            (json!(["/blog"]), json!([1, 1, 1, 0, null])),
            (json!(["/blog/post"]), json!([1, 1, 1, 0, null])),
        ]
    );

    let (_, body) = v2(
        &svc,
        &key,
        query(
            json!(["visitors", "visits", "percentage"]),
            json!(["visit:country"]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(
        rows(&body),
        [
            (json!(["FR"]), json!([2, 3, 50.0])),
            (json!(["(not set)"]), json!([1, 1, 25.0])),
            (json!(["DE"]), json!([1, 1, 25.0])),
        ]
    );

    // The visit that started at 00:30 in Paris counts on 7 October.
    let (_, body) = v2(
        &svc,
        &key,
        query(
            json!(["visitors", "pageviews"]),
            json!(["time:day"]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(
        rows(&body),
        [
            (json!(["2026-10-05"]), json!([2, 3])),
            (json!(["2026-10-06"]), json!([2, 3])),
            (json!(["2026-10-07"]), json!([1, 2])),
        ]
    );

    let (_, body) = v2(
        &svc,
        &key,
        query(
            json!(["visitors", "events", "conversion_rate"]),
            json!(["event:name"]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(
        rows(&body),
        [
            (json!(["pageview"]), json!([4, 8, 100.0])),
            (json!(["Signup"]), json!([2, 2, 50.0])),
        ]
    );

    let (_, body) = v2(
        &svc,
        &key,
        query(
            json!(["visitors", "events"]),
            json!(["event:props:plan"]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(
        rows(&body),
        [
            (json!(["free"]), json!([1, 1])),
            (json!(["pro"]), json!([1, 1]))
        ]
    );

    let (_, body) = v2(
        &svc,
        &key,
        query(
            json!(["visitors", "visits", "bounce_rate", "visit_duration"]),
            json!(["visit:entry_page"]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(
        rows(&body),
        [
            (json!(["/"]), json!([3, 3, 33, 30])),
            (json!(["/blog"]), json!([1, 1, 0, 900])),
            (json!(["/pricing"]), json!([1, 1, 0, 60])),
        ]
    );

    let (_, body) = v2(
        &svc,
        &key,
        query(
            json!(["visits", "visitors"]),
            json!(["visit:exit_page"]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(
        rows(&body),
        [
            (json!(["/"]), json!([2, 2])),
            (json!(["/pricing"]), json!([2, 2])),
            (json!(["/blog/post"]), json!([1, 1])),
        ]
    );

    let simple = [
        (
            "visit:source",
            json!([
                [["Direct / None"], [2, 2]],
                [["Google"], [1, 1]],
                [["Hacker News"], [1, 1]],
                [["Newsletter"], [1, 1]]
            ]),
        ),
        (
            "visit:referrer",
            json!([
                [["Direct / None"], [3, 3]],
                [["google.com"], [1, 1]],
                [["news.ycombinator.com"], [1, 1]]
            ]),
        ),
        (
            "visit:utm_source",
            json!([[["(not set)"], [3, 4]], [["newsletter"], [1, 1]]]),
        ),
        (
            "visit:utm_medium",
            json!([[["(not set)"], [3, 4]], [["email"], [1, 1]]]),
        ),
        (
            "visit:utm_campaign",
            json!([[["(not set)"], [3, 4]], [["spring"], [1, 1]]]),
        ),
        ("visit:utm_content", json!([[["(not set)"], [4, 5]]])),
        ("visit:utm_term", json!([[["(not set)"], [4, 5]]])),
        (
            "visit:browser",
            json!([
                [["Chrome"], [1, 2]],
                [["Edge"], [1, 1]],
                [["Firefox"], [1, 1]],
                [["Safari"], [1, 1]]
            ]),
        ),
        (
            "visit:os",
            json!([
                [["Windows"], [2, 3]],
                [["Linux"], [1, 1]],
                [["iOS"], [1, 1]]
            ]),
        ),
        (
            "visit:device",
            json!([
                [["Desktop"], [2, 3]],
                [["Laptop"], [1, 1]],
                [["Mobile"], [1, 1]]
            ]),
        ),
        (
            "visit:screen",
            json!([
                [["Laptop"], [2, 2]],
                [["Desktop"], [1, 2]],
                [["Mobile"], [1, 1]]
            ]),
        ),
    ];
    for (dim, want) in simple {
        let (s, body) = v2(
            &svc,
            &key,
            query(json!(["visitors", "visits"]), json!([dim]), json!([])),
        )
        .await;
        assert_eq!(s, 200, "{dim}: {body}");
        let got: Vec<Value> = rows(&body)
            .into_iter()
            .map(|(d, m)| json!([d, m]))
            .collect();
        assert_eq!(json!(got), want, "{dim}");
    }

    // Filters: on a visit dimension, negated, and an `or` across a visit and an event dimension.
    for (filters, want) in [
        (json!([["is", "visit:country", ["FR"]]]), json!([2, 3, 5])),
        (
            json!([["not", ["is", "visit:country", ["FR"]]]]),
            json!([2, 2, 3]),
        ),
        (
            json!([[
                "or",
                [
                    ["is", "visit:country", ["DE"]],
                    ["contains", "event:page", ["blog"]]
                ]
            ]]),
            json!([2, 2, 3]),
        ),
        (
            json!([["contains", "event:page", ["PRICING"], {"case_sensitive": false}]]),
            json!([2, 2, 2]),
        ),
        (
            json!([["matches", "event:page", ["^/blog/.+"]]]),
            json!([1, 1, 1]),
        ),
        (
            json!([
                ["is_not", "visit:browser", ["Chrome"]],
                ["contains_not", "event:page", ["/"]]
            ]),
            json!([0, 0, 0]),
        ),
    ] {
        let (s, body) = v2(
            &svc,
            &key,
            query(
                json!(["visitors", "visits", "pageviews"]),
                json!([]),
                filters.clone(),
            ),
        )
        .await;
        assert_eq!(s, 200, "{filters}: {body}");
        assert_eq!(rows(&body), [(json!([]), want.clone())], "{filters}");
    }
    // A breakdown under a filter on another dimension (answered from the rows).
    let (_, body) = v2(
        &svc,
        &key,
        query(
            json!(["visitors", "pageviews"]),
            json!(["event:page"]),
            json!([["is", "visit:country", ["FR"]]]),
        ),
    )
    .await;
    assert_eq!(
        rows(&body),
        [
            (json!(["/pricing"]), json!([2, 2])),
            (json!(["/"]), json!([1, 1])),
            (json!(["/blog"]), json!([1, 1])),
            (json!(["/blog/post"]), json!([1, 1])),
        ]
    );
    // Two dimensions, and hours.
    let (_, body) = v2(
        &svc,
        &key,
        query(
            json!(["visitors"]),
            json!(["visit:country", "visit:device"]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(rows(&body)[0], (json!(["(not set)", "Laptop"]), json!([1])));
    assert_eq!(rows(&body).len(), 4);
    let (_, body) = v2(&svc, &key, json!({"site_id": "shop", "metrics": ["pageviews"], "date_range": ["2026-10-07", "2026-10-07"], "dimensions": ["time:hour"]})).await;
    assert_eq!(rows(&body), [(json!(["2026-10-07 00:00:00"]), json!([2]))]);
}

#[actix_web::test]
async fn comparisons_labels_paging_and_csv() {
    let (app, key, _) = shop().await;
    let svc = service(&app).await;
    let (s, body) = v2(
        &svc,
        &key,
        json!({"site_id": "shop", "metrics": ["visitors", "bounce_rate"], "date_range": PERIOD,
        "include": {"comparisons": {"mode": "previous_period"}}}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["results"][0]["comparison"],
        json!({"dimensions": [], "metrics": [0, 0], "change": [100, null]})
    );
    let (_, body) = v2(&svc, &key, json!({"site_id": "shop", "metrics": ["visitors"], "date_range": ["2026-10-04", "2026-10-07"],
        "dimensions": ["time:day"], "include": {"time_labels": true, "total_rows": true}})).await;
    assert_eq!(
        body["meta"]["time_labels"],
        json!(["2026-10-04", "2026-10-05", "2026-10-06", "2026-10-07"])
    );
    assert_eq!(body["meta"]["total_rows"], json!(4));
    assert_eq!(rows(&body)[0], (json!(["2026-10-04"]), json!([0])));
    let (_, body) = v2(&svc, &key, json!({"site_id": "shop", "metrics": ["visitors"], "date_range": PERIOD,
        "dimensions": ["event:page"], "pagination": {"limit": 2, "offset": 1}, "include": {"total_rows": true}})).await;
    assert_eq!(
        rows(&body),
        [
            (json!(["/pricing"]), json!([2])),
            (json!(["/blog"]), json!([1]))
        ]
    );
    assert_eq!(body["meta"]["total_rows"], json!(4));

    // CSV, for v2 and v1.
    let req = TestRequest::post()
        .uri("/api/v2/query")
        .insert_header(("authorization", format!("Bearer {key}")))
        .insert_header(("accept", "text/csv"))
        .set_payload(json!({"site_id": "shop", "metrics": ["visitors", "pageviews"], "date_range": PERIOD, "dimensions": ["event:page"]}).to_string());
    let res = actix_web::test::call_service(&svc, req.to_request()).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        res.headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = String::from_utf8(actix_web::test::read_body(res).await.to_vec()).unwrap();
    assert_eq!(
        csv,
        "event:page,visitors,pageviews\r\n/,3,4\r\n/pricing,2,2\r\n/blog,1,1\r\n/blog/post,1,1\r\n"
    );
    let req = TestRequest::get()
        .uri("/api/v1/stats/breakdown?site_id=shop&period=custom&date=2026-10-05,2026-10-07&property=visit:country")
        .insert_header(("authorization", format!("Bearer {key}")))
        .insert_header(("accept", "text/csv"));
    let res = actix_web::test::call_service(&svc, req.to_request()).await;
    let csv = String::from_utf8(actix_web::test::read_body(res).await.to_vec()).unwrap();
    assert_eq!(
        csv,
        "visit:country,visitors\r\nFR,2\r\n(not set),1\r\nDE,1\r\n"
    );
}
