//! The tracker: single-page-app navigation, custom events, outbound links, downloads, foreign hosts.

use super::*;

#[test]
fn spa_navigation_sends_a_second_pageview() {
    let Some((env, b)) = setup("spa_navigation_sends_a_second_pageview", Options::default()) else {
        return;
    };
    env.update_site(false, |t| set_option(t, "spa", toml::Value::Boolean(true)));
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
fn pages_outside_the_site_domains_are_not_tracked() {
    let Some((env, b)) = setup(
        "pages_outside_the_site_domains_are_not_tracked",
        Options::default(),
    ) else {
        return;
    };
    env.update_site(false, |t| {
        t.insert(
            "domains".into(),
            toml::Value::Array(vec!["127.0.0.1".into(), "shop.example".into()]),
        );
    });
    env.wait_script("\"domains\":[\"127.0.0.1\",\"shop.example\"]");
    let url = env.page("/elsewhere", "en", "");
    b.goto(&url);
    b.wait("document.querySelector('.assent-ban')", &[]);
    let c = b.js_async("var done=arguments[0];assent.acceptAll().then(done);", &[]);
    assert_eq!(c["choices"]["analytics"], true, "{c}");
    b.js("assent.track('x');", &[]);
    assert!(event_requests(&b).is_empty(), "{:?}", event_requests(&b));
}

#[test]
fn prerendered_pages_wait_until_shown() {
    let Some((env, b)) = setup("prerendered_pages_wait_until_shown", Options::default()) else {
        return;
    };
    // With analytics granted, a page view goes out as soon as a page is shown...
    b.goto(&env.page("/p", "en", ""));
    b.click(".assent-ban button");
    let id = consent_id(&b);
    env.wait_event(&id, "pageview /p", |e| is_pageview(e, "/p"));
    // ...but not while it is prerendered (Chromium's speculation rules set document.prerendering).
    b.cdp(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": "Object.defineProperty(document,'prerendering',{value:true,configurable:true});"}),
    );
    b.goto(&env.page("/pre", "en", ""));
    b.wait("document.readyState=='complete'&&window.assent", &[]);
    assert!(
        event_requests(&b).is_empty(),
        "nothing is sent while prerendering"
    );
    b.js(
        "Object.defineProperty(document,'prerendering',{value:false,configurable:true});document.dispatchEvent(new Event('prerenderingchange'));",
        &[],
    );
    env.wait_event(&id, "pageview /pre once shown", |e| is_pageview(e, "/pre"));
    assert_eq!(
        env.events(&id)
            .iter()
            .filter(|e| is_pageview(e, "/pre"))
            .count(),
        1
    );
}
