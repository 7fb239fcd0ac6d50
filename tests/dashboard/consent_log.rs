//! The consent log: search, pages, proof exports, and the whole view as one zip archive.

use super::*;

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
