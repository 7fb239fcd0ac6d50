//! The site settings form of the dashboard without HTTP: a site's settings as the form's values, the
//! values posted read back into settings by the very loader of `assent site update` (the fields are
//! written into the site's `assent site show` document, which [`SiteConfig::from_toml`] reads), and each
//! loader message placed beside the field it is about.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::domain::site::{Category, SiteConfig};

/// The options of [`crate::domain::site::SiteOptions`] shown as checkboxes, with their labels.
pub const OPTIONS: [(&str, &str); 6] = [
    (
        "floating_button",
        "Floating button that reopens the preferences",
    ),
    (
        "spa",
        "Count page views of single-page apps (history and hash changes)",
    ),
    ("google_consent_mode", "Google Consent Mode signals"),
    ("outbound_links", "Count clicks on outbound links"),
    ("file_downloads", "Count file downloads"),
    (
        "allow_http",
        "Allow pages served over plain http (not https)",
    ),
];

/// The categories part of the settings document, edited as TOML.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoriesDoc {
    categories: Vec<Category>,
}

/// The texts part of the settings document (every offered language, merged), edited as TOML.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextsDoc {
    #[serde(default)]
    texts: BTreeMap<String, Value>,
}

/// The form's values of a site's settings as they are.
pub fn values_of(cfg: &SiteConfig) -> BTreeMap<String, Value> {
    let mut v = BTreeMap::new();
    v.insert("name".into(), json!(cfg.name));
    v.insert("domains".into(), json!(cfg.domains.join("\n")));
    v.insert("timezone".into(), json!(cfg.timezone));
    v.insert("default_language".into(), json!(cfg.default_language));
    v.insert("languages".into(), json!(cfg.languages.join(" ")));
    v.insert("privacy_url".into(), json!(cfg.options.privacy_url));
    let options = serde_json::to_value(&cfg.options).unwrap_or(Value::Null);
    for (id, _) in OPTIONS {
        v.insert(id.into(), json!(options[id].as_bool().unwrap_or(false)));
    }
    let categories = toml::to_string(&CategoriesDoc {
        categories: cfg.categories.clone(),
    })
    .unwrap_or_default();
    v.insert("categories".into(), json!(categories));
    let texts = toml::to_string(&TextsDoc {
        texts: cfg.merged_texts(),
    })
    .unwrap_or_default();
    v.insert("texts".into(), json!(texts));
    v
}

/// The fields of the form that take text (the options are checkboxes); each is also where the loader's
/// messages about it are shown, and "general" holds the rest.
pub const TEXT_FIELDS: [&str; 8] = [
    "name",
    "domains",
    "timezone",
    "default_language",
    "languages",
    "privacy_url",
    "categories",
    "texts",
];

/// The form's values as posted (checkboxes: present or not).
pub fn values_posted(f: &HashMap<String, String>) -> BTreeMap<String, Value> {
    let mut v = BTreeMap::new();
    for k in TEXT_FIELDS {
        v.insert(
            k.to_string(),
            json!(f.get(k).cloned().unwrap_or_default().replace("\r\n", "\n")),
        );
    }
    for (id, _) in OPTIONS {
        v.insert(id.to_string(), json!(f.contains_key(id)));
    }
    v
}

/// Which field a message of the settings loader is about (the form shows it there).
fn field_of(message: &str) -> &'static str {
    let m = message.trim_start();
    if m.starts_with("texts") || m.contains(" in texts") {
        "texts"
    } else if m.starts_with("name") {
        "name"
    } else if m.starts_with("domains") || m.starts_with("invalid domain") {
        "domains"
    } else if m.starts_with("timezone") {
        "timezone"
    } else if m.starts_with("invalid category")
        || m.starts_with("category")
        || m.starts_with("the category")
        || m.starts_with("invalid cookie")
        || m.starts_with("categories")
    {
        "categories"
    } else if m.starts_with("default_language") {
        "default_language"
    } else if m.starts_with("languages") || m.starts_with("invalid language") {
        "languages"
    } else if m.starts_with("invalid privacy_url") {
        "privacy_url"
    } else {
        "general"
    }
}

/// A loader message without the "line N: " of the composed document (its lines are not the form's).
fn without_line(message: &str) -> &str {
    match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") || head == "settings" => rest,
        _ => message,
    }
}

fn words(s: &str) -> Vec<toml::Value> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(|w| toml::Value::String(w.to_string()))
        .collect()
}

/// The posted form as new settings, read by the loader of `assent site update`; otherwise the
/// messages per field.
pub fn load(
    id: &str,
    current: &SiteConfig,
    revision: u32,
    v: &BTreeMap<String, Value>,
) -> Result<SiteConfig, BTreeMap<String, String>> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut errors = BTreeMap::new();
    // The site's document as `assent site show` prints it: whatever the form does not edit stays.
    let mut doc: toml::Table = match toml::from_str(&current.to_toml(id, revision)) {
        Ok(d) => d,
        Err(e) => {
            errors.insert("general".into(), e.to_string());
            return Err(errors);
        }
    };
    doc.insert("name".into(), toml::Value::String(text("name")));
    doc.insert(
        "domains".into(),
        toml::Value::Array(words(&text("domains"))),
    );
    doc.insert(
        "timezone".into(),
        toml::Value::String(text("timezone").trim().to_string()),
    );
    doc.insert(
        "default_language".into(),
        toml::Value::String(text("default_language").trim().to_string()),
    );
    doc.insert(
        "languages".into(),
        toml::Value::Array(words(&text("languages"))),
    );
    let mut options = doc
        .get("options")
        .and_then(|o| o.as_table())
        .cloned()
        .unwrap_or_default();
    for (k, _) in OPTIONS {
        let on = v.get(k).and_then(Value::as_bool).unwrap_or(false);
        options.insert(k.into(), toml::Value::Boolean(on));
    }
    let privacy = text("privacy_url").trim().to_string();
    if privacy.is_empty() {
        options.remove("privacy_url");
    } else {
        options.insert("privacy_url".into(), toml::Value::String(privacy));
    }
    doc.insert("options".into(), toml::Value::Table(options));
    // The structured parts are read on their own first, so that their messages name their own lines.
    match toml::from_str::<CategoriesDoc>(&text("categories")) {
        Ok(c) => match toml::Value::try_from(&c.categories) {
            Ok(t) => {
                doc.insert("categories".into(), t);
            }
            Err(e) => {
                errors.insert("categories".into(), e.to_string());
            }
        },
        Err(e) => {
            errors.insert("categories".into(), e.to_string().trim().to_string());
        }
    }
    match toml::from_str::<TextsDoc>(&text("texts")) {
        Ok(t) => match toml::Value::try_from(&t.texts) {
            Ok(t) => {
                doc.insert("texts".into(), t);
            }
            Err(e) => {
                errors.insert("texts".into(), e.to_string());
            }
        },
        Err(e) => {
            errors.insert("texts".into(), e.to_string().trim().to_string());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let composed = toml::to_string(&doc)
        .map_err(|e| BTreeMap::from([("general".to_string(), e.to_string())]))?;
    SiteConfig::from_toml(id, &composed).map_err(|e| {
        let message = without_line(&e).trim().to_string();
        BTreeMap::from([(field_of(&message).to_string(), message)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> SiteConfig {
        SiteConfig::new_default("Demo", vec!["localhost".into(), "example.com".into()])
    }

    #[test]
    fn the_form_of_a_site_reads_back_as_the_same_site() {
        let cfg = demo();
        let back = load("demo", &cfg, 3, &values_of(&cfg)).expect("the form as shown loads");
        assert_eq!(back, cfg);
    }

    #[test]
    fn posted_fields_change_the_settings_they_name() {
        let cfg = demo();
        let mut posted: HashMap<String, String> = values_of(&cfg)
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                Value::Bool(true) => Some((k, "on".into())),
                _ => None,
            })
            .collect();
        posted.insert("name".into(), "Shop".into());
        posted.insert("domains".into(), "shop.example\r\nwww.shop.example".into());
        posted.insert("timezone".into(), "Europe/Paris".into());
        posted.insert("spa".into(), "on".into());
        posted.remove("floating_button");
        let back = load("demo", &cfg, 3, &values_posted(&posted)).expect("valid settings");
        assert_eq!(back.name, "Shop");
        assert_eq!(back.domains, ["shop.example", "www.shop.example"]);
        assert_eq!(back.timezone, "Europe/Paris");
        assert!(back.options.spa);
        assert!(!back.options.floating_button);
        assert_eq!(back.categories, cfg.categories, "fields not posted stay");
    }

    #[test]
    fn a_message_is_placed_beside_its_field_without_the_documents_line() {
        let cfg = demo();
        let mut values = values_of(&cfg);
        values.insert("timezone".into(), json!("Mars/Olympus"));
        let errors = load("demo", &cfg, 3, &values).unwrap_err();
        let message = errors.get("timezone").expect("the time zone's message");
        assert!(!message.starts_with("line "), "{message}");

        let mut values = values_of(&cfg);
        values.insert("categories".into(), json!("[[categories]\nid = "));
        let errors = load("demo", &cfg, 3, &values).unwrap_err();
        assert!(errors.contains_key("categories"), "{errors:?}");
        assert_eq!(errors.len(), 1);
    }
}
