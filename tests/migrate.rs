//! `assent migrate-to`: a seeded SQLite data directory copied into PostgreSQL has every table's count and
//! the dashboard's figures (the Stats API's answers) unchanged, and a second copy into a database that holds
//! data is refused. Needs a PostgreSQL server (`ASSENT_TEST_POSTGRES`, as `.ci/run` provides); without one
//! it says it skipped.

mod common;

use assent::storage::engine::Location;
use assent::storage::postgres::ScratchDatabase;
use common::*;
use serde_json::Value;

const TABLES: &[&str] = &[
    "sites",
    "site_revisions",
    "consents",
    "visits",
    "events",
    "users",
    "api_keys",
    "rollups",
    "rollup_visitors",
    "rollup_zones",
];

fn count(location: &Location, table: &str) -> i64 {
    engine::open(location)
        .conn()
        .value(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .unwrap()
}

/// The Stats API's answers a dashboard's panels rest on, from a server on `dir` (and `env`).
fn figures(dir: &std::path::Path, env: &[(&str, &str)], key: &str) -> Vec<Value> {
    let server = Server::start(dir, &[], env);
    let queries = [
        "aggregate?site_id=demo&period=30d&metrics=visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration,events",
        "timeseries?site_id=demo&period=30d&metrics=visitors,pageviews",
        "breakdown?site_id=demo&period=30d&property=event:page&metrics=visitors,pageviews&limit=50",
        "breakdown?site_id=demo&period=30d&property=visit:source&metrics=visitors,visits,bounce_rate",
        "breakdown?site_id=demo&period=30d&property=visit:country&metrics=visitors",
        "breakdown?site_id=demo&period=30d&property=visit:browser&metrics=visitors",
        "breakdown?site_id=demo&period=30d&property=event:name&metrics=visitors,events",
    ];
    let answers = queries
        .iter()
        .map(|q| {
            let mut res = Server::agent()
                .get(format!("{}/api/v1/stats/{q}", server.url))
                .header("authorization", format!("Bearer {key}"))
                .call()
                .unwrap();
            assert_eq!(res.status().as_u16(), 200, "{q}");
            res.body_mut().read_json::<Value>().unwrap()
        })
        .collect();
    // A clean stop: the migration takes only a directory whose last server stopped cleanly.
    assert!(server.terminate().success());
    answers
}

#[test]
fn a_seeded_directory_moves_to_postgres_with_every_count_and_figure_equal() {
    let Some(server) = assent::storage::postgres::test_server() else {
        eprintln!("skipped: ASSENT_TEST_POSTGRES is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ok = |args: &[&str]| {
        let (ok, out, err) = cli(dir.path(), args);
        assert!(ok, "{args:?}: {out}{err}");
        out
    };
    ok(&["site", "add", "demo", "--domain", "localhost"]);
    ok(&["seed", "demo", "--events", "4000", "--days", "20"]);
    let out = std::process::Command::new(bin())
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args([
            "user",
            "add",
            "ana@example.com",
            "--admin",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"a long enough password\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    let key = ok(&["key", "create", "ana@example.com", "--name", "ci"]);
    let key = key
        .split_whitespace()
        .find(|w| w.starts_with("assent_"))
        .expect("a key")
        .to_string();
    let before = figures(dir.path(), &[], &key);

    let db = ScratchDatabase::create(&server).unwrap();
    let out = ok(&["migrate-to", &db.url]);
    assert!(out.contains("Every table holds as many rows"), "{out}");

    let sqlite = Location::Sqlite(dir.path().join("assent.db"));
    let pg = Location::Postgres(db.url.clone());
    for table in TABLES {
        let n = count(&sqlite, table);
        assert_eq!(n, count(&pg, table), "{table}");
        if ["events", "visits", "consents", "rollups"].contains(table) {
            assert!(n > 100, "{table}: the seed filled it ({n})");
        }
    }
    let other = tempfile::tempdir().unwrap();
    let after = figures(
        other.path(),
        &[("ASSENT_DATABASE_URL", db.url.as_str())],
        &key,
    );
    assert_eq!(
        before, after,
        "the dashboard's figures are the same on PostgreSQL"
    );

    // The target holds data now: a second copy is refused and changes nothing.
    let events = count(&pg, "events");
    let (ok, _, err) = cli(dir.path(), &["migrate-to", &db.url]);
    assert!(!ok && err.contains("empty"), "{err}");
    assert_eq!(count(&pg, "events"), events);
}
