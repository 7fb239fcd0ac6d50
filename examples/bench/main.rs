//! Benchmarks of the collection core, with an external load generator: `wrk` (Debian package `wrk`),
//! a process of its own, drives the server over loopback; this program starts the server, writes wrk's
//! Lua scripts, runs the scenarios and prints Markdown tables for BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release --example bench
//! target/release/examples/bench ingest [--connections 32] [--seconds 10] [--rounds 3]
//! target/release/examples/bench rights --data-dir DIR   # DIR filled by `assent seed demo --events 3000000`
//! target/release/examples/bench mint [--ids 150000]
//! ```
//!
//! - `ingest`: `GET /healthz`, then consented page views (simple: five paths; realistic: 50 paths, UTM
//!   campaigns, search referrers, several browsers), each for `--seconds` with the same connections; the
//!   ratio of event to healthz rates from the same run.
//! - `rights`: erasure and export latency alone, then again while wrk loads events, with a retention run
//!   that deletes the oldest hour of data (`--purge-hours N`: N hours) in the middle; wrk's p99 and maximum
//!   for the events.
//! - `mint`: the server's memory after `--ids` new consent ids.
//! - `stats --data-dir DIR --site SITE [--database-url URL]`: a dashboard's set of Stats API queries (headline with comparison,
//!   time series, ten breakdowns; then the same with a filter) for the last 30 days and 12 months, each
//!   timed, beside the same questions asked in raw SQL of the same file (`--api-only`: not); the file's
//!   size per event; the server's memory before, and its peak while answering each set.
//!
//! The server runs in this process (so the bench can start a retention run and read its state) on the
//! release build, rate limit off; wrk runs beside it on the same two cores, with two threads.

mod load;
mod scenarios;
mod server;
mod stats;

use std::path::PathBuf;

use server::Server;

struct Args(Vec<String>);

impl Args {
    fn value(&self, name: &str) -> Option<&str> {
        let i = self.0.iter().position(|a| a == name)?;
        self.0.get(i + 1).map(String::as_str)
    }
    fn number(&self, name: &str, default: u64) -> u64 {
        self.value(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

fn main() {
    // The server runs in this process: the same allocator settings as `assent serve`.
    assent::allocator::tune();
    let args = Args(std::env::args().skip(1).collect());
    let scenario = args.0.first().cloned().unwrap_or_else(|| "ingest".into());
    let connections = args.number("--connections", 32);
    let seconds = args.number("--seconds", 10);
    let scripts = tempfile::tempdir().expect("temp dir");
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = args
        .value("--data-dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    let site = args.value("--site").unwrap_or("demo").to_string();
    let database_url = args.value("--database-url").map(String::from);
    let key = (scenario == "stats").then(|| {
        let db = match &database_url {
            Some(url) => assent::storage::Database::connect(
                &assent::storage::engine::Location::Postgres(url.clone()),
            ),
            None => assent::storage::Database::open(&dir.join("assent.db")),
        }
        .expect("db");
        let email = "bench@assent.local";
        let _ = db.add_user(email, "benchmark password", true, assent::now());
        db.create_key(email, "bench", assent::now()).expect("key")
    });
    let server = Server::start(&dir, database_url.as_deref());
    match scenario.as_str() {
        "ingest" => scenarios::ingest(
            &server,
            scripts.path(),
            connections,
            seconds,
            args.number("--rounds", 3),
        ),
        "rights" => scenarios::rights(
            &server,
            scripts.path(),
            connections,
            seconds,
            args.number("--purge-hours", 1) as i64,
        ),
        "mint" => scenarios::mint(&server, scripts.path(), args.number("--ids", 150_000)),
        "stats" => stats::stats_bench(
            &server,
            key.as_deref().unwrap_or_default(),
            &site,
            args.0.iter().any(|a| a == "--api-only"),
        ),
        other => panic!("unknown scenario {other:?}: ingest, rights, mint or stats"),
    }
    // The server thread is not joined: the process ends here, as after a crash, which the next start
    // repairs. `exit` runs no destructors, so the temporary directories (wrk's scripts with their consent
    // ids, the data of a run without `--data-dir`) are removed first.
    drop(scripts);
    drop(temp);
    std::process::exit(0);
}
