//! The dashboard in headless Chromium against the real server binary: logging in, the hand-built
//! dataset's numbers read from the page, filtering by clicking a row and removing the chip, period and
//! comparison, CSV and ZIP exports fetched with the session, realtime rising after an event, hostile
//! values from websites shown as text with no script run, a form without its CSRF token refused, a
//! viewer kept out of another site, and the period picker by keyboard. `ASSENT_SCREENSHOTS=1` also
//! writes the dashboard's screenshots in `docs/` from seeded data.
//!
//! Uses the project's browser harness (tests/browser/): without Chromium and chromedriver each test
//! prints SKIPPED and passes, unless `ASSENT_REQUIRE_BROWSER=1`.

mod common;
#[path = "common/dataset.rs"]
mod dataset;
#[path = "browser/harness.rs"]
mod harness;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::collections::BTreeMap;
use std::time::Duration;

use assent::domain::consent::{Action, ConsentId, ConsentRecord, add_months};
use assent::domain::dashboard::chart::format_metric;
use assent::domain::event::NewEvent;
use serde_json::{Value, json};
use webdriver::{Browser, Options, browser_available, keys};

const ADMIN: (&str, &str) = ("ana@example.com", "a long password");
const VIEWER: (&str, &str) = ("vic@example.com", "another long one");
const ARROW_DOWN: &str = "\u{E015}";

/// Hostile values as a website could send them: each would set `window.__xss` or the title if it ran.
const XSS_PATH: &str = "/<img src=x onerror=\"window.__xss=1;document.title='pwned'\">";
const XSS_REFERRER: &str = "evil.example/<script>window.__xss=2</script>";
const XSS_PROP: &str = "\"><svg onload=\"window.__xss=3\"></svg><script>window.__xss=4</script>";
const XSS_EVENT: &str = "<img src=x onerror=window.__xss=5>";

/// A data directory with the demo site, the "shop" site holding the statistics tests' hand-built
/// dataset, an "xss" site whose only visit (ten minutes ago) carries hostile values, an admin and a
/// viewer of "demo"; and the real server on it.
fn world() -> (tempfile::TempDir, common::Server) {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let mut db =
            assent::storage::Database::open(&dir.path().join("assent.db")).expect("database");
        assent::commands::site::add(
            &mut db,
            "demo",
            vec!["localhost".into(), "127.0.0.1".into()],
            None,
        )
        .expect("demo");
        dataset::seed_shop(&mut db);
        assent::commands::site::add(&mut db, "xss", vec!["xss.test".into()], Some("XSS".into()))
            .expect("xss");
        seed_xss(&mut db);
        db.add_user(ADMIN.0, ADMIN.1, true, 1).expect("admin");
        db.add_user(VIEWER.0, VIEWER.1, false, 1).expect("viewer");
        db.grant_site(VIEWER.0, "demo").expect("grant");
    }
    let server = common::Server::start(dir.path(), &[], &[("ASSENT_RATE_LIMIT", "0")]);
    (dir, server)
}

/// One visit on "xss" ten minutes ago, whose path, referrer, event name and property are hostile.
fn seed_xss(db: &mut assent::storage::Database) {
    let row = db.site("xss").unwrap().unwrap();
    let now = assent::now();
    let at = time::OffsetDateTime::from_unix_timestamp(now - 700).unwrap();
    let mut seeder = db.seeder("xss").unwrap();
    seeder
        .consent(&ConsentRecord {
            consent_id: ConsentId(7),
            site: "xss".into(),
            created_at: at,
            revision: 1,
            policy_hash: row.config.policy_hash(),
            choices: BTreeMap::from([("analytics".into(), true)]),
            action: Action::AcceptAll,
            language: Some("en".into()),
            page_path: Some(XSS_PATH.into()),
            expires_at: add_months(at, 13),
        })
        .unwrap();
    let event = |ts: i64, name: &str, prop: Option<&str>| NewEvent {
        site: "xss".into(),
        ts,
        name: name.into(),
        path: XSS_PATH.into(),
        referrer: Some(XSS_REFERRER.into()),
        source: Some(XSS_REFERRER.into()),
        utm_source: Some(XSS_EVENT.into()),
        utm_medium: None,
        utm_campaign: None,
        utm_content: None,
        utm_term: None,
        country: None,
        browser: "Firefox".into(),
        os: "Linux".into(),
        device: "Desktop".into(),
        screen: "Desktop".into(),
        props: prop.map(|p| json!({ "plan": p }).to_string()),
        prop_pairs: prop
            .map(|p| vec![("plan".to_string(), p.to_string())])
            .unwrap_or_default(),
        engaged_ms: None,
    };
    let visitor = assent::domain::visits::visitor_key(&row.secret, ConsentId(7));
    seeder
        .visits(&[(
            visitor,
            vec![
                event(now - 600, "pageview", None),
                event(now - 590, XSS_EVENT, Some(XSS_PROP)),
            ],
        )])
        .unwrap();
    seeder.commit().unwrap();
}

fn browser(test: &str, opts: Options) -> Option<Browser> {
    browser_available(test).then(|| Browser::start(opts))
}

/// Logs in through the form, typing like a user.
fn login(b: &Browser, base: &str, who: (&str, &str)) {
    b.goto(&format!("{base}/login"));
    b.type_into("#email", who.0);
    b.type_into("#password", who.1);
    b.click("form[action='/login'] button[type=submit]");
    b.wait(
        "location.pathname=='/'&&document.querySelector('h1')&&document.querySelector('h1').textContent=='Your sites'",
        &[],
    );
}

fn text(b: &Browser, css: &str) -> String {
    b.wait("document.querySelector(arguments[0])", &[json!(css)]);
    b.js(
        "return document.querySelector(arguments[0]).textContent.trim();",
        &[json!(css)],
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

fn headline(b: &Browser, metric: &str) -> String {
    text(b, &format!("[data-metric='{metric}']"))
}

/// Waits until the page is a new document (the previous one marked) and loaded.
fn mark(b: &Browser) {
    b.eval("(window.__old=1)");
}

fn wait_new_page(b: &Browser) {
    b.wait(
        "!window.__old&&document.readyState=='complete'&&document.querySelector('main')",
        &[],
    );
}

/// A GET with the browser's session cookie, from the test: (status, headers' content type, body).
fn fetch(b: &Browser, url: &str) -> (u16, String, Vec<u8>) {
    let session = b.cookie_value("assent_session").expect("session cookie");
    let mut res = webdriver::agent()
        .get(url)
        .header("cookie", format!("assent_session={session}"))
        .call()
        .expect("GET with the session");
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = res
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .unwrap_or_default();
    (res.status().as_u16(), kind, body)
}

fn absolute(base: &str, href: &str) -> String {
    format!("{base}{href}")
}

#[test]
fn the_dashboard_shows_the_known_numbers_filters_compares_and_exports() {
    let Some(b) = browser(
        "the_dashboard_shows_the_known_numbers_filters_compares_and_exports",
        Options::default(),
    ) else {
        return;
    };
    let (_dir, server) = world();
    let base = server.url.clone();
    login(&b, &base, ADMIN);
    let [from, to] = dataset::PERIOD;
    b.goto(&format!(
        "{base}/sites/shop?period=custom&from={from}&to={to}&compare=previous_period"
    ));
    // The numbers of the hand-built dataset, as tests/stats/hand_built.rs knows them, read from the page.
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
            headline(&b, metric),
            format_metric(metric, Some(value)),
            "{metric}"
        );
    }
    assert_eq!(headline(&b, "visitors"), "4");

    // Filter by clicking the FR row of the countries panel; a chip shows; the figures follow.
    mark(&b);
    b.click("#panel-countries a[title='Filter by FR']");
    wait_new_page(&b);
    assert!(
        b.eval("location.search")
            .as_str()
            .unwrap()
            .contains("f=visit%3Acountry%7Cis%7CFR")
    );
    assert_eq!(text(&b, ".chip strong"), "FR");
    assert_eq!(headline(&b, "visitors"), "2");
    assert_eq!(headline(&b, "visits"), "3");
    // Remove it with the chip's ×.
    mark(&b);
    b.click(".chip a");
    wait_new_page(&b);
    assert_eq!(b.eval("document.querySelectorAll('.chip').length"), 0);
    assert_eq!(headline(&b, "visitors"), "4");

    // Period and comparison from the pickers (chosen with the pointer: the form submits itself).
    mark(&b);
    b.click("select[name=compare] option[value='year_over_year']");
    wait_new_page(&b);
    assert!(
        b.eval("location.search")
            .as_str()
            .unwrap()
            .contains("compare=year_over_year")
    );
    assert_eq!(
        b.eval("document.querySelector('select[name=compare]').value"),
        "year_over_year"
    );
    assert_eq!(headline(&b, "visitors"), "4");
    mark(&b);
    b.click("select[name=period] option[value='all']");
    wait_new_page(&b);
    let search = b.eval("location.search").as_str().unwrap().to_string();
    assert!(
        search.contains("period=all") && search.contains("compare=year_over_year"),
        "{search}"
    );
    assert_eq!(
        headline(&b, "visitors"),
        "4",
        "all time holds the same dataset"
    );

    // Export a panel's CSV through its link, with the session: its rows are the dataset's countries.
    b.goto(&format!(
        "{base}/sites/shop?period=custom&from={from}&to={to}&compare=none"
    ));
    let href = b
        .js(
            "return document.querySelector('#panel-countries .panel-links a[download]').getAttribute('href');",
            &[],
        )
        .as_str()
        .unwrap()
        .to_string();
    let (status, kind, body) = fetch(&b, &absolute(&base, &href));
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/csv"), "{kind}");
    let csv = String::from_utf8(body).unwrap();
    let mut lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.remove(0), "visit:country,visitors,visits");
    lines.sort();
    assert_eq!(lines, ["(not set),1,1", "DE,1,1", "FR,2,3"]);
    // And the whole view as one archive.
    let href = b
        .js(
            "return document.querySelector('a[href*=\"export.zip\"]').getAttribute('href');",
            &[],
        )
        .as_str()
        .unwrap()
        .to_string();
    let (status, kind, body) = fetch(&b, &absolute(&base, &href));
    assert_eq!((status, kind.as_str()), (200, "application/zip"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).unwrap();
    let mut pages = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("pages.csv").unwrap(), &mut pages).unwrap();
    assert!(pages.contains("\r\n/,3,4\r\n"), "{pages}");
}

#[test]
fn the_realtime_count_rises_after_an_event() {
    let Some(b) = browser(
        "the_realtime_count_rises_after_an_event",
        Options::default(),
    ) else {
        return;
    };
    // A fresh server as a newcomer gets it (the demo site), with an admin added by the CLI.
    let server = harness::Server::start();
    let out = server.cli(&["user", "add", "rt@example.com", "--admin"]);
    let password = out
        .trim()
        .rsplit(' ')
        .next()
        .expect("printed password")
        .to_string();
    login(&b, &server.url, ("rt@example.com", &password));
    b.goto(&format!("{}/sites/demo/realtime", server.url));
    assert_eq!(text(&b, "[data-realtime-count]"), "0");
    // A visitor accepts and views a page (the banner's own API calls).
    let agent = webdriver::agent();
    let mut res = agent
        .post(format!("{}/api/consent", server.url))
        .header("user-agent", webdriver::USER_AGENT)
        .send_json(json!({"site": "demo", "revision": 1, "action": "accept_all",
            "choices": {"necessary": true, "analytics": true, "marketing": true, "preferences": true}}))
        .expect("consent");
    assert_eq!(res.status().as_u16(), 200);
    let id = res.body_mut().read_json::<Value>().unwrap()["consent_id"]
        .as_str()
        .unwrap()
        .to_string();
    let res = agent
        .post(format!("{}/api/event", server.url))
        .header("user-agent", webdriver::USER_AGENT)
        .send_json(json!({"site": "demo", "consent_id": id, "name": "pageview",
            "url": "http://localhost/pricing", "screen_width": 1280}))
        .expect("event");
    assert_eq!(res.status().as_u16(), 202);
    // The open page refreshes by itself (every 10 seconds) and counts the visitor and the page.
    b.wait_for(
        "document.querySelector('[data-realtime-count]').textContent=='1'",
        &[],
        Duration::from_secs(25),
    );
    assert!(text(&b, "[data-realtime-pages]").contains("/pricing"));
}

#[test]
fn hostile_values_from_websites_show_as_text_and_run_nothing() {
    let Some(b) = browser(
        "hostile_values_from_websites_show_as_text_and_run_nothing",
        Options::default(),
    ) else {
        return;
    };
    let (_dir, server) = world();
    let base = server.url.clone();
    login(&b, &base, ADMIN);
    // Yesterday and today (UTC, the site's zone): the visit ten minutes ago, whatever the hour.
    let day = |secs: i64| {
        time::OffsetDateTime::from_unix_timestamp(secs)
            .unwrap()
            .date()
            .to_string()
    };
    let range = format!(
        "period=custom&from={}&to={}",
        day(assent::now() - 86_400),
        day(assent::now())
    );
    let pages = [
        format!("/sites/xss?{range}"),
        format!("/sites/xss/breakdown?{range}&panel=pages"),
        format!("/sites/xss/breakdown?{range}&panel=referrers"),
        format!("/sites/xss/breakdown?{range}&panel=sources"),
        format!("/sites/xss/breakdown?{range}&panel=utm_source"),
        format!("/sites/xss/breakdown?{range}&panel=events"),
        format!("/sites/xss/breakdown?{range}&panel=prop%3Aplan"),
        "/sites/xss/realtime".into(),
        format!("/sites/xss/consent?{range}"),
        "/sites/xss/consents".into(),
    ];
    let mut seen = String::new();
    for path in &pages {
        b.goto(&format!("{base}{path}"));
        b.wait(
            "document.readyState=='complete'&&document.querySelector('main')",
            &[],
        );
        if path.ends_with("realtime") {
            // The script refreshes the table from JSON: wait for that to have happened too.
            b.wait_for(
                "document.querySelector('[data-realtime-pages] tr')",
                &[],
                Duration::from_secs(15),
            );
        }
        let state = b.eval(
            "({xss: window.__xss===undefined?null:window.__xss, title: document.title, \
              injected: document.querySelectorAll('main img, main svg[onload], main script').length, \
              text: document.querySelector('main').innerText})",
        );
        assert_eq!(state["xss"], Value::Null, "{path}: a payload ran");
        assert!(
            !state["title"].as_str().unwrap().contains("pwned"),
            "{path}"
        );
        assert_eq!(
            state["injected"], 0,
            "{path}: markup from a website became elements"
        );
        seen.push_str(state["text"].as_str().unwrap());
    }
    // Each payload is on the pages, as text.
    for payload in [XSS_PATH, XSS_REFERRER, XSS_PROP, XSS_EVENT] {
        assert!(
            seen.contains(payload),
            "{payload} not shown as text in {seen}"
        );
    }
}

#[test]
fn csrf_viewers_and_the_keyboard() {
    let Some(b) = browser("csrf_viewers_and_the_keyboard", Options::default()) else {
        return;
    };
    let (_dir, server) = world();
    let base = server.url.clone();
    login(&b, &base, ADMIN);

    // A form posted without its CSRF token is refused, and changes nothing.
    b.goto(&format!("{base}/settings"));
    b.type_into("form[action='/settings/keys'] input[name=name]", "forged");
    b.js(
        "document.querySelector(\"form[action='/settings/keys'] input[name=csrf]\").remove();",
        &[],
    );
    mark(&b);
    b.click("form[action='/settings/keys'] button[type=submit]");
    wait_new_page(&b);
    assert!(
        text(&b, "main h1").starts_with("403"),
        "{}",
        text(&b, "main")
    );
    assert!(text(&b, "main").contains("CSRF"));
    b.goto(&format!("{base}/settings"));
    assert!(text(&b, "main").contains("No key yet."));

    // The period picker by keyboard: Tab to it, arrows change it without leaving the page, Enter applies.
    b.goto(&format!("{base}/sites/shop?period=30d&compare=none"));
    let mut tabs = 0;
    while b.eval("document.activeElement&&document.activeElement.name") != "period" {
        b.keys(&[keys::TAB]);
        tabs += 1;
        assert!(tabs < 40, "the period picker is not reachable by Tab");
    }
    mark(&b);
    b.keys(&[ARROW_DOWN]);
    assert_eq!(b.eval("document.activeElement.value"), "month");
    assert_eq!(
        b.eval("!!window.__old"),
        true,
        "arrows alone do not reload the page"
    );
    b.keys(&[keys::ENTER]);
    wait_new_page(&b);
    assert!(
        b.eval("location.search")
            .as_str()
            .unwrap()
            .contains("period=month")
    );
    assert_eq!(
        b.eval("document.querySelector('select[name=period]').value"),
        "month"
    );

    // A viewer of "demo" cannot open "shop": the 404 of a site that does not exist.
    mark(&b);
    b.click("form.logout button[type=submit]");
    wait_new_page(&b);
    login(&b, &base, VIEWER);
    assert!(!text(&b, "main").contains("Shop"));
    for path in [
        "/sites/shop",
        "/sites/shop/settings",
        "/sites/shop/consents",
        "/sites/demo/settings",
    ] {
        b.goto(&format!("{base}{path}"));
        assert!(text(&b, "main h1").starts_with("404"), "{path}");
        assert!(!text(&b, "main").contains("Shop"), "{path}");
    }
    b.goto(&format!("{base}/sites/demo"));
    assert!(text(&b, "main h1").starts_with("Demo") || text(&b, "main h1").starts_with("demo"));
}

#[test]
fn site_settings_in_the_browser() {
    let Some(b) = browser("site_settings_in_the_browser", Options::default()) else {
        return;
    };
    let (_dir, server) = world();
    let base = server.url.clone();
    login(&b, &base, ADMIN);
    b.goto(&format!("{base}/sites/shop/settings"));
    assert!(text(&b, "#snippet").contains(&format!("{base}/s/shop/assent.js")));
    // The copy button copies the snippet (or, without clipboard access, selects it).
    b.click("button[data-copy]");
    b.wait(
        "document.querySelector('button[data-copy]').textContent=='Copied'||String(window.getSelection()).indexOf('/s/shop/assent.js')>=0",
        &[],
    );
    // A refused value: the message beside its field, what was typed kept.
    b.type_into("#timezone", "Mars/Olympus");
    mark(&b);
    b.click(".settings-form button[type=submit]");
    wait_new_page(&b);
    assert!(text(&b, "#err-timezone").contains("unknown time zone"));
    assert_eq!(
        b.eval("document.getElementById('timezone').value"),
        "Mars/Olympus"
    );
    assert_eq!(
        b.eval("document.getElementById('timezone').getAttribute('aria-invalid')"),
        "true"
    );
    // A good one is saved.
    b.type_into("#timezone", "Europe/Berlin");
    mark(&b);
    b.click(".settings-form button[type=submit]");
    wait_new_page(&b);
    assert!(text(&b, ".notice").contains("revision stays 1"));
    assert_eq!(
        b.eval("document.getElementById('timezone').value"),
        "Europe/Berlin"
    );
    // Ask every visitor again, confirmed.
    b.click("input[name=confirm]");
    mark(&b);
    b.click("form[action$='/ask-again'] button[type=submit]");
    wait_new_page(&b);
    assert!(text(&b, ".notice").contains("revision is now 2"));
    // Removal needs the site id typed.
    b.type_into("#confirm_id", "Shop");
    mark(&b);
    b.click("form[action$='/remove'] button[type=submit]");
    wait_new_page(&b);
    assert!(text(&b, "#err-remove").contains("Type the site id"));
    b.type_into("#confirm_id", "shop");
    mark(&b);
    b.click("form[action$='/remove'] button[type=submit]");
    wait_new_page(&b);
    assert!(text(&b, ".notice").contains("was removed"));
    assert_eq!(
        b.eval("document.querySelectorAll('a[href^=\\'/sites/shop\\']').length"),
        0
    );
}

/// `ASSENT_SCREENSHOTS=1`: the dashboard's screenshots in docs/, from a site filled by `assent seed`.
#[test]
fn screenshots_of_the_dashboard() {
    if std::env::var("ASSENT_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let Some(b) = browser(
        "screenshots_of_the_dashboard",
        Options {
            width: 1280,
            height: 1000,
            ..Options::default()
        },
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    {
        let mut db = assent::storage::Database::open(&dir.path().join("assent.db")).unwrap();
        assent::commands::site::add(
            &mut db,
            "demo",
            vec!["localhost".into(), "example.com".into()],
            Some("Example shop".into()),
        )
        .unwrap();
        db.add_user(ADMIN.0, ADMIN.1, true, 1).unwrap();
    }
    let (ok, out, err) = common::cli(
        dir.path(),
        &["seed", "demo", "--events", "40000", "--days", "60"],
    );
    assert!(ok, "{out}{err}");
    let server = common::Server::start(dir.path(), &[], &[]);
    let base = server.url.clone();
    login(&b, &base, ADMIN);
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    let shot = |path: &str, file: &str| {
        b.goto(&format!("{base}{path}"));
        b.wait(
            "document.readyState=='complete'&&document.querySelector('main')",
            &[],
        );
        b.screenshot(&docs.join(file));
    };
    shot("/sites/demo?period=30d", "dashboard-light.png");
    shot("/sites/demo/consent?period=30d", "dashboard-consent.png");
    shot("/sites/demo/settings", "site-settings.png");
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    );
    shot("/sites/demo?period=30d", "dashboard-dark.png");
    b.cdp(
        "Emulation.setEmulatedMedia",
        json!({"features": [{"name": "prefers-color-scheme", "value": "light"}]}),
    );
    b.cdp(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": true}),
    );
    shot("/sites/demo?period=7d", "dashboard-phone.png");
}
