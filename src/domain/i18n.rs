//! Banner texts: the languages shipped in `web/i18n/`, and how a site's overrides are laid over them.
//! Texts are JSON trees of strings (`categories.{id}.title` and so on); their keys are defined by the
//! shipped files, which the banner script reads.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::domain::site::Category;

pub const SHIPPED: [&str; 7] = ["en", "fr", "de", "es", "it", "nl", "pt"];
const RTL: [&str; 6] = ["ar", "he", "fa", "ur", "ps", "yi"];

const SOURCES: [&str; 7] = [
    include_str!("../../web/i18n/en.json"),
    include_str!("../../web/i18n/fr.json"),
    include_str!("../../web/i18n/de.json"),
    include_str!("../../web/i18n/es.json"),
    include_str!("../../web/i18n/it.json"),
    include_str!("../../web/i18n/nl.json"),
    include_str!("../../web/i18n/pt.json"),
];

fn shipped() -> &'static [Value; 7] {
    static PARSED: OnceLock<[Value; 7]> = OnceLock::new();
    // The files are part of the binary and checked by a unit test below, so parsing cannot fail at run time.
    PARSED.get_or_init(|| {
        SOURCES.map(|s| serde_json::from_str(s).expect("web/i18n files are valid JSON (tested)"))
    })
}

const RIGHTS_SOURCES: [&str; 7] = [
    include_str!("../../web/i18n/rights/en.json"),
    include_str!("../../web/i18n/rights/fr.json"),
    include_str!("../../web/i18n/rights/de.json"),
    include_str!("../../web/i18n/rights/es.json"),
    include_str!("../../web/i18n/rights/it.json"),
    include_str!("../../web/i18n/rights/nl.json"),
    include_str!("../../web/i18n/rights/pt.json"),
];

/// The texts of the dialog's "Your data" part (`web/i18n/rights/`), which loads with that part, in
/// `lang` (or its primary subtag), else English.
pub fn rights_texts(lang: &str) -> &'static Value {
    static PARSED: OnceLock<[Value; 7]> = OnceLock::new();
    let all = PARSED.get_or_init(|| {
        RIGHTS_SOURCES.map(|s| {
            serde_json::from_str(s).expect("web/i18n/rights files are valid JSON (tested)")
        })
    });
    let at = |l: &str| SHIPPED.iter().position(|s| *s == l);
    let i = at(lang).or_else(|| at(primary(lang))).unwrap_or(0);
    &all[i]
}

const NOTICE_SOURCES: [&str; 7] = [
    include_str!("../../web/i18n/notice/en.json"),
    include_str!("../../web/i18n/notice/fr.json"),
    include_str!("../../web/i18n/notice/de.json"),
    include_str!("../../web/i18n/notice/es.json"),
    include_str!("../../web/i18n/notice/it.json"),
    include_str!("../../web/i18n/notice/nl.json"),
    include_str!("../../web/i18n/notice/pt.json"),
];

/// The texts of the published privacy notice (`web/i18n/notice/`) in `lang` exactly, if shipped.
pub fn notice_texts(lang: &str) -> Option<&'static Value> {
    static PARSED: OnceLock<[Value; 7]> = OnceLock::new();
    let all = PARSED.get_or_init(|| {
        NOTICE_SOURCES.map(|s| {
            serde_json::from_str(s).expect("web/i18n/notice files are valid JSON (tested)")
        })
    });
    SHIPPED.iter().position(|s| *s == lang).map(|i| &all[i])
}

pub fn shipped_texts(lang: &str) -> Option<&'static Value> {
    SHIPPED
        .iter()
        .position(|l| *l == lang)
        .map(|i| &shipped()[i])
}

fn primary(lang: &str) -> &str {
    lang.split('-').next().unwrap_or(lang)
}

/// Lays `over` onto `base`, key by key.
fn overlay(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => overlay(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn title_case(id: &str) -> String {
    let mut s = id.replace(['_', '-'], " ");
    if let Some(first) = s.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    s
}

/// What visitors of a `lang` page see: the shipped texts of that language (or of its primary subtag, or
/// of the site's default language, or English), every category given a title, then the site's overrides.
pub fn merged(
    lang: &str,
    default_lang: &str,
    overrides: Option<&Value>,
    categories: &[Category],
) -> Value {
    let mut t = shipped_texts(lang)
        .or_else(|| shipped_texts(primary(lang)))
        .or_else(|| shipped_texts(default_lang))
        .or_else(|| shipped_texts("en"))
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    if let Value::Object(m) = &mut t {
        m.insert(
            "dir".into(),
            Value::from(if RTL.contains(&primary(lang)) {
                "rtl"
            } else {
                "ltr"
            }),
        );
        let cats = m
            .entry("categories")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(cats) = cats {
            // Only the site's categories, so the script carries no texts it cannot use.
            cats.retain(|k, _| categories.iter().any(|c| &c.id == k));
            for c in categories {
                cats.entry(c.id.clone()).or_insert_with(
                    || serde_json::json!({ "title": title_case(&c.id), "description": "" }),
                );
            }
        }
    }
    if let Some(o) = overrides {
        overlay(&mut t, o);
    }
    t
}

/// The part of `edited` that differs from `base`, or None when nothing does.
pub fn diff(base: &Value, edited: &Value) -> Option<Value> {
    match (base, edited) {
        (Value::Object(b), Value::Object(e)) => {
            let mut out = Map::new();
            for (k, v) in e {
                let d = match b.get(k) {
                    Some(bv) => diff(bv, v),
                    None => Some(v.clone()),
                };
                if let Some(d) = d {
                    out.insert(k.clone(), d);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        (b, e) if b == e => None,
        (_, e) => Some(e.clone()),
    }
}

/// Overrides are trees of strings, of a sane size.
pub fn check_overrides(v: &Value) -> Result<(), String> {
    fn walk(v: &Value, depth: usize, path: &str) -> Result<(), String> {
        match v {
            Value::String(s) if s.len() <= 4000 => Ok(()),
            Value::String(_) => Err(format!("{path}: text longer than 4000 bytes")),
            Value::Object(m) if depth < 4 => m
                .iter()
                .try_for_each(|(k, v)| walk(v, depth + 1, &format!("{path}.{k}"))),
            Value::Object(_) => Err(format!("{path}: nested too deeply")),
            _ => Err(format!("{path}: texts must be strings")),
        }
    }
    walk(v, 0, "texts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::site::SiteConfig;

    #[test]
    fn shipped_files_parse_and_share_keys() {
        let en = shipped_texts("en").unwrap();
        for l in SHIPPED {
            let t = shipped_texts(l).unwrap();
            assert!(t.is_object(), "{l}");
            for k in en.as_object().unwrap().keys() {
                assert!(t.get(k).is_some(), "{l} lacks {k}");
            }
        }
    }

    #[test]
    fn rights_texts_parse_and_share_keys() {
        let en = rights_texts("en").as_object().unwrap();
        assert!(en.len() >= 10);
        for l in SHIPPED {
            let t = rights_texts(l).as_object().unwrap();
            let mut a: Vec<_> = t.keys().collect();
            let mut b: Vec<_> = en.keys().collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{l}");
            assert!(
                t.values()
                    .all(|v| v.as_str().is_some_and(|s| !s.is_empty())),
                "{l}"
            );
            if l != "en" {
                assert_ne!(t["delete"], en["delete"], "{l} is translated");
            }
        }
        assert_eq!(rights_texts("fr-CA"), rights_texts("fr"));
        assert_eq!(rights_texts("xx"), rights_texts("en"));
    }

    #[test]
    fn notice_texts_parse_and_share_keys() {
        let en = notice_texts("en").unwrap().as_object().unwrap();
        for l in SHIPPED {
            let t = notice_texts(l).unwrap().as_object().unwrap();
            let mut a: Vec<_> = t.keys().collect();
            let mut b: Vec<_> = en.keys().collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{l}");
        }
        assert!(notice_texts("ar").is_none());
    }

    #[test]
    fn rtl_and_fallbacks() {
        let cats = SiteConfig::new_default("x", vec!["a.b".into()]).categories;
        let ar = merged(
            "ar",
            "en",
            Some(&serde_json::json!({"title": "مرحبا"})),
            &cats,
        );
        assert_eq!(ar["dir"], "rtl");
        assert_eq!(ar["title"], "مرحبا");
        let fr = merged("fr-ca", "en", None, &cats);
        assert_eq!(fr, merged("fr", "en", None, &cats));
        assert_eq!(fr["dir"], "ltr");
    }

    #[test]
    fn diff_keeps_only_changes() {
        let cats = SiteConfig::new_default("x", vec!["a.b".into()]).categories;
        let base = merged("en", "en", None, &cats);
        assert_eq!(diff(&base, &base), None);
        let mut edited = base.clone();
        edited["title"] = Value::from("Hello");
        assert_eq!(
            diff(&base, &edited),
            Some(serde_json::json!({"title": "Hello"}))
        );
    }
}
