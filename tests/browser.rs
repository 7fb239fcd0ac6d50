//! End-to-end tests of the consent banner and tracker in headless Chromium,
//! against the real server binary.
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

#[path = "browser/consent_flow.rs"]
mod consent_flow;
#[path = "browser/presentation.rs"]
mod presentation;
#[path = "browser/rights.rs"]
mod rights;
#[path = "browser/tracking.rs"]
mod tracking;

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
