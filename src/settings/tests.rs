//! Tests of the settings loader: defaults < file < environment < flags, and the refusals.

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_apply() {
    let s = Settings::load(None, &env(&[]), &FlagSettings::default()).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.public_url, "http://127.0.0.1:8080");
    assert_eq!(s.retention_months, 13);
    assert_eq!(s.consent_months, 13);
    assert_eq!(s.data_dir, PathBuf::from("./data"));
    assert!(s.rate_limit > 0);
}

#[test]
fn precedence_is_defaults_file_env_flags() {
    let file = "listen = \"127.0.0.1:1000\"\nrate_limit = 5\nretention_months = 6\npublic_url = \"https://file.example/\"";
    let e = env(&[
        ("ASSENT_LISTEN", "127.0.0.1:2000"),
        ("ASSENT_RETENTION_MONTHS", "7"),
    ]);
    let s = Settings::load(Some(file), &e, &FlagSettings::default()).unwrap();
    assert_eq!(s.listen.port(), 2000);
    assert_eq!(s.rate_limit, 5);
    assert_eq!(s.retention_months, 7);
    assert_eq!(s.public_url, "https://file.example");
    let flags = FlagSettings {
        listen: Some("127.0.0.1:3000".into()),
        rate_limit: Some(0),
        ..Default::default()
    };
    let s = Settings::load(Some(file), &e, &flags).unwrap();
    assert_eq!(s.listen.port(), 3000);
    assert_eq!(s.rate_limit, 0);
}

#[test]
fn the_database_url_is_layered_checked_and_its_password_never_shown() {
    let s = Settings::load(None, &env(&[]), &FlagSettings::default()).unwrap();
    assert_eq!(s.database_url, None, "unset: the embedded SQLite file");
    let file = "database_url = \"postgres://a:filepass@file.example/assent\"";
    let e = env(&[(
        "ASSENT_DATABASE_URL",
        "postgresql://a:envpass@env.example:5433/assent",
    )]);
    let s = Settings::load(Some(file), &env(&[]), &FlagSettings::default()).unwrap();
    assert!(s.database_url.unwrap().as_str().contains("file.example"));
    let s = Settings::load(Some(file), &e, &FlagSettings::default()).unwrap();
    let url = s.database_url.clone().unwrap();
    assert!(url.as_str().contains("env.example:5433"));
    let shown = format!("{s:?}");
    assert!(
        !shown.contains("envpass") && shown.contains("env.example"),
        "{shown}"
    );
    let flags = FlagSettings {
        database_url: Some("postgres://flag.example/assent".into()),
        ..Default::default()
    };
    let s = Settings::load(Some(file), &e, &flags).unwrap();
    assert!(s.database_url.unwrap().as_str().contains("flag.example"));

    for bad in [
        "mysql://a:hidden@h/db",
        "sqlite:///tmp/x.db",
        "postgres://a:hidden@h:notaport/db",
    ] {
        let err = Settings::load(
            None,
            &env(&[("ASSENT_DATABASE_URL", bad)]),
            &FlagSettings::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ASSENT_DATABASE_URL") && err.contains("database URL"),
            "{err}"
        );
        assert!(!err.contains("hidden"), "the password is shown: {err}");
    }
}

#[test]
fn months_over_13_are_refused() {
    let err = Settings::load(
        Some("retention_months = 14"),
        &env(&[]),
        &FlagSettings::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("retention_months"), "{err}");
    let err = Settings::load(
        None,
        &env(&[("ASSENT_CONSENT_MONTHS", "24")]),
        &FlagSettings::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("consent_months"), "{err}");
    assert!(
        Settings::load(
            None,
            &env(&[("ASSENT_CONSENT_MONTHS", "0")]),
            &FlagSettings::default()
        )
        .is_err()
    );
}

#[test]
fn consent_months_follow_and_may_not_exceed_retention() {
    let s = Settings::load(
        Some("retention_months = 6"),
        &env(&[]),
        &FlagSettings::default(),
    )
    .unwrap();
    assert_eq!((s.retention_months, s.consent_months), (6, 6));
    let s = Settings::load(
        Some("retention_months = 6\nconsent_months = 3"),
        &env(&[]),
        &FlagSettings::default(),
    )
    .unwrap();
    assert_eq!(s.consent_months, 3);
    let err = Settings::load(
        Some("retention_months = 6"),
        &env(&[("ASSENT_CONSENT_MONTHS", "12")]),
        &FlagSettings::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("must not exceed retention_months (6)"),
        "{err}"
    );
}

#[test]
fn forwarded_header_setting() {
    let s = Settings::load(None, &env(&[]), &FlagSettings::default()).unwrap();
    assert_eq!(s.forwarded_header, ForwardedHeader::XForwardedFor);
    let s = Settings::load(
        Some("forwarded_header = \"Forwarded\""),
        &env(&[]),
        &FlagSettings::default(),
    )
    .unwrap();
    assert_eq!(s.forwarded_header, ForwardedHeader::Forwarded);
    let err = Settings::load(
        None,
        &env(&[("ASSENT_FORWARDED_HEADER", "X-Real-IP")]),
        &FlagSettings::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("X-Real-IP"), "{err}");
}

#[test]
fn metrics_access_and_token() {
    let s = Settings::load(None, &env(&[]), &FlagSettings::default()).unwrap();
    assert_eq!(
        (s.metrics, s.metrics_token.is_none()),
        (MetricsAccess::Local, true)
    );
    let file = "metrics = \"public\"\nmetrics_token = \"file-token-0123456789\"";
    let flags = FlagSettings {
        metrics: Some("off".into()),
        ..Default::default()
    };
    let s = Settings::load(Some(file), &env(&[]), &flags).unwrap();
    assert_eq!(s.metrics, MetricsAccess::Off);
    assert!(s.metrics_token.unwrap().matches("file-token-0123456789"));
    let err = Settings::load(
        None,
        &env(&[("ASSENT_METRICS_TOKEN", "secret")]),
        &FlagSettings::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("metrics token"), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(
        Settings::load(
            None,
            &env(&[("ASSENT_METRICS", "yes")]),
            &FlagSettings::default()
        )
        .is_err()
    );
}

#[test]
fn unknown_file_key_is_named() {
    let err =
        Settings::load(Some("listne = \"x\""), &env(&[]), &FlagSettings::default()).unwrap_err();
    assert!(err.to_string().contains("listne"), "{err}");
}

#[test]
fn trusted_proxies_from_env_and_flags() {
    let s = Settings::load(
        None,
        &env(&[("ASSENT_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")]),
        &FlagSettings::default(),
    )
    .unwrap();
    assert_eq!(s.trusted_proxies.len(), 2);
    assert!(s.trusted_proxies[1].contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()));
    let flags = FlagSettings {
        trusted_proxies: vec!["::1/128".into()],
        ..Default::default()
    };
    let s = Settings::load(
        None,
        &env(&[("ASSENT_TRUSTED_PROXIES", "10.0.0.0/8")]),
        &flags,
    )
    .unwrap();
    assert_eq!(s.trusted_proxies.len(), 1);
    assert!(
        Settings::load(
            None,
            &env(&[("ASSENT_TRUSTED_PROXIES", "nope")]),
            &FlagSettings::default()
        )
        .is_err()
    );
}
