//! End-to-end tests of the consent banner and tracker in headless Chromium,
//! against the real server binary (or, with `ASSENT_BROWSER_BACKEND=stub`,
//! an in-process imitation of its API).
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian: `apt-get install
//! chromium chromium-driver`). Without them every test prints a SKIPPED line
//! and passes, unless `ASSENT_REQUIRE_BROWSER=1`.
//! `ASSENT_SCREENSHOTS=1` also regenerates the screenshots in `docs/`.

#[path = "browser/harness.rs"]
mod harness;
#[path = "browser/payload.rs"]
mod payload;
#[path = "browser/webdriver.rs"]
mod webdriver;

use harness::Env;
use serde_json::{Value, json};
use webdriver::{Browser, Options, browser_available, keys};

fn setup(test: &str, opts: Options) -> Option<(Env, Browser)> {
    if !browser_available(test) {
        return None;
    }
    let env = Env::new();
    let browser = Browser::start(opts);
    Some((env, browser))
}

/// Waits until the choice is recorded (cookie written) and returns the id.
fn consent_id(b: &Browser) -> String {
    b.wait(
        "document.cookie.indexOf('assent_consent=')>=0&&window.assent.consent()&&window.assent.consent().id&&window.assent.consent().expires_at",
        &[],
    );
    b.eval("assent.consent().id").as_str().unwrap().to_string()
}

fn banner_visible(b: &Browser) -> bool {
    b.eval("!!document.querySelector('.assent-ban:not([hidden])')") == true
}

/// Requests the page's scripts sent to `/api/event` (fetch and sendBeacon).
fn event_requests(b: &Browser) -> Vec<Value> {
    let v = b.eval("window.__net.filter(function(r){return r.url.indexOf('/api/event')>=0;})");
    v.as_array().cloned().unwrap_or_default()
}

fn resource_entries(b: &Browser, needle: &str) -> usize {
    b.js(
        "var n=arguments[0];return performance.getEntriesByType('resource').filter(function(e){return e.name.indexOf(n)>=0;}).length;",
        &[json!(needle)],
    )
    .as_u64()
    .unwrap()
    .try_into()
    .unwrap()
}

fn path_of(e: &Value) -> String {
    for k in ["path", "pathname", "page"] {
        if let Some(p) = e[k].as_str() {
            return p.to_string();
        }
    }
    let url = e["url"].as_str().unwrap_or_default();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".into(), |i| {
        rest[i..].split(['?', '#']).next().unwrap().to_string()
    })
}

fn is_pageview(e: &Value, path: &str) -> bool {
    e["name"] == "pageview" && path_of(e) == path
}

#[test]
fn banner_shows_and_nothing_is_sent_before_a_choice() {
    let Some((env, b)) = setup(
        "banner_shows_and_nothing_is_sent_before_a_choice",
        Options::default(),
    ) else {
        return;
    };
    let url = env.page(
        "/",
        "en",
        "<p><a href=\"https://example.org/x\">out</a></p>",
    );
    b.goto(&url);
    b.wait("document.querySelector('.assent-ban')", &[]);
    // a labelled region with the three first-layer buttons
    let label = b.eval(
        "(function(s){var h=document.getElementById(s.getAttribute('aria-labelledby'));return s.tagName+'|'+(h&&h.textContent);})(document.querySelector('.assent-ban'))",
    );
    assert_eq!(label, "SECTION|Your privacy");
    let buttons = b.eval(
        "[].map.call(document.querySelectorAll('.assent-ban button'),function(x){var r=x.getBoundingClientRect(),s=getComputedStyle(x);return [x.textContent,Math.round(r.width),Math.round(r.height),s.backgroundColor,s.color,s.fontWeight,x.className];})",
    );
    let buttons = buttons.as_array().unwrap();
    let names: Vec<&str> = buttons.iter().map(|x| x[0].as_str().unwrap()).collect();
    assert_eq!(names, ["Accept all", "Reject all", "Customise"]);
    for x in buttons {
        // equal size, colour weight and class: no dark pattern
        assert_eq!(
            x.as_array().unwrap()[1..],
            buttons[0].as_array().unwrap()[1..],
            "{buttons:?}"
        );
    }
    // the banner overlays the page: no layout shift
    assert_eq!(
        b.eval("getComputedStyle(document.querySelector('.assent-ban')).position"),
        "fixed"
    );
    assert_eq!(
        b.eval("document.querySelector('.assent').getAttribute('lang')"),
        "en"
    );
    // scrolling, clicking the page and calling the API are not consent
    b.js(
        "window.scrollTo(0,200);document.querySelector('h1').click();assent.track('early',{a:1});",
        &[],
    );
    b.click("h1");
    assert_eq!(b.eval("assent.consent()"), Value::Null);
    assert_eq!(b.eval("document.cookie"), "");
    assert_eq!(b.eval("localStorage.length+sessionStorage.length"), 0);
    assert!(b.cookies().is_empty(), "{:?}", b.cookies());
    assert_eq!(b.eval("window.__net.length"), 0, "{}", b.debug_state());
    assert_eq!(resource_entries(&b, "/api/"), 0);
    // the script and its stylesheet are all that was loaded from Assent
    assert_eq!(resource_entries(&b, "/s/assent.css"), 1);
    // reloading still asks
    b.goto(&url);
    b.wait("document.querySelector('.assent-ban')", &[]);
    assert_eq!(b.eval("document.cookie"), "");
}

#[test]
fn reject_all_records_the_refusal_and_sends_no_event() {
    let Some((env, b)) = setup(
        "reject_all_records_the_refusal_and_sends_no_event",
        Options::default(),
    ) else {
        return;
    };
    let url = env.page(
        "/r",
        "en",
        "<button data-assent-event=\"Clicked\">go</button>",
    );
    b.goto(&url);
    b.click(".assent-ban button:nth-of-type(2)");
    let id = consent_id(&b);
    let c = b.eval("assent.consent().choices");
    assert_eq!(
        c,
        json!({"necessary": true, "analytics": false, "marketing": false, "preferences": false})
    );
    let records = env.wait_consents(&id, 1);
    assert_eq!(records.last().unwrap()["action"], "reject_all");
    assert!(!banner_visible(&b));
    // the next page: no banner, no tracking, even when asked to
    b.goto(&url);
    b.wait("window.assent&&assent.consent()", &[]);
    b.js(
        "assent.track('Signup');document.querySelector('[data-assent-event]').click();",
        &[],
    );
    assert!(!banner_visible(&b));
    assert!(event_requests(&b).is_empty(), "{:?}", event_requests(&b));
    assert_eq!(resource_entries(&b, "/api/event"), 0);
    assert!(env.events(&id).is_empty());
    assert_eq!(
        env.consents(&id).len(),
        1,
        "reloading must not record again"
    );
    // the choice cookie: first-party, Lax, Path=/, at most 13 months
    let cookie = b
        .cookies()
        .into_iter()
        .find(|c| c["name"] == "assent_consent")
        .expect("assent_consent cookie");
    assert_eq!(cookie["path"], "/");
    assert_eq!(cookie["sameSite"], "Lax");
    let expiry = cookie["expiry"].as_f64().expect("cookie expiry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        expiry > now && expiry <= now + 396.0 * 86400.0,
        "expiry {expiry}"
    );
}

#[test]
fn accept_all_stores_a_pageview_with_path_and_referrer() {
    let Some((env, b)) = setup(
        "accept_all_stores_a_pageview_with_path_and_referrer",
        Options::default(),
    ) else {
        return;
    };
    let url = env.page("/landing", "en", "");
    // (an http referrer: an https one is dropped on the way to an http page)
    b.goto_from(
        &format!("{url}?utm_source=newsletter&x=1"),
        "http://www.google.com/",
    );
    b.wait("document.querySelector('.assent-ban')", &[]);
    let fired = b.js_async(
        "var done=arguments[0];document.addEventListener('assent:consent',function(e){done(e.detail);});assent.acceptAll();",
        &[],
    );
    assert_eq!(fired["choices"]["analytics"], true, "{fired}");
    let id = consent_id(&b);
    assert_eq!(fired["id"], json!(id));
    assert_eq!(
        env.wait_consents(&id, 1).last().unwrap()["action"],
        "accept_all"
    );
    let pv = env.wait_event(&id, "pageview /landing", |e| is_pageview(e, "/landing"));
    // the visit keeps the referrer's source and the UTM parameters of the URL
    let visit = env.visitor(&id)["visits"][0].clone();
    let referrer = format!(
        "{}{}",
        visit["referrer"].as_str().unwrap_or(""),
        pv["referrer"].as_str().unwrap_or("")
    );
    assert!(
        referrer.to_lowercase().contains("google"),
        "referrer not stored: {visit} {pv}"
    );
    assert_eq!(visit["utm_source"], "newsletter", "{visit}");
    // the request itself carried the full URL (UTM) and the screen width
    let sent = event_requests(&b);
    let body: Value = serde_json::from_str(sent[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["name"], "pageview");
    assert!(
        body["url"]
            .as_str()
            .unwrap()
            .contains("utm_source=newsletter")
    );
    assert!(body["screen_width"].as_u64().unwrap() > 0);
    assert_eq!(body["consent_id"], json!(id));
    // a second page: a page view without a banner
    let second = env.page("/second", "en", "");
    b.goto(&second);
    env.wait_event(&id, "pageview /second", |e| is_pageview(e, "/second"));
    assert!(!banner_visible(&b));
}

#[test]
fn spa_navigation_sends_a_second_pageview() {
    let Some((env, b)) = setup("spa_navigation_sends_a_second_pageview", Options::default()) else {
        return;
    };
    env.update_site(
        false,
        |c| c["options"]["spa"] = json!(true),
        |t| set_option(t, "spa", toml::Value::Boolean(true)),
    );
    env.wait_script("\"spa\":true");
    let url = env.page("/app", "en", "");
    // a focused, visible page accumulates engaged time
    b.cdp(
        "Emulation.setFocusEmulationEnabled",
        json!({"enabled": true}),
    );
    b.goto(&url);
    b.click(".assent-ban button");
    let id = consent_id(&b);
    env.wait_event(&id, "pageview /app", |e| is_pageview(e, "/app"));
    b.wait("document.hasFocus()", &[]);
    std::thread::sleep(std::time::Duration::from_millis(300)); // engaged time to report
    b.js("history.pushState({},'', '/app/settings');", &[]);
    // leaving /app reports its engaged time
    let engaged = env.wait_event(&id, "engagement /app", |e| {
        e["name"] == "engagement" && path_of(e) == "/app"
    });
    assert!(
        engaged["engaged_ms"].as_u64().unwrap_or(0) >= 200,
        "{engaged}"
    );
    env.wait_event(&id, "pageview /app/settings", |e| {
        is_pageview(e, "/app/settings")
    });
    // same path again: no duplicate; back button: a page view of /app
    b.js("history.replaceState({},'', '/app/settings?tab=2');", &[]);
    b.js("history.back();", &[]);
    b.wait("location.pathname=='/app'", &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let views: Vec<String> = env
            .events(&id)
            .iter()
            .filter(|e| e["name"] == "pageview")
            .map(path_of)
            .collect();
        if views.len() >= 3 {
            assert_eq!(views, ["/app", "/app/settings", "/app"]);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "page views: {views:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // leaving the page sends the last engaged time with sendBeacon
    let other = env.page("/elsewhere", "en", "");
    std::thread::sleep(std::time::Duration::from_millis(200));
    b.goto(&other);
    env.wait_event(&id, "engagement on leaving", |e| {
        e["name"] == "engagement" && path_of(e) == "/app" && e != &engaged
    });
}

#[test]
fn custom_events_outbound_links_and_downloads() {
    let Some((env, b)) = setup(
        "custom_events_outbound_links_and_downloads",
        Options::default(),
    ) else {
        return;
    };
    let url = env.page(
        "/shop",
        "en",
        "<button id=\"buy\" data-assent-event=\"Purchase\" data-assent-prop-plan=\"pro\">Buy</button>\
         <a id=\"out\" href=\"https://example.org/partner\">partner</a> <a id=\"dl\" href=\"/files/report.pdf\">report</a>\
         <script>document.addEventListener('click',function(e){if(e.target.tagName=='A')e.preventDefault();});</script>",
    );
    b.goto(&url);
    b.js("assent.acceptAll();", &[]);
    let id = consent_id(&b);
    env.wait_event(&id, "pageview", |e| is_pageview(e, "/shop"));
    b.js(
        "assent.track('Signup',{plan:'team',seats:3,trial:true,nested:{no:1}});",
        &[],
    );
    b.click("#buy");
    b.click("#out");
    b.click("#dl");
    let signup = env.wait_event(&id, "Signup", |e| e["name"] == "Signup");
    let purchase = env.wait_event(&id, "Purchase", |e| e["name"] == "Purchase");
    env.wait_event(&id, "Outbound Link: Click", |e| {
        e["name"] == "Outbound Link: Click"
    });
    env.wait_event(&id, "File Download", |e| e["name"] == "File Download");
    let sent: Vec<Value> = event_requests(&b)
        .iter()
        .map(|r| serde_json::from_str(r["body"].as_str().unwrap()).unwrap())
        .collect();
    let props = |name: &str| {
        sent.iter()
            .find(|e| e["name"] == name)
            .map(|e| e["props"].clone())
            .unwrap()
    };
    assert_eq!(
        props("Signup"),
        json!({"plan": "team", "seats": 3, "trial": true})
    );
    assert_eq!(props("Purchase"), json!({"plan": "pro"}));
    assert_eq!(
        props("Outbound Link: Click"),
        json!({"url": "https://example.org/partner"})
    );
    assert_eq!(
        props("File Download"),
        json!({"url": format!("{}/files/report.pdf", env.web.origin("localhost"))})
    );
    assert_eq!(path_of(&signup), "/shop");
    assert_eq!(path_of(&purchase), "/shop");
}

#[test]
fn reopening_and_withdrawing_stops_the_tracker_and_cleans_up() {
    let Some((env, b)) = setup(
        "reopening_and_withdrawing_stops_the_tracker_and_cleans_up",
        Options::default(),
    ) else {
        return;
    };
    env.update_site(false, |_| {}, add_marketing_cookies);
    env.wait_script("_fbp");
    let url = env.page(
        "/w",
        "en",
        "<button id=\"prefs\" data-assent-open>Cookie settings</button>",
    );
    b.goto(&url);
    b.click(".assent-ban button");
    let id = consent_id(&b);
    env.wait_event(&id, "pageview", |e| is_pageview(e, "/w"));
    // marketing cookies set by some ad script
    b.js("document.cookie='_fbp=fb.1;path=/';document.cookie='_gcl_au=1.1;path=/';document.cookie='own=1;path=/';", &[]);
    // the floating button is there; re-open through a data-assent-open element
    assert_eq!(b.eval("!!document.querySelector('.assent-fab')"), true);
    b.click("#prefs");
    b.wait("document.querySelector('[role=dialog]')", &[]);
    let states = b.eval(
        "[].map.call(document.querySelectorAll('[role=dialog] input[role=switch]'),function(i){return [i.name,i.checked,i.disabled];})",
    );
    assert_eq!(
        states,
        json!([
            ["necessary", true, true],
            ["analytics", true, false],
            ["marketing", true, false],
            ["preferences", true, false]
        ])
    );
    // first only marketing: its cookies go, the site's own cookie stays, and
    // the running tracker neither stops nor counts the page twice
    b.click("#assent-c-marketing");
    b.click("[role=dialog] .assent-row button:nth-of-type(3)");
    b.wait("assent.consent().choices.marketing===false&&document.cookie.indexOf('%22marketing%22%3Afalse')>=0", &[]);
    assert_eq!(env.wait_consents(&id, 2)[1]["action"], "custom");
    let cookie = b.eval("document.cookie").as_str().unwrap().to_string();
    assert!(
        !cookie.contains("_fbp") && !cookie.contains("_gcl_au"),
        "{cookie}"
    );
    assert!(cookie.contains("own=1"), "{cookie}");
    b.js("assent.track('still-on');", &[]);
    env.wait_event(&id, "still-on", |e| e["name"] == "still-on");
    let pageviews = env
        .events(&id)
        .iter()
        .filter(|e| e["name"] == "pageview")
        .count();
    assert_eq!(pageviews, 1);
    // then the rest: a withdrawal
    b.click("#prefs");
    b.wait("document.querySelector('[role=dialog]')", &[]);
    for c in ["analytics", "preferences"] {
        b.click(&format!("#assent-c-{c}"));
    }
    b.click("[role=dialog] .assent-row button:nth-of-type(3)");
    b.wait("assent.consent().choices.analytics===false&&document.cookie.indexOf('%22analytics%22%3Afalse')>=0", &[]);
    let records = env.wait_consents(&id, 3);
    assert_eq!(records.last().unwrap()["action"], "withdraw", "{records:?}");
    // focus went back to the opener
    assert_eq!(b.eval("document.activeElement.id"), "prefs");
    // the tracker stopped at once and keeps nothing in the browser
    let before = event_requests(&b).len();
    b.js(
        "assent.track('after-withdrawal');history.pushState({},'','/w2');",
        &[],
    );
    b.js("document.dispatchEvent(new Event('visibilitychange'));window.dispatchEvent(new Event('pagehide'));", &[]);
    assert_eq!(event_requests(&b).len(), before);
    assert_eq!(b.eval("localStorage.length+sessionStorage.length"), 0);
    b.goto(&url);
    b.wait("window.assent&&assent.consent()", &[]);
    assert!(event_requests(&b).is_empty());
    assert!(
        env.events(&id)
            .iter()
            .all(|e| e["name"] != "after-withdrawal")
    );
    assert!(!banner_visible(&b));
}

#[test]
fn a_new_policy_revision_asks_again() {
    let Some((env, b)) = setup("a_new_policy_revision_asks_again", Options::default()) else {
        return;
    };
    let url = env.page("/", "en", "");
    b.goto(&url);
    b.click(".assent-ban button:nth-of-type(2)");
    let id = consent_id(&b);
    b.goto(&url);
    b.wait("window.assent&&assent.consent()", &[]);
    assert!(!banner_visible(&b));
    env.bump_revision();
    // the script is cached for a few minutes: a later visit, with a fresh copy
    b.cdp("Network.setCacheDisabled", json!({"cacheDisabled": true}));
    b.goto(&url);
    b.wait("document.querySelector('.assent-ban')", &[]);
    assert_eq!(b.eval("assent.consent()"), Value::Null);
    b.click(".assent-ban button");
    b.wait(
        "assent.consent()&&assent.consent().choices.analytics===true&&assent.consent().expires_at",
        &[],
    );
    // the same visitor id is kept, the new record carries the new revision
    assert_eq!(b.eval("assent.consent().id"), json!(id));
    let records = env.wait_consents(&id, 2);
    assert_eq!(records.last().unwrap()["action"], "accept_all");
    assert_eq!(
        records.last().unwrap()["revision"],
        records[0]["revision"].as_u64().unwrap() + 1
    );
}

#[test]
fn global_privacy_control_counts_as_refusal() {
    let opts = Options {
        gpc: true,
        ..Options::default()
    };
    let Some((env, b)) = setup("global_privacy_control_counts_as_refusal", opts) else {
        return;
    };
    let url = env.page("/", "en", "");
    b.goto(&url);
    let id = consent_id(&b);
    assert!(!banner_visible(&b));
    assert_eq!(
        b.eval("assent.consent().choices.analytics||assent.consent().choices.marketing"),
        false
    );
    let records = env.wait_consents(&id, 1);
    assert_eq!(records[0]["action"], "gpc");
    b.goto(&url);
    b.wait("window.assent&&assent.consent()", &[]);
    assert!(!banner_visible(&b));
    assert_eq!(env.consents(&id).len(), 1, "GPC is recorded once");
    assert!(event_requests(&b).is_empty());
    // the visitor can still opt in by themselves
    b.js("assent.open();", &[]);
    b.click("#assent-c-analytics");
    b.click("[role=dialog] .assent-row button:nth-of-type(3)");
    env.wait_event(&id, "pageview after opt-in", |e| is_pageview(e, "/"));
    assert_eq!(env.consents(&id).last().unwrap()["action"], "custom");
}

#[test]
fn sec_gpc_header_alone_counts_as_refusal() {
    // A browser that sends the header but has no navigator.globalPrivacyControl: the server tells the
    // script, which refuses on the visitor's behalf.
    let opts = Options {
        sec_gpc_header: true,
        ..Options::default()
    };
    let Some((env, b)) = setup("sec_gpc_header_alone_counts_as_refusal", opts) else {
        return;
    };
    b.goto(&env.page("/", "en", ""));
    let id = consent_id(&b);
    assert!(!banner_visible(&b));
    assert_eq!(b.eval("navigator.globalPrivacyControl===true"), false);
    let records = env.wait_consents(&id, 1);
    assert_eq!(records[0]["action"], "gpc");
    assert_eq!(records[0]["choices"]["analytics"], false);
    assert!(event_requests(&b).is_empty());
}

#[test]
fn gated_scripts_and_iframes_wait_for_their_category() {
    let Some((env, b)) = setup(
        "gated_scripts_and_iframes_wait_for_their_category",
        Options::default(),
    ) else {
        return;
    };
    env.web.put_response(
        "/slow.js",
        harness::Response {
            delay: std::time::Duration::from_millis(300),
            ..harness::Response::new(200, "text/javascript", "window.ran.push('src');")
        },
    );
    env.web.put("/frame.html", "text/html", "<p>embedded</p>");
    let url = env.page(
        "/g",
        "en",
        "<script>window.ran=[];</script>\
         <script type=\"text/plain\" data-assent-category=\"marketing\">window.ran.push('inline1');</script>\
         <script type=\"text/plain\" data-assent-category=\"marketing\" src=\"/slow.js\"></script>\
         <script type=\"text/plain\" data-assent-category=\"analytics\">window.ran.push('analytics');</script>\
         <script type=\"text/plain\" data-assent-category=\"marketing\">window.ran.push('inline2');</script>\
         <iframe id=\"video\" data-assent-category=\"marketing\" data-src=\"/frame.html\" width=\"400\" height=\"200\"></iframe>",
    );
    b.goto(&url);
    b.wait("document.querySelector('.assent-ph')", &[]);
    assert_eq!(b.eval("window.ran"), json!([]));
    assert_eq!(
        b.eval("document.getElementById('video').getAttribute('src')"),
        Value::Null
    );
    assert_eq!(
        b.eval("document.querySelector('.assent-ph button').textContent"),
        "Allow Marketing"
    );
    b.click(".assent-ph button");
    b.wait("window.ran.length==3", &[]);
    assert_eq!(b.eval("window.ran"), json!(["inline1", "src", "inline2"]));
    let id = consent_id(&b);
    assert_eq!(
        b.eval("assent.consent().choices"),
        json!({"necessary": true, "analytics": false, "marketing": true, "preferences": false})
    );
    assert_eq!(env.wait_consents(&id, 1)[0]["action"], "custom");
    b.wait("document.getElementById('video').contentDocument&&document.getElementById('video').contentDocument.body&&document.getElementById('video').contentDocument.body.textContent=='embedded'", &[]);
    assert_eq!(b.eval("document.querySelectorAll('.assent-ph').length"), 0);
    assert!(!banner_visible(&b));
    // on the next page the granted ones run at once, the others stay inert
    b.goto(&url);
    b.wait("window.ran.length==3", &[]);
    assert_eq!(b.eval("window.ran"), json!(["inline1", "src", "inline2"]));
    assert_eq!(
        b.eval("document.getElementById('video').getAttribute('src')"),
        "/frame.html"
    );
}

#[test]
fn keyboard_only_through_both_layers() {
    let Some((env, b)) = setup("keyboard_only_through_both_layers", Options::default()) else {
        return;
    };
    let url = env.page("/k", "en", "<p><a href=\"#top\">first page link</a></p>");
    b.goto(&url);
    b.wait("document.querySelector('.assent-ban')", &[]);
    // the banner comes first in the tab order: its privacy policy link, then the buttons
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "A|Privacy policy");
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "assent-btn|Accept all");
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "assent-btn|Reject all");
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "assent-btn|Customise");
    // visible focus indicator
    let outline = b.eval("getComputedStyle(document.activeElement).outlineStyle+' '+getComputedStyle(document.activeElement).outlineWidth");
    assert_eq!(outline, "solid 3px");
    b.keys(&[keys::ENTER]);
    b.wait(
        "document.querySelector('[role=dialog][aria-modal=true]')",
        &[],
    );
    let label = b.eval(
        "document.getElementById(document.querySelector('[role=dialog]').getAttribute('aria-labelledby')).textContent",
    );
    assert_eq!(label, "Your preferences");
    assert_eq!(
        b.eval("document.activeElement.getAttribute('role')"),
        "dialog"
    );
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "assent-x|×");
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "assent-c-analytics|");
    b.keys(&[keys::SPACE]);
    assert_eq!(b.eval("document.activeElement.checked"), true);
    // Escape closes without a choice: the banner is back, focus on the opener
    b.keys(&[keys::ESCAPE]);
    b.wait("!document.querySelector('[role=dialog]')", &[]);
    assert!(banner_visible(&b));
    assert_eq!(b.focused(), "assent-btn|Customise");
    assert_eq!(b.eval("document.cookie"), "");
    assert_eq!(b.eval("window.__net.length"), 0);
    // again, and the focus stays trapped inside the dialog
    b.keys(&[keys::ENTER]);
    b.wait("document.querySelector('[role=dialog]')", &[]);
    let order = [
        "assent-x|×",
        "assent-c-analytics|",
        "assent-c-marketing|",
        "assent-c-preferences|",
        "assent-btn|Accept all",
        "assent-btn|Reject all",
        "assent-btn|Save choices",
        "assent-x|×",
    ];
    for want in order {
        b.keys(&[keys::TAB]);
        assert_eq!(b.focused(), want);
    }
    b.shift_tab();
    assert_eq!(b.focused(), "assent-btn|Save choices");
    for _ in 0..5 {
        b.shift_tab();
    }
    assert_eq!(b.focused(), "assent-c-analytics|");
    b.keys(&[keys::SPACE, keys::TAB, keys::TAB, keys::SPACE]);
    assert_eq!(b.focused(), "assent-c-preferences|");
    b.keys(&[keys::TAB, keys::TAB, keys::TAB, keys::ENTER]);
    let id = consent_id(&b);
    assert_eq!(
        b.eval("assent.consent().choices"),
        json!({"necessary": true, "analytics": true, "marketing": false, "preferences": true})
    );
    assert_eq!(env.wait_consents(&id, 1)[0]["action"], "custom");
    b.wait(
        "!document.querySelector('[role=dialog]')&&!document.querySelector('.assent-ban')",
        &[],
    );
    // the floating button reopens the preferences by keyboard too
    b.js("document.querySelector('.assent-fab').focus();", &[]);
    b.keys(&[keys::ENTER]);
    b.wait("document.querySelector('[role=dialog]')", &[]);
    assert_eq!(
        b.eval("document.getElementById('assent-c-preferences').checked"),
        true
    );
    b.keys(&[keys::ESCAPE]);
    b.wait("!document.querySelector('[role=dialog]')", &[]);
    assert_eq!(b.eval("document.activeElement.className"), "assent-fab");
    assert!(!banner_visible(&b));
}

#[test]
fn a_french_page_gets_french_texts() {
    let Some((env, b)) = setup("a_french_page_gets_french_texts", Options::default()) else {
        return;
    };
    let url = env.page("/fr", "fr-FR", "");
    b.goto(&url);
    b.wait("document.querySelector('.assent-ban')", &[]);
    assert_eq!(
        b.eval("document.getElementById('assent-t').textContent"),
        "Votre vie privée"
    );
    assert_eq!(
        b.eval("[].map.call(document.querySelectorAll('.assent-ban button'),function(x){return x.textContent;})"),
        json!(["Tout accepter", "Tout refuser", "Personnaliser"])
    );
    assert_eq!(b.eval("document.querySelector('.assent').lang"), "fr");
    b.click(".assent-ban button:nth-of-type(3)");
    b.wait("document.querySelector('[role=dialog]')", &[]);
    assert_eq!(
        b.eval("document.querySelector('label[for=assent-c-analytics]').textContent"),
        "Mesure d’audience"
    );
    b.click(".assent-x");
    b.click(".assent-ban button:nth-of-type(2)");
    let id = consent_id(&b);
    assert_eq!(
        env.wait_consents(&id, 1)[0]["language"]
            .as_str()
            .unwrap_or("fr"),
        "fr"
    );
}

#[test]
fn a_site_defined_arabic_language_renders_right_to_left() {
    let Some((env, b)) = setup(
        "a_site_defined_arabic_language_renders_right_to_left",
        Options::default(),
    ) else {
        return;
    };
    let mut ar = payload::texts("en");
    ar["dir"] = json!("rtl");
    ar["title"] = json!("خصوصيتك");
    ar["accept_all"] = json!("قبول الكل");
    ar["reject_all"] = json!("رفض الكل");
    ar["customise"] = json!("تخصيص");
    let ar_json = ar.clone();
    env.update_site(
        false,
        move |c| c["texts"]["ar"] = ar_json,
        move |t| add_language(t, "ar", &ar),
    );
    env.wait_script("خصوصيتك");
    let url = env.page("/ar", "ar", "");
    b.goto(&url);
    b.wait("document.querySelector('.assent-ban')", &[]);
    assert_eq!(b.eval("document.querySelector('.assent').dir"), "rtl");
    assert_eq!(
        b.eval("document.getElementById('assent-t').textContent"),
        "خصوصيتك"
    );
    // right to left: the first button is on the right
    let order = b.eval(
        "(function(b){return b[0].getBoundingClientRect().left>b[2].getBoundingClientRect().left;})(document.querySelectorAll('.assent-ban button'))",
    );
    assert_eq!(order, true);
}

#[test]
fn google_consent_mode_signals() {
    let Some((env, b)) = setup("google_consent_mode_signals", Options::default()) else {
        return;
    };
    env.update_site(
        false,
        |c| c["options"]["google_consent_mode"] = json!(true),
        |t| set_option(t, "google_consent_mode", toml::Value::Boolean(true)),
    );
    env.wait_script("\"google_consent_mode\":true");
    let url = env.page("/gcm", "en", "");
    b.goto(&url);
    b.wait("window.dataLayer&&window.dataLayer.length", &[]);
    let first = b.eval("[].slice.call(dataLayer[0])");
    assert_eq!(
        first,
        json!(["consent", "default", {"analytics_storage": "denied", "ad_storage": "denied", "ad_user_data": "denied", "ad_personalization": "denied"}])
    );
    b.click(".assent-ban button");
    b.wait(
        "dataLayer.some(function(a){return a[1]=='update'&&a[2].analytics_storage=='granted'&&a[2].ad_storage=='granted';})",
        &[],
    );
}

/// Text contrast of the banner and the dialog in both themes (WCAG AA 4.5:1).
#[test]
fn text_contrast_in_both_themes() {
    for dark in [false, true] {
        let opts = Options {
            dark,
            ..Options::default()
        };
        let Some((env, b)) = setup("text_contrast_in_both_themes", opts) else {
            return;
        };
        let url = env.page("/c", "en", "");
        b.goto(&url);
        b.wait("document.querySelector('.assent-ban')", &[]);
        b.click(".assent-ban button:nth-of-type(3)");
        b.wait("document.querySelector('[role=dialog]')", &[]);
        b.js("document.querySelector('[role=dialog]').hidden=false;document.querySelector('.assent-ban').hidden=false;", &[]);
        let worst = b.eval(CONTRAST_JS);
        let ratio = worst[0].as_f64().unwrap();
        assert!(ratio >= 4.5, "dark={dark}: lowest text contrast {worst}");
    }
}

const CONTRAST_JS: &str = r#"(function(){
function rgb(s){var m=s.match(/[\d.]+/g).map(Number);return m.length>3&&m[3]===0?null:m;}
function lum(c){return [0,1,2].map(function(i){var v=c[i]/255;return v<=0.03928?v/12.92:Math.pow((v+0.055)/1.055,2.4);}).reduce(function(a,v,i){return a+v*[0.2126,0.7152,0.0722][i];},0);}
function bg(e){for(;e;e=e.parentElement){var c=rgb(getComputedStyle(e).backgroundColor);if(c)return c;}return [255,255,255];}
var worst=[99,''];
document.querySelectorAll('.assent h2,.assent p,.assent li,.assent label,.assent span,.assent button,.assent a').forEach(function(e){
if(!e.textContent.trim()||!e.getClientRects().length)return;
var f=lum(rgb(getComputedStyle(e).color)),b=lum(bg(e)),r=(Math.max(f,b)+0.05)/(Math.min(f,b)+0.05);
if(r<worst[0])worst=[r,e.tagName+' '+e.className+' '+e.textContent.slice(0,30)];});
return worst;})()"#;

/// Regenerates docs/*.png when ASSENT_SCREENSHOTS=1.
#[test]
fn screenshots_for_the_docs() {
    if std::env::var("ASSENT_SCREENSHOTS").map_or(true, |v| v != "1") {
        println!("screenshots_for_the_docs: set ASSENT_SCREENSHOTS=1 to regenerate docs/*.png");
        return;
    }
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    for (dark, theme) in [(false, "light"), (true, "dark")] {
        let opts = Options {
            dark,
            width: 1100,
            height: 880,
            ..Options::default()
        };
        let Some((env, b)) = setup("screenshots_for_the_docs", opts) else {
            return;
        };
        let url = env.page(
            "/demo",
            "en",
            "<p>Welcome to the demo shop. This page embeds the Assent banner with one script tag.</p>\
             <p><button data-assent-open>Cookie settings</button></p>",
        );
        b.goto(&url);
        b.wait("document.querySelector('.assent-ban')", &[]);
        b.screenshot(&docs.join(format!("banner-{theme}.png")));
        b.click(".assent-ban button:nth-of-type(3)");
        b.wait("document.querySelector('[role=dialog]')", &[]);
        b.js("document.activeElement.blur();", &[]);
        b.screenshot(&docs.join(format!("preferences-{theme}.png")));
    }
}

// ---- site settings through the CLI's TOML (see `assent site show demo`)

fn set_option(t: &mut toml::Table, key: &str, value: toml::Value) {
    let options = t
        .entry("options")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    options
        .as_table_mut()
        .expect("[options] table")
        .insert(key.to_string(), value);
}

fn add_language(t: &mut toml::Table, lang: &str, texts: &Value) {
    let value: toml::Value = serde_json::from_value(texts.clone()).expect("texts as TOML");
    if let Some(langs) = t.get_mut("languages").and_then(|l| l.as_array_mut()) {
        langs.push(toml::Value::String(lang.to_string()));
    }
    let all = t
        .entry("texts")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    all.as_table_mut()
        .expect("[texts] table")
        .insert(lang.to_string(), value);
}

/// Gives the `marketing` category an "Ads" service with cookies `_gcl_*` and `_fbp`.
fn add_marketing_cookies(t: &mut toml::Table) {
    let cats = t
        .get_mut("categories")
        .and_then(|c| c.as_array_mut())
        .expect("[[categories]]");
    let marketing = cats
        .iter_mut()
        .filter_map(|c| c.as_table_mut())
        .find(|c| c.get("id").and_then(|i| i.as_str()) == Some("marketing"))
        .expect("marketing category");
    let service: toml::Value =
        serde_json::from_value(json!([{"name": "Ads", "cookies": ["_gcl_*", "_fbp"]}])).unwrap();
    marketing.insert("services".into(), service);
}

#[test]
fn pages_outside_the_site_domains_are_not_tracked() {
    let Some((env, b)) = setup(
        "pages_outside_the_site_domains_are_not_tracked",
        Options::default(),
    ) else {
        return;
    };
    env.update_site(
        false,
        |c| c["domains"] = json!(["127.0.0.1", "shop.example"]),
        |t| {
            t.insert(
                "domains".into(),
                toml::Value::Array(vec!["127.0.0.1".into(), "shop.example".into()]),
            );
        },
    );
    env.wait_script("\"domains\":[\"127.0.0.1\",\"shop.example\"]");
    let url = env.page("/elsewhere", "en", "");
    b.goto(&url);
    b.wait("document.querySelector('.assent-ban')", &[]);
    let c = b.js_async("var done=arguments[0];assent.acceptAll().then(done);", &[]);
    assert_eq!(c["choices"]["analytics"], true, "{c}");
    b.js("assent.track('x');", &[]);
    assert!(event_requests(&b).is_empty(), "{:?}", event_requests(&b));
}
