//! The security headers of every page, and escaping of what websites sent (HTML, attributes, SVG, CSV).

use super::*;

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
