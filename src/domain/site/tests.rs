//! Tests of a site's configuration: ids, the TOML loader's checks and the line numbers of its messages.

use super::*;

#[test]
fn site_ids() {
    assert!(valid_site_id("demo"));
    assert!(valid_site_id("my-site.example_1"));
    assert!(!valid_site_id(""));
    assert!(!valid_site_id("Demo"));
    assert!(!valid_site_id(&"a".repeat(65)));
    assert!(!valid_site_id("a/b"));
}

#[test]
fn domains_and_hosts() {
    assert_eq!(normalize_domain("Example.COM").unwrap(), "example.com");
    assert!(normalize_domain("https://example.com").is_err());
    assert!(normalize_domain("example.com:80").is_err());
    assert!(host_matches("www.example.com", "example.com"));
    assert!(host_matches("example.com", "example.com"));
    assert!(!host_matches("badexample.com", "example.com"));
    assert!(!host_matches("example.com.evil", "example.com"));
    // Found by the property tests: a host whose suffix starts inside a character panicked.
    assert!(!host_matches("\u{200b}", "@"));
    assert!(!host_matches("é", "x"));
    assert!(host_matches("bücher.example.com", "EXAMPLE.com"));
}

#[test]
fn toml_round_trip_keeps_revision_fingerprint() {
    let cfg = SiteConfig::new_default("Demo", vec!["localhost".into()]);
    let text = cfg.to_toml("demo", 1);
    let back = SiteConfig::from_toml("demo", &text).unwrap();
    assert_eq!(back.policy_hash(), cfg.policy_hash());
    assert!(
        back.texts.is_empty(),
        "unchanged texts are not stored as overrides"
    );
    assert_eq!(back, cfg);
}

#[test]
fn text_change_changes_fingerprint_and_option_does_not() {
    let cfg = SiteConfig::new_default("Demo", vec!["localhost".into()]);
    let mut opt = cfg.clone();
    opt.options.floating_button = false;
    assert_eq!(opt.policy_hash(), cfg.policy_hash());
    let mut more = cfg.clone();
    more.categories[2].services.push(Service {
        name: "Ads".into(),
        description: String::new(),
        cookies: vec!["_fbp".into()],
    });
    assert_ne!(more.policy_hash(), cfg.policy_hash());
}

#[test]
fn validation_errors_name_the_line() {
    let cfg = SiteConfig::new_default("Demo", vec!["localhost".into()]);
    let text = cfg
        .to_toml("demo", 1)
        .replace("\"localhost\"", "\"local host\"");
    let err = SiteConfig::from_toml("demo", &text).unwrap_err();
    let line = text
        .lines()
        .position(|l| l.contains("\"local host\""))
        .unwrap()
        + 1;
    assert!(err.starts_with(&format!("line {line}:")), "{err}");
    let err = SiteConfig::from_toml("demo", "id = \"demo\"\nrevision = 1\nname = 3\n").unwrap_err();
    assert!(err.contains("line 3"), "{err}");
    let err = SiteConfig::from_toml("other", &cfg.to_toml("demo", 1)).unwrap_err();
    assert!(err.contains("line "), "{err}");
}

#[test]
fn origins_are_checked_by_scheme_host_and_port() {
    let mut cfg = SiteConfig::new_default("Shop", vec!["shop.example".into(), "localhost".into()]);
    assert!(cfg.allows_origin("https://shop.example"));
    assert!(cfg.allows_origin("https://www.shop.example"));
    for bad in [
        "http://shop.example",
        "https://shop.example:8443",
        "https://shop.example.",
        "foo://shop.example",
        "https://shop.example/path",
        "https://evilshop.example",
        "null",
        "",
    ] {
        assert!(!cfg.allows_origin(bad), "{bad}");
    }
    assert!(cfg.allows_origin("http://localhost:3000"));
    assert!(cfg.allows_origin("https://localhost"));
    cfg.options.allow_http = true;
    assert!(cfg.allows_origin("http://shop.example"));
    assert!(!cfg.allows_origin("http://shop.example:8080"));
}

/// Found by the fuzzer (site_toml): texts for a language the site does not offer were accepted and
/// stored, then lost on the next trip through `site show`.
#[test]
fn texts_only_for_offered_languages() {
    let cfg = SiteConfig::new_default("Demo", vec!["localhost".into()]);
    let text = format!(
        "{}\n[texts.d-e.categories.necessary]\ntitle = \"Notwendig\"\n",
        cfg.to_toml("demo", 1)
    );
    let err = SiteConfig::from_toml("demo", &text).unwrap_err();
    assert!(
        err.contains("texts.d-e") && err.contains("languages"),
        "{err}"
    );
    let mut other = cfg.clone();
    other.languages = vec!["en".into()];
    other
        .texts
        .insert("fr".into(), serde_json::json!({"title": "Vos choix"}));
    assert!(other.validate().unwrap_err().starts_with("texts.fr"));
}

#[test]
fn necessary_cannot_go() {
    let mut cfg = SiteConfig::new_default("Demo", vec!["localhost".into()]);
    cfg.categories.remove(0);
    assert!(cfg.validate().is_err());
}
