//! Size budget of what a visitor downloads: the served script (banner,
//! tracker and one language's texts) plus the stylesheet, at most 6 KiB after
//! `gzip -9`; each further language at most 700 bytes more.

#[path = "browser/payload.rs"]
mod payload;

use payload::{LANGUAGES, demo_config, gzip9_len, min_css, served_script};
use serde_json::json;

const BUDGET: usize = 6 * 1024;
const PER_LANGUAGE: usize = 700;
const API: &str = "https://consent.example.org";

fn script_gz(langs: &[&str]) -> usize {
    gzip9_len(served_script(&demo_config(API, 1, langs, json!({}))).as_bytes())
}

#[test]
fn one_language_fits_the_budget() {
    let css = gzip9_len(min_css().as_bytes());
    for lang in LANGUAGES {
        let js = script_gz(&[lang]);
        println!(
            "{lang}: script {js} B + styles {css} B = {} B gzip -9",
            js + css
        );
        assert!(
            js + css <= BUDGET,
            "{lang}: {js} + {css} = {} bytes gzip -9, budget {BUDGET}",
            js + css
        );
    }
}

#[test]
fn each_further_language_fits_its_budget() {
    let base = script_gz(&["en"]);
    let mut langs = vec!["en"];
    for lang in LANGUAGES.iter().skip(1) {
        let before = script_gz(&langs);
        langs.push(lang);
        let after = script_gz(&langs);
        println!("+{lang}: {} B gzip -9", after - before);
        assert!(
            after - before <= PER_LANGUAGE,
            "adding {lang} costs {} bytes, budget {PER_LANGUAGE}",
            after - before
        );
    }
    let all = script_gz(&LANGUAGES);
    println!("all {} languages: {all} B (one: {base} B)", LANGUAGES.len());
}

#[test]
fn minified_script_keeps_the_config_token_once() {
    let js = payload::min_js();
    assert_eq!(js.matches("__ASSENT_CONFIG__").count(), 1);
    assert!(!js.contains("innerHTML") && !js.contains("eval(") && !js.contains("Function("));
}

#[test]
fn texts_have_the_same_keys_in_every_language() {
    fn keys(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        if let Some(o) = v.as_object() {
            for (k, v) in o {
                let p = format!("{prefix}{k}");
                keys(v, &format!("{p}."), out);
                out.push(p);
            }
        }
    }
    let mut reference = Vec::new();
    keys(&payload::texts("en"), "", &mut reference);
    reference.sort();
    for lang in LANGUAGES {
        let t = payload::texts(lang);
        let mut k = Vec::new();
        keys(&t, "", &mut k);
        k.sort();
        assert_eq!(k, reference, "{lang}.json keys differ from en.json");
        assert_eq!(t["dir"], "ltr", "{lang}");
        for (key, value) in t.as_object().unwrap() {
            if let Some(s) = value.as_str() {
                assert!(!s.trim().is_empty(), "{lang}.{key} is empty");
            }
        }
        for key in ["blocked", "allow"] {
            assert!(
                t[key].as_str().unwrap().contains("{category}"),
                "{lang}.{key}"
            );
        }
    }
}

/// The dialog's "Your data" part loads only when the dialog opens (for a visitor with a consent id):
/// at most 3 KiB more after `gzip -9`, in every language.
#[test]
fn rights_part_loads_lazily_within_its_budget() {
    const RIGHTS_BUDGET: usize = 3 * 1024;
    for lang in LANGUAGES {
        let part = assent::http::script::render_rights(API, "demo", lang);
        assert!(!part.contains("__ASSENT_RIGHTS__"));
        assert!(!part.contains("innerHTML") && !part.contains("eval("));
        let gz = gzip9_len(part.as_bytes());
        println!("{lang}: rights part {gz} B gzip -9");
        assert!(
            gz <= RIGHTS_BUDGET,
            "{lang}: {gz} bytes, budget {RIGHTS_BUDGET}"
        );
    }
    // The first load only names it.
    let first = served_script(&demo_config(API, 1, &["en"], json!({})));
    assert!(first.contains("?rights="));
    assert!(!first.contains("Download my data"));
}
