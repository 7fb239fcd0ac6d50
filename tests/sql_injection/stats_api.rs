//! Every parameter of the Stats API (v2 query and batch, v1 endpoints) taken literally.

use super::*;

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
