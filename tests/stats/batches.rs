//! `POST /api/v2/queries`: a set of queries answered as each would be alone, on one worker or two.

use super::*;

/// `POST /api/v2/queries`: a dashboard's set in one request answers exactly what each query answers on its
/// own (rows read once per period); a bad query is named by its position; keys still see their sites only.
#[actix_web::test]
async fn a_batch_answers_as_its_queries_do() {
    let (app, key, viewer) = shop().await;
    let svc = service(&app).await;
    let country = json!([["is", "visit:country", ["FR"]]]);
    let page = json!([["is", "event:page", ["/pricing"]]]);
    let mut set = Vec::new();
    for filters in [json!([]), country, page] {
        set.push(json!({"site_id": "shop", "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"],
            "date_range": PERIOD, "filters": filters, "include": {"comparisons": {"mode": "previous_period"}}}));
        set.push(
            json!({"site_id": "shop", "metrics": ["visitors", "pageviews"], "date_range": PERIOD,
            "filters": filters, "dimensions": ["time:hour"]}),
        );
        for dim in [
            "event:page",
            "visit:entry_page",
            "visit:source",
            "visit:country",
            "event:props:plan",
        ] {
            set.push(
                json!({"site_id": "shop", "metrics": ["visitors", "percentage", "visits"],
                "date_range": PERIOD, "filters": filters, "dimensions": [dim]}),
            );
        }
        set.push(json!({"site_id": "shop", "metrics": ["visitors", "conversion_rate"], "date_range": PERIOD,
            "filters": filters, "dimensions": ["event:name"]}));
    }
    let batch = |body: Value, key: String| {
        TestRequest::post()
            .uri("/api/v2/queries")
            .insert_header(("authorization", format!("Bearer {key}")))
            .insert_header(("content-type", "application/json"))
            .set_payload(body.to_string())
    };
    let (s, answers) = call(&svc, batch(json!(set), key.clone())).await;
    assert_eq!(s, 200, "{answers}");
    let answers = answers.as_array().expect("an array of answers").clone();
    assert_eq!(answers.len(), set.len());
    let mut non_empty = 0;
    for (query, answer) in set.iter().zip(&answers) {
        let (s, alone) = v2(&svc, &key, query.clone()).await;
        assert_eq!(s, 200, "{alone}");
        assert_eq!(answer["results"], alone["results"], "{query}");
        non_empty += (!rows(answer).is_empty()) as usize;
    }
    assert!(non_empty > set.len() / 2, "the set has figures to compare");

    let mut bad = set[..3].to_vec();
    bad[1]["metrics"] = json!(["nonsense"]);
    let (s, body) = call(&svc, batch(json!(bad), key.clone())).await;
    assert_eq!(s, 400);
    assert!(body.to_string().contains("[1]"), "{body}");
    for body in [
        json!([]),
        json!({"site_id": "shop"}),
        json!(vec![set[0].clone(); 31]),
    ] {
        let (s, _) = call(&svc, batch(body, key.clone())).await;
        assert_eq!(s, 400);
    }
    let (s, _) = call(&svc, batch(json!(set[..2]), viewer)).await;
    assert_eq!(s, 401, "a viewer of demo reads shop through a batch");
}

/// The server answers a set on one connection per core, all reading one snapshot: whatever the cores of
/// the machine running this test, the set answered by two workers equals the set answered by one, query
/// for query (both paths: rollups for whole days, the rows for hours and a page filter).
#[actix_web::test]
async fn a_set_answered_by_two_workers_equals_one_answered_by_one() {
    use assent::domain::stats::period::{Clock, Zone};
    use assent::domain::stats::{engine, parallel, plausible};
    use assent::storage::stats::SqlSource;

    let (app, _, _) = shop().await;
    app.state.store.flush().await.unwrap();
    let clock = Clock {
        now: assent::now(),
        zone: Zone::parse("Europe/Paris").unwrap(),
        first_day: None,
    };
    let mut queries = Vec::new();
    for filters in [
        json!([]),
        json!([["is", "event:page", ["/pricing"]]]),
        json!([["is", "visit:country", ["FR"]]]),
    ] {
        for dims in [
            json!([]),
            json!(["time:hour"]),
            json!(["time:day"]),
            json!(["event:page"]),
            json!(["visit:source"]),
            json!(["visit:country"]),
        ] {
            let body = json!({"site_id": "shop", "date_range": PERIOD, "filters": filters,
                "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"],
                "dimensions": dims, "include": {"comparisons": {"mode": "previous_period"}}});
            queries.push(plausible::parse(&body, &clock).unwrap().query);
        }
    }
    let (alone, together) = assent::storage::sql::off_runtime(|| {
        let (mut first, mut second) = (app.sql(), app.sql());
        let alone = engine::run_batch(&SqlSource::new(first.conn()), &queries);
        let mut workers = [SqlSource::new(first.conn()), SqlSource::new(second.conn())];
        (alone, parallel::run_batch(&mut workers, &queries))
    });
    assert_eq!(alone.len(), queries.len());
    assert_eq!(together.len(), queries.len());
    let mut figures = 0;
    for ((a, b), q) in alone.iter().zip(&together).zip(&queries) {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        assert_eq!(format!("{:?}", a.table), format!("{:?}", b.table), "{q:?}");
        assert_eq!(
            format!("{:?}", a.comparison),
            format!("{:?}", b.comparison),
            "{q:?}"
        );
        figures += a.table.rows.len();
    }
    assert!(figures > queries.len(), "the set has rows to compare");
    assert!(alone.iter().any(|a| a.as_ref().unwrap().from_rollups));
    assert!(alone.iter().any(|a| !a.as_ref().unwrap().from_rollups));
}
