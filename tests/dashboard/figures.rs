//! The figures the pages show: equal to the Stats API's for the small dataset and for the statistics tests'
//! hand-built one, breakdowns, periods, realtime, the consent panel, and every link leading somewhere.

use super::*;

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

#[actix_web::test]
async fn the_consent_panel_shows_decisions_rates_and_the_estimate() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let store = &app.state.store;
    // Four refusals besides the four acceptances, from a page whose path is hostile.
    for n in 5..=8u128 {
        let refused = [("analytics", false), ("marketing", false)];
        let record = ConsentRecord {
            language: Some("fr".into()),
            page_path: Some(XSS_PATH.into()),
            ..consent_record(&app, "shop", n, Action::RejectAll, &refused)
        };
        store.append_consent(record).await.unwrap();
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

/// The hand-built dataset of the statistics tests, written by the seeder into a data directory (as the
/// browser tests do before starting a server): the dashboard's headline shows the numbers that
/// `tests/stats/hand_built.rs` knows are right.
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
