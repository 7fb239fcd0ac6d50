//! The served script, built the way the server builds it: the minified script
//! from build.rs with `__ASSENT_CONFIG__` replaced by a site's settings.
//! Shared by `tests/browser.rs` (Arabic texts) and `tests/script_size.rs`.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

pub const LANGUAGES: [&str; 7] = ["en", "fr", "de", "es", "it", "nl", "pt"];

pub fn min_js() -> String {
    std::fs::read_to_string(env!("ASSENT_MIN_JS")).expect("read assent.min.js")
}

pub fn min_css() -> String {
    std::fs::read_to_string(env!("ASSENT_MIN_CSS")).expect("read assent.min.css")
}

/// The shipped default texts of one language (`web/i18n/LANG.json`).
pub fn texts(lang: &str) -> Value {
    let path = format!("{}/web/i18n/{lang}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The settings of the demo site as the server passes them to the script.
pub fn demo_config(api: &str, revision: u64, langs: &[&str], options: Value) -> Value {
    let texts: serde_json::Map<String, Value> =
        langs.iter().map(|l| (l.to_string(), texts(l))).collect();
    let mut opts = json!({
        "floating_button": true, "spa": false, "google_consent_mode": false,
        "outbound_links": true, "file_downloads": true,
        "privacy_url": format!("{api}/s/demo/privacy"),
    });
    if let (Some(o), Some(extra)) = (opts.as_object_mut(), options.as_object()) {
        for (k, v) in extra {
            o.insert(k.clone(), v.clone());
        }
    }
    json!({
        "site": "demo", "api": api, "revision": revision, "consent_months": 13,
        "domains": ["localhost", "127.0.0.1"],
        "categories": [
            {"id": "necessary", "required": true, "services": [{"name": "Assent", "cookies": ["assent_consent"]}]},
            {"id": "analytics", "required": false, "services": [{"name": "Assent analytics", "cookies": []}]},
            {"id": "marketing", "required": false, "services": [{"name": "Ads", "cookies": ["_gcl_*", "_fbp"]}]},
            {"id": "preferences", "required": false, "services": []}
        ],
        "texts": texts,
        "default_language": "en",
        "options": opts,
    })
}

/// The script as served for `config`.
pub fn served_script(config: &Value) -> String {
    let js = min_js();
    assert_eq!(js.matches("__ASSENT_CONFIG__").count(), 1);
    js.replacen("__ASSENT_CONFIG__", &config.to_string(), 1)
}

/// Size of `data` after `gzip -9` (the system gzip, present on every Debian machine).
pub fn gzip9_len(data: &[u8]) -> usize {
    let mut child = Command::new("gzip")
        .args(["-9", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gzip -9 -c");
    let mut stdin = child.stdin.take().expect("gzip stdin");
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("gzip output");
    writer.join().expect("gzip writer").expect("write to gzip");
    assert!(out.status.success(), "gzip failed");
    out.stdout.len()
}
