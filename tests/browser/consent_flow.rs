//! Choices: nothing before one, accept, reject, withdraw, a new revision, Global Privacy Control.

use super::*;

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
fn reopening_and_withdrawing_stops_the_tracker_and_cleans_up() {
    let Some((env, b)) = setup(
        "reopening_and_withdrawing_stops_the_tracker_and_cleans_up",
        Options::default(),
    ) else {
        return;
    };
    env.update_site(false, add_marketing_cookies);
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
