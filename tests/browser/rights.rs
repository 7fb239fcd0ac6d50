//! Visitors' rights from the preferences dialog ("Your data"): the consent id, "Download my data" and
//! "Delete my data", used by keyboard only. Also (issue 9): a new site tracks single-page-app navigation.

use super::*;

const PAGE: &str = "<p><a href=\"#\" id=\"prefs\" data-assent-open>Privacy settings</a></p>";

/// Accepts all, waits for the page view of `path` to be stored, and returns the consent id.
fn accept_and_view(env: &Env, b: &Browser, path: &str) -> String {
    b.goto(&env.page(path, "en", PAGE));
    b.click(".assent-ban button");
    let id = consent_id(b);
    env.wait_event(&id, path, |e| is_pageview(e, path));
    id
}

/// Opens the dialog from the page's link with the keyboard and waits for its "Your data" part.
fn open_dialog_by_keyboard(b: &Browser) {
    b.js("document.getElementById('prefs').focus();", &[]);
    b.keys(&[keys::ENTER]);
    b.wait(
        "document.querySelector('.assent-dlg .assent-data button')",
        &[],
    );
}

/// Tabs through the dialog until the button labelled `label` has the focus.
fn tab_to(b: &Browser, label: &str) {
    let want = format!("assent-btn|{label}");
    for _ in 0..30 {
        if b.focused() == want {
            return;
        }
        b.keys(&[keys::TAB]);
    }
    panic!("{label:?} never got the focus (now {})", b.focused());
}

/// Another visitor of the same site, with a page view of its own (sent as that site's page would).
fn other_visitor(env: &Env) -> String {
    let http = crate::webdriver::agent();
    let origin = env.web.origin("localhost");
    let mut r = http
        .post(format!("{}/api/consent", env.api))
        .header("origin", &origin)
        .header("content-type", "application/json")
        .send(
            json!({"site": "demo", "revision": env.revision(), "action": "accept_all"}).to_string(),
        )
        .expect("consent");
    let v: Value = r.body_mut().read_json().expect("consent json");
    let id = v["consent_id"].as_str().expect("consent id").to_string();
    let r = http
        .post(format!("{}/api/event", env.api))
        .header("origin", &origin)
        .header("content-type", "application/json")
        .header("user-agent", crate::webdriver::USER_AGENT)
        .send(
            json!({"site": "demo", "consent_id": id, "name": "pageview", "url": format!("{origin}/someone-else")})
                .to_string(),
        )
        .expect("event");
    assert_eq!(r.status().as_u16(), 202);
    id
}

#[test]
fn download_my_data_by_keyboard_saves_this_visitors_data_only() {
    let Some((env, b)) = setup(
        "download_my_data_by_keyboard_saves_this_visitors_data_only",
        Options::default(),
    ) else {
        return;
    };
    let downloads = tempfile::tempdir().unwrap();
    b.cdp(
        "Browser.setDownloadBehavior",
        json!({"behavior": "allow", "downloadPath": downloads.path().to_str().unwrap()}),
    );
    let other = other_visitor(&env);
    let id = accept_and_view(&env, &b, "/mine");
    open_dialog_by_keyboard(&b);
    // the part is labelled, shows the id, and its buttons are reachable in the dialog's tab cycle
    assert_eq!(
        b.eval(
            "(function(s){return document.getElementById(s.getAttribute('aria-labelledby')).textContent+'|'+s.querySelector('code').textContent;})(document.querySelector('.assent-data'))"
        ),
        format!("Your data|{id}").as_str()
    );
    tab_to(&b, "Download my data");
    b.keys(&[keys::ENTER]);
    let file = downloads.path().join("my-data-demo.json");
    let saved: Value = webdriver_wait(|| {
        std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
    });
    assert_eq!(saved["consent_id"], id.as_str());
    let consents = saved["consents"].as_array().expect("consent history");
    assert_eq!(consents.len(), 1, "{saved}");
    assert_eq!(consents[0]["action"], "accept_all");
    let events = saved["events"].as_array().expect("events");
    assert!(events.iter().any(|e| is_pageview(e, "/mine")), "{saved}");
    // the file is this visitor's only
    let text = saved.to_string();
    assert!(!text.contains(&other), "another visitor's id in {text}");
    assert!(
        !text.contains("someone-else"),
        "another visitor's page in {text}"
    );
    // the same as the API answers
    assert_eq!(saved, env.visitor(&id));
}

#[test]
fn delete_my_data_by_keyboard_erases_and_asks_again() {
    let Some((env, b)) = setup(
        "delete_my_data_by_keyboard_erases_and_asks_again",
        Options::default(),
    ) else {
        return;
    };
    let other = other_visitor(&env);
    let id = accept_and_view(&env, &b, "/gone");
    b.js(
        "window.__changes=[];document.addEventListener('assent:consent',function(e){window.__changes.push(e.detail);});",
        &[],
    );
    open_dialog_by_keyboard(&b);
    tab_to(&b, "Delete my data");
    b.keys(&[keys::ENTER]);
    // a confirmation first, which the focused button describes; Cancel goes back
    assert_eq!(b.focused(), "assent-btn|Yes, delete");
    assert!(
        b.eval("document.activeElement.getAttribute('aria-describedby')=='assent-dq'&&document.getElementById('assent-dq').textContent.indexOf('cannot be undone')>0")
            == true
    );
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "assent-btn|Cancel");
    b.keys(&[keys::ENTER]);
    assert_eq!(b.focused(), "assent-btn|Delete my data");
    assert_eq!(env.consents(&id).len(), 1, "cancel erased nothing");
    b.keys(&[keys::ENTER]);
    assert_eq!(b.focused(), "assent-btn|Yes, delete");
    b.keys(&[keys::ENTER]);
    // done: the message in the banner, shown again, with the focus on it
    b.wait(
        "document.querySelector('.assent-ban:not([hidden]) .assent-done')&&!document.querySelector('.assent-dlg')",
        &[],
    );
    assert_eq!(
        b.focused(),
        "assent-done|Your data has been deleted. Make a new choice below."
    );
    assert!(banner_visible(&b));
    // browser side: no choice, no cookie, and the page was told
    assert_eq!(b.eval("assent.consent()"), Value::Null);
    assert_eq!(b.eval("document.cookie.indexOf('assent_consent')"), -1);
    assert!(b.cookie_value("assent_consent").is_none());
    assert_eq!(b.eval("window.__changes"), json!([null]));
    // server side: gone
    let (status, _) = env.get_json(&format!("{}/api/visitor/{id}", env.api));
    assert_eq!(status, 404);
    let (status, _) = env.get_json(&format!("{}/api/consent/{id}", env.api));
    assert_eq!(status, 404);
    let r = crate::webdriver::agent()
        .post(format!("{}/api/event", env.api))
        .header("origin", &env.web.origin("localhost"))
        .header("content-type", "application/json")
        .send(
            json!({"site": "demo", "consent_id": id, "name": "pageview", "url": format!("{}/gone", env.web.origin("localhost"))})
                .to_string(),
        )
        .expect("event");
    assert_eq!(
        r.status().as_u16(),
        403,
        "an event with the erased id is refused"
    );
    // the other visitor is untouched
    assert_eq!(env.consents(&other).len(), 1);
    // a new choice gets a new id
    tab_to(&b, "Reject all");
    b.keys(&[keys::ENTER]);
    let fresh = consent_id(&b);
    assert_ne!(fresh, id);
}

/// Polls `f` for up to ten seconds.
fn webdriver_wait<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A new site counts single-page-app navigation without any setting: `history.pushState` and a hash
/// route (`#/...`) each make a page view.
#[test]
fn a_new_site_tracks_push_state_and_hash_routes() {
    let Some((env, b)) = setup(
        "a_new_site_tracks_push_state_and_hash_routes",
        Options::default(),
    ) else {
        return;
    };
    assert!(
        env.script().contains("\"spa\":true"),
        "spa is on by default"
    );
    let url = env.page("/spa", "en", "");
    b.goto(&url);
    b.click(".assent-ban button");
    let id = consent_id(&b);
    env.wait_event(&id, "pageview /spa", |e| is_pageview(e, "/spa"));
    b.js("history.pushState({},'', '/spa/next');", &[]);
    env.wait_event(&id, "pageview /spa/next", |e| is_pageview(e, "/spa/next"));
    b.js("location.hash='#/inbox';", &[]);
    env.wait_event(&id, "pageview of the hash route", |e| {
        e["name"] == "pageview" && e["path"] == "/spa/next#/inbox"
    });
}
