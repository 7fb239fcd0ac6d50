//! The `assent` command line: settings errors, one server per data directory, sites, purge, users, keys,
//! seed and backup, and GeoIP databases that are broken.

mod common;

use std::process::Command;

use common::*;
use serde_json::json;

fn count(dir: &std::path::Path, table: &str) -> i64 {
    let c = rusqlite::Connection::open(dir.join("assent.db")).unwrap();
    c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn invalid_settings_exit_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["--data-dir", dir.path().to_str().unwrap(), "serve"])
        .env("ASSENT_RETENTION_MONTHS", "14")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("retention_months") && err.contains("13"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let cfg = dir.path().join("assent.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:0\"\nconsent_monthz = 3\n").unwrap();
    let out = Command::new(bin())
        .args(["--config", cfg.to_str().unwrap(), "site", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("consent_monthz"));

    let (ok, _, err) = cli(dir.path(), &["--listen", "nonsense", "site", "list"]);
    assert!(!ok && err.contains("listen"), "{err}");
    assert!(
        !dir.path().join("assent.db").exists(),
        "a refused start creates nothing"
    );
}

#[test]
fn one_server_per_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Server::start(dir.path(), &[], &[]);
    let out = Command::new(bin())
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "serve",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already running"), "{err}");
}

#[test]
fn sites_are_managed_and_picked_up_by_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out, err) = cli(
        d,
        &[
            "site",
            "add",
            "shop",
            "--domain",
            "Shop.example",
            "--domain",
            "www.shop.example",
            "--name",
            "Shop",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("<script src=\"http://127.0.0.1:8080/s/shop/assent.js\" defer></script>"),
        "{out}"
    );
    let (ok, _, err) = cli(d, &["site", "add", "shop", "--domain", "x.example"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = cli(d, &["site", "add", "Bad/Id", "--domain", "x.example"]);
    assert!(!ok && err.contains("invalid site id"), "{err}");
    let (ok, _, err) = cli(d, &["site", "add", "x", "--domain", "https://x.example/"]);
    assert!(!ok && err.contains("invalid domain"), "{err}");
    let (_, out, _) = cli(d, &["site", "list"]);
    assert!(
        out.contains("shop\tShop\trevision 1\tshop.example,www.shop.example"),
        "{out}"
    );

    let server = Server::start(d, &[], &[]);
    let (_, script) = server.get("/s/shop/assent.js");
    assert!(script.contains("\"revision\":1"));

    let (ok, toml_text, _) = cli(d, &["site", "show", "shop"]);
    assert!(ok);
    assert!(
        toml_text.contains("id = \"shop\"") && toml_text.contains("[[categories]]"),
        "{toml_text}"
    );
    assert!(
        toml_text.contains("[texts.fr]"),
        "texts per language are shown"
    );
    let file = d.join("shop.toml");

    // An option change does not ask visitors again.
    std::fs::write(
        &file,
        toml_text.replace("floating_button = true", "floating_button = false"),
    )
    .unwrap();
    let (ok, out, err) = cli(
        d,
        &["site", "update", "shop", "--file", file.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert!(out.contains("stays 1"), "{out}");

    // A text change does.
    let edited = toml_text.replacen(
        "title = \"Your privacy\"",
        "title = \"Cookies, honestly\"",
        1,
    );
    assert_ne!(edited, toml_text);
    std::fs::write(&file, &edited).unwrap();
    let (ok, out, _) = cli(
        d,
        &["site", "update", "shop", "--file", file.to_str().unwrap()],
    );
    assert!(ok && out.contains("1 -> 2"), "{out}");
    let (ok, out, _) = cli(
        d,
        &[
            "site",
            "update",
            "shop",
            "--file",
            file.to_str().unwrap(),
            "--bump-revision",
        ],
    );
    assert!(ok && out.contains("2 -> 3"), "{out}");
    let (_, shown, _) = cli(d, &["site", "show", "shop"]);
    assert!(shown.contains("revision = 3") && shown.contains("Cookies, honestly"));

    // The running server sees the new revision without a restart.
    let script = wait_for(15, || {
        let (_, s) = server.get("/s/shop/assent.js");
        s.contains("\"revision\":3").then_some(s)
    });
    assert!(script.contains("Cookies, honestly"));

    // A broken edit is refused with the line named, and changes nothing.
    let broken = edited.replace("\"shop.example\"", "\"shop example\"");
    std::fs::write(&file, &broken).unwrap();
    let line = broken
        .lines()
        .position(|l| l.contains("\"shop example\""))
        .unwrap()
        + 1;
    let (ok, _, err) = cli(
        d,
        &["site", "update", "shop", "--file", file.to_str().unwrap()],
    );
    assert!(!ok && err.contains(&format!("line {line}")), "{err}");
    std::fs::write(&file, "id = \"shop\"\nrevision = 3\nname = [\n").unwrap();
    let (ok, _, err) = cli(
        d,
        &["site", "update", "shop", "--file", file.to_str().unwrap()],
    );
    assert!(!ok && err.contains("line"), "{err}");

    let (ok, _, err) = cli(d, &["site", "show", "nope"]);
    assert!(!ok && err.contains("unknown site"), "{err}");
    let (ok, _, _) = cli(d, &["site", "remove", "shop"]);
    assert!(ok);
    let (_, out, _) = cli(d, &["site", "list"]);
    assert!(!out.contains("shop"));
    wait_for(15, || {
        (server.get("/s/shop/assent.js").0 == 404).then_some(())
    });
}

#[test]
fn purge_as_of_deletes_everything_old_and_dry_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, _, err) = cli(d, &["site", "add", "demo", "--domain", "localhost"]);
    assert!(ok, "{err}");
    let (ok, out, err) = cli(d, &["seed", "demo", "--events", "2000", "--days", "20"]);
    assert!(ok, "{err}");
    assert!(out.contains("2000 events"), "{out}");
    let (events, visits, consents) = (count(d, "events"), count(d, "visits"), count(d, "consents"));
    assert_eq!(events, 2000);
    assert!(visits > 100 && consents > visits / 3, "{visits} {consents}");

    let now = time::OffsetDateTime::now_utc();
    let fmt = &time::format_description::well_known::Rfc3339;
    let later = (now + time::Duration::days(14 * 31)).format(fmt).unwrap();
    let (ok, out, err) = cli(d, &["purge", "--as-of", &later, "--dry-run"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Would delete") && out.contains(&format!("events: {events}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("consent records: {consents}")),
        "{out}"
    );
    assert_eq!(count(d, "events"), events, "a dry run deletes nothing");

    // Today nothing is old enough.
    let (ok, out, _) = cli(d, &["purge"]);
    assert!(ok && out.contains("events: 0"), "{out}");

    let (ok, out, _) = cli(d, &["purge", "--as-of", &later]);
    assert!(
        ok && out.contains(&format!("events: {events}"))
            && out.contains(&format!("visits: {visits}")),
        "{out}"
    );
    assert_eq!(
        count(d, "events") + count(d, "visits") + count(d, "consents"),
        0
    );

    let (ok, _, err) = cli(d, &["purge", "--as-of", "yesterday"]);
    assert!(!ok && err.contains("RFC 3339"), "{err}");
}

#[test]
fn users_keys_seed_and_backup() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ok, out, err) = cli(d, &["user", "add", "ana@example.com", "--admin"]);
    assert!(ok, "{err}");
    let password = out.trim().rsplit(' ').next().unwrap();
    assert!(password.len() >= 16, "{out}");
    let (ok, _, err) = cli(d, &["user", "add", "ana@example.com"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, key, _) = cli(d, &["key", "create", "ana@example.com", "--name", "ci"]);
    assert!(ok && key.trim().starts_with("assent_"), "{key}");
    let (ok, _, err) = cli(d, &["key", "create", "nobody@example.com"]);
    assert!(!ok && err.contains("no user"), "{err}");
    let stored = String::from_utf8_lossy(&db_bytes(d)).into_owned();
    assert!(
        !stored.contains(key.trim()) && !stored.contains(password),
        "secrets are stored hashed"
    );

    let (ok, _, err) = cli(d, &["seed", "nope", "--events", "10"]);
    assert!(!ok && err.contains("unknown site"), "{err}");
    cli(d, &["site", "add", "demo", "--domain", "localhost"]);
    let (ok, _, _) = cli(d, &["seed", "demo", "--events", "300"]);
    assert!(ok);
    let _server = Server::start(d, &[], &[]);
    let copy = d.join("backup.db");
    let (ok, out, err) = cli(d, &["backup", copy.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("backup.db"));
    let c = rusqlite::Connection::open(&copy).unwrap();
    let n: i64 = c
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 300);
    let (ok, _, err) = cli(d, &["backup", copy.to_str().unwrap()]);
    assert!(!ok && err.contains("exists"), "{err}");
}

#[test]
fn first_run_creates_demo_site_and_admin_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]);
    let out = String::from_utf8_lossy(&server.stdout.lock().unwrap()).into_owned();
    assert!(
        out.contains("demo site") && out.contains("admin login"),
        "{out}"
    );
    let (status, page) = server.get("/demo");
    assert_eq!(status, 200);
    // minijinja escapes "/" in HTML; browsers read the entity back.
    assert!(
        page.replace("&#x2f;", "/")
            .contains(&format!("{}/s/demo/assent.js", server.url)),
        "{page}"
    );
    assert_eq!(server.terminate().code(), Some(0));
    let again = Server::start(dir.path(), &[], &[]);
    let out = String::from_utf8_lossy(&again.stdout.lock().unwrap()).into_owned();
    assert!(
        !out.contains("admin login"),
        "the login is printed once: {out}"
    );
}

/// A server with a GeoIP file, behind a trusted proxy on loopback, and a consenting visitor.
fn geo_server(dir: &std::path::Path, file: &str) -> (Server, String) {
    let geo = fixture(&format!("geoip/{file}"));
    let server = Server::start(
        dir,
        &[
            "--geoip",
            geo.to_str().unwrap(),
            "--trusted-proxy",
            "127.0.0.1",
        ],
        &[],
    );
    let (_, body) = server.post(
        "/api/consent",
        &json!({"site": "demo", "revision": 1, "action": "accept_all"}),
        &[],
    );
    let id = body["consent_id"].as_str().unwrap().to_string();
    (server, id)
}

fn pageview_from(server: &Server, id: &str, address: &str) -> (u16, serde_json::Value) {
    server.post(
        "/api/event",
        &json!({"site": "demo", "consent_id": id, "name": "pageview", "url": "http://localhost/"}),
        &[("user-agent", UA), ("x-forwarded-for", address)],
    )
}

#[test]
fn broken_geoip_databases_mean_unknown_country_not_a_crash() {
    for name in [
        "GeoIP2-City-Test-Broken-Double-Format.mmdb",
        "MaxMind-DB-test-broken-search-tree-24.mmdb",
        "missing.mmdb",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (server, id) = geo_server(dir.path(), name);
        for address in ["67.43.156.77", "2001:218::1", "1.2.3.4", "89.160.20.130"] {
            let (status, body) = pageview_from(&server, &id, address);
            assert_eq!(status, 202, "{name}: {body}");
        }
        let log = server.stderr_text();
        assert_eq!(
            log.matches("GeoIP disabled").count(),
            1,
            "{name}: one clear warning: {log}"
        );
    }
    // The city-shaped test database works as well as the country one.
    let dir = tempfile::tempdir().unwrap();
    let (server, id) = geo_server(dir.path(), "GeoLite2-City-Test.mmdb");
    assert_eq!(pageview_from(&server, &id, "2001:218::1").0, 202);
    let (_, export) = server.get(&format!("/api/visitor/{id}"));
    assert!(export.contains("\"country\":\"JP\""), "{export}");
}

/// `seed`, `purge` and `backup` tell their progress on standard error (plain lines when it is not a
/// terminal, as here), apart from their results on standard output.
#[test]
fn long_commands_report_progress_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cli(d, &["site", "add", "demo", "--domain", "localhost"]);
    let (ok, out, err) = cli(d, &["seed", "demo", "--events", "3000", "--days", "10"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Seeded site demo: 3000 events") && !out.contains("seed:"),
        "{out}"
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&"seed: 0/3000 events (0%), started"),
        "{err}"
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("seed: 3000/3000 events (100%), done in ")),
        "{err}"
    );

    let copy = d.join("copy.db");
    let (ok, out, err) = cli(d, &["backup", copy.to_str().unwrap()]);
    assert!(ok && out.contains("copy.db"), "{err}");
    let last = err.lines().last().unwrap_or("");
    let (copied, total) = last
        .strip_prefix("backup: ")
        .and_then(|l| l.split_once(" pages (100%), done in "))
        .and_then(|(pages, _)| pages.split_once('/'))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        copied == total && total.parse::<u64>().unwrap() > 10,
        "{err}"
    );

    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(14 * 31))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (ok, out, err) = cli(d, &["purge", "--as-of", &later]);
    assert!(ok && out.contains("events: 3000"), "{out}{err}");
    assert!(err.starts_with("purge: 0 records, started\n"), "{err}");
    assert!(
        err.contains(", zeroing the unused space of pages\n"),
        "{err}"
    );
    assert!(
        err.lines().last().is_some_and(|l| l.contains("done in")),
        "{err}"
    );
}
