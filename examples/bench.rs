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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use assent::settings::{FlagSettings, Settings};
use assent::state::AppState;

const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

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

/// The server, in this process.
struct Server {
    addr: String,
    state: Arc<AppState>,
    dir: PathBuf,
}

impl Server {
    fn start(dir: &Path, database_url: Option<&str>) -> Server {
        let mut env: std::collections::HashMap<String, String> = [
            ("ASSENT_DATA_DIR".to_string(), dir.display().to_string()),
            ("ASSENT_LISTEN".to_string(), "127.0.0.1:0".to_string()),
            ("ASSENT_RATE_LIMIT".to_string(), "0".to_string()),
        ]
        .into();
        if let Some(url) = database_url {
            env.insert("ASSENT_DATABASE_URL".into(), url.into());
        }
        let settings = Settings::load(None, &env, &FlagSettings::default()).expect("settings");
        let prepared = assent::commands::serve::prepare(settings).expect("server");
        let addr = prepared.listener.local_addr().expect("addr").to_string();
        let state = prepared.state.clone();
        std::thread::spawn(move || {
            let _lock = prepared.lock;
            actix_web::rt::System::new()
                .block_on(assent::commands::serve::serve(
                    prepared.state,
                    prepared.writer,
                    prepared.listener,
                ))
                .expect("serve");
        });
        let server = Server {
            addr,
            state,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while request(&server.addr, "GET", "/healthz", "").0 != 200 {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Resets the process's peak resident size (Linux: `clear_refs` 5), so that [`Server::rss_mb`]
    /// reports the peak since.
    fn reset_peak(&self) {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    fn rss_mb(&self) -> (f64, f64) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kb = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (kb("VmRSS:"), kb("VmHWM:"))
    }
}

/// One HTTP/1.1 request on a new connection; (status, body).
fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    request_with(addr, method, path, body, "")
}

fn request_with(addr: &str, method: &str, path: &str, body: &str, extra: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain\r\nUser-Agent: {UA}\r\n{extra}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let _ = r.read_line(&mut line);
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut rest = String::new();
    let _ = r.read_to_string(&mut rest);
    let body = rest
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn new_consent(addr: &str) -> String {
    let (status, body) = request(
        addr,
        "POST",
        "/api/consent",
        r#"{"site":"demo","revision":1,"action":"accept_all"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("consent answer");
    v["consent_id"].as_str().expect("consent id").to_string()
}

/// What wrk measured.
#[derive(Default)]
struct Wrk {
    /// CPU time over the run, in cores (1.0: one core busy all the time): the whole server process, and wrk.
    server_cores: f64,
    wrk_cores: f64,
    /// The whole machine's busy time over the run, in cores: the server, wrk, the kernel's loopback and
    /// disk work wherever it ran, and anything else running.
    machine_cores: f64,
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    requests: u64,
    non_2xx: u64,
}

/// A duration as wrk prints it, in milliseconds.
fn millis(s: &str) -> f64 {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().unwrap_or(0.0);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => n,
    }
}

fn wrk(addr: &str, path: &str, script: Option<&Path>, connections: u64, seconds: u64) -> Wrk {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    cmd.arg(format!("http://{addr}{path}"));
    let (server_before, wrk_before, machine_before, started) = (
        cpu_seconds_self(),
        cpu_seconds_children(),
        machine_busy_seconds(),
        Instant::now(),
    );
    let out = cmd
        .output()
        .expect("wrk runs (Debian package `wrk`: apt-get install wrk)");
    let wall = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    if std::env::var_os("BENCH_RAW").is_some() {
        eprintln!("{text}");
    }
    let mut w = Wrk {
        server_cores: (cpu_seconds_self() - server_before) / wall,
        wrk_cores: (cpu_seconds_children() - wrk_before) / wall,
        machine_cores: (machine_busy_seconds() - machine_before) / wall,
        ..Wrk::default()
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["Requests/sec:", r] => w.rate = r.parse().unwrap_or(0.0),
            ["50%", v] => w.p50 = millis(v),
            ["99%", v] => w.p99 = millis(v),
            ["Latency", _avg, _dev, max, ..] => w.max = millis(max),
            [n, "requests", "in", ..] => w.requests = n.parse().unwrap_or(0),
            ["Non-2xx", "or", "3xx", "responses:", n] => w.non_2xx = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    assert!(w.rate > 0.0, "wrk printed no rate:\n{text}");
    w
}

/// CPU time (user and system) this process has used: the server, which runs in it, and the bench's own
/// threads, which wait on wrk meanwhile.
fn cpu_seconds_self() -> f64 {
    cpu_seconds(libc::RUSAGE_SELF)
}

/// CPU time of the child processes that ended: the wrk runs.
fn cpu_seconds_children() -> f64 {
    cpu_seconds(libc::RUSAGE_CHILDREN)
}

fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The machine's busy CPU time since boot, all cores (`/proc/stat`: everything but idle and I/O wait);
/// 0 where there is no `/proc/stat`.
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let (idle, iowait) = (
        ticks.get(3).copied().unwrap_or(0.0),
        ticks.get(4).copied().unwrap_or(0.0),
    );
    // USER_HZ, the unit of /proc/stat, is 100 on every Linux architecture that matters here.
    (ticks.iter().sum::<f64>() - idle - iowait) / 100.0
}

impl Wrk {
    /// Microseconds of the whole machine's CPU per request answered.
    fn machine_micros_per_request(&self) -> f64 {
        self.machine_cores * 1e6 / self.rate
    }
}

/// A wrk script posting events of the given visitors, chosen at random, to `/api/event`.
///
/// Each wrk thread formats a pool of requests once, in `init`, and then cycles through it: formatting a
/// request in Lua for every send (random picks, string joins, `wrk.format`) cost wrk about twice the CPU per
/// request that `/healthz` costs it, on the cores the server needs, which lowered the events' rate and not
/// the baseline's. The pool is large enough that every visitor and every path recurs in random order.
fn event_script(dir: &Path, name: &str, ids: &[String], realistic: bool) -> PathBuf {
    let list = |items: &[String]| {
        items
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let (paths, referrers, agents): (Vec<String>, Vec<String>, Vec<String>) = if realistic {
        (
            (0..50).map(|i| format!("/docs/page-{i}?utm_source=news&utm_campaign=c{}", i % 7)).collect(),
            ["https://www.google.com/search?q=assent", "https://duckduckgo.com/", "", "https://news.ycombinator.com/item?id=1"]
                .iter().map(|s| s.to_string()).collect(),
            [UA, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
             "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"]
                .iter().map(|s| s.to_string()).collect(),
        )
    } else {
        (
            ["/", "/pricing", "/blog", "/docs", "/about"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            vec!["https://www.google.com/".to_string()],
            vec![UA.to_string()],
        )
    };
    let script = format!(
        r#"local ids = {{{ids}}}
local paths = {{{paths}}}
local referrers = {{{referrers}}}
local agents = {{{agents}}}
local pool = {{}}
local next_request = 0
local threads_set_up = 0

local function event_request()
  local body = '{{"site":"demo","consent_id":"' .. ids[math.random(#ids)] ..
    '","name":"pageview","url":"http://localhost' .. paths[math.random(#paths)] ..
    '","referrer":"' .. referrers[math.random(#referrers)] .. '","screen_width":1440}}'
  return wrk.format("POST", "/api/event",
    {{["Content-Type"] = "text/plain", ["User-Agent"] = agents[math.random(#agents)]}}, body)
end

-- Runs in wrk's main state, once per thread: each thread gets its own seed, hence its own pool.
setup = function(thread)
  threads_set_up = threads_set_up + 1
  thread:set("thread_number", threads_set_up)
end

init = function(args)
  math.randomseed(os.time() * 100 + thread_number)
  for i = 1, {pool} do
    pool[i] = event_request()
  end
end

request = function()
  next_request = next_request % #pool + 1
  return pool[next_request]
end
"#,
        ids = list(ids),
        paths = list(&paths),
        referrers = list(&referrers),
        agents = list(&agents),
        pool = 20_000,
    );
    let path = dir.join(name);
    std::fs::write(&path, script).expect("write wrk script");
    path
}

fn row(label: &str, w: &Wrk, base: Option<&Wrk>) -> String {
    format!(
        "| {label} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {:.2} | {:.1} |",
        w.rate,
        base.map(|b| format!("{:.2}", w.rate / b.rate))
            .unwrap_or_else(|| "—".into()),
        w.p50,
        w.p99,
        w.max,
        w.non_2xx,
        w.server_cores,
        w.wrk_cores,
        w.machine_cores,
        w.machine_micros_per_request(),
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// `--rounds` rounds of `/healthz`, the simple mix and the realistic mix, one after the other: this
/// machine's throughput drifts by ±15% over minutes, so each ratio divides by the `/healthz` run just
/// before it, and the summary gives the median over the rounds.
fn ingest(server: &Server, scripts: &Path, connections: u64, seconds: u64, rounds: u64) {
    let ids: Vec<String> = (0..2000).map(|_| new_consent(&server.addr)).collect();
    let simple = event_script(scripts, "simple.lua", &ids, false);
    let realistic = event_script(scripts, "realistic.lua", &ids, true);
    wrk(&server.addr, "/api/event", Some(&simple), connections, 2);
    server.reset_peak();
    println!("wrk -t2 -c{connections} -d{seconds}s, server in-process (release), rate limit off\n");
    println!(
        "| round, load | req/s | ratio to healthz | p50 ms | p99 ms | max ms | non-2xx | server cores | wrk cores | machine busy cores | machine µs per request |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (mut simple_ratios, mut realistic_ratios) = (Vec::new(), Vec::new());
    let (mut simple_p99, mut realistic_p99) = (Vec::new(), Vec::new());
    let (mut simple_ceilings, mut realistic_ceilings) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let health = wrk(&server.addr, "/healthz", None, connections, seconds);
        println!("{}", row(&format!("{round}, GET /healthz"), &health, None));
        let s = wrk(
            &server.addr,
            "/api/event",
            Some(&simple),
            connections,
            seconds,
        );
        println!(
            "{}",
            row(
                &format!("{round}, POST /api/event, simple"),
                &s,
                Some(&health)
            )
        );
        let r = wrk(
            &server.addr,
            "/api/event",
            Some(&realistic),
            connections,
            seconds,
        );
        println!(
            "{}",
            row(
                &format!("{round}, POST /api/event, realistic"),
                &r,
                Some(&health)
            )
        );
        // What the ratio would be with the machine as busy as under `/healthz`: the bound that the events'
        // cost to the whole machine sets, whatever the writer's latency.
        simple_ceilings.push(health.machine_micros_per_request() / s.machine_micros_per_request());
        realistic_ceilings
            .push(health.machine_micros_per_request() / r.machine_micros_per_request());
        simple_ratios.push(s.rate / health.rate);
        realistic_ratios.push(r.rate / health.rate);
        simple_p99.push(s.p99);
        realistic_p99.push(r.p99);
    }
    let (rss, peak) = server.rss_mb();
    println!(
        "\nmedian over {rounds} rounds: simple {:.2}x healthz, p99 {:.2} ms; realistic {:.2}x, p99 {:.2} ms",
        median(simple_ratios),
        median(simple_p99),
        median(realistic_ratios),
        median(realistic_p99)
    );
    println!(
        "CPU bound: at the machine's CPU per request, with the machine as busy as under /healthz, the ratio \
         would be simple {:.2}, realistic {:.2} (median)",
        median(simple_ceilings),
        median(realistic_ceilings)
    );
    println!("memory: {rss:.1} MB now, {peak:.1} MB peak under load");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Rounds of: a new visitor consents, sends five page views, exports, erases. Returns the export and
/// erasure latencies in ms, sorted.
fn rights_rounds(addr: &str, rounds: usize, pause: Duration) -> (Vec<f64>, Vec<f64>) {
    let (mut export, mut erase) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let id = new_consent(addr);
        for p in 0..5 {
            let body = format!(
                r#"{{"site":"demo","consent_id":"{id}","name":"pageview","url":"http://localhost/p{p}"}}"#
            );
            assert_eq!(request(addr, "POST", "/api/event", &body).0, 202);
        }
        let t = Instant::now();
        let (status, body) = request(addr, "GET", &format!("/api/visitor/{id}"), "");
        export.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(status == 200 && body.contains("/p4"), "{status} {body}");
        let t = Instant::now();
        let (status, _) = request(addr, "DELETE", &format!("/api/visitor/{id}"), "");
        erase.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 204);
        std::thread::sleep(pause);
    }
    export.sort_by(f64::total_cmp);
    erase.sort_by(f64::total_cmp);
    (export, erase)
}

fn oldest_visit(dir: &Path) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("assent.db")).expect("db");
    conn.query_row("SELECT MIN(started_at) FROM visits", [], |r| r.get(0))
        .expect("oldest visit")
}

fn rights(server: &Server, scripts: &Path, connections: u64, seconds: u64, purge_hours: i64) {
    let counts = |w: &str| {
        let conn = rusqlite::Connection::open(server.dir.join("assent.db")).expect("db");
        conn.query_row(&format!("SELECT COUNT(*) FROM {w}"), [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap_or(0)
    };
    println!(
        "data directory: {} events, {} visits, {} consent records, {:.0} MB\n",
        counts("events"),
        counts("visits"),
        counts("consents"),
        std::fs::metadata(server.dir.join("assent.db"))
            .map(|m| m.len() as f64 / 1e6)
            .unwrap_or(0.0)
    );
    let (export, erase) = rights_rounds(&server.addr, 100, Duration::ZERO);
    println!("idle server, 100 rounds (ms):\n");
    println!("| request | p50 | p99 | max |");
    println!("|---|---:|---:|---:|");
    for (label, v) in [
        ("GET /api/visitor/{id}", &export),
        ("DELETE /api/visitor/{id}", &erase),
    ] {
        println!(
            "| {label} | {:.2} | {:.2} | {:.2} |",
            percentile(v, 0.5),
            percentile(v, 0.99),
            v[v.len() - 1]
        );
    }

    let ids: Vec<String> = (0..2000).map(|_| new_consent(&server.addr)).collect();
    let script = event_script(scripts, "rights.lua", &ids, true);
    let quiet = wrk(
        &server.addr,
        "/api/event",
        Some(&script),
        connections,
        seconds,
    );
    // The same load, with an export-and-erase loop beside it and a retention run in the middle that
    // deletes the oldest hour of data.
    let stop = Arc::new(AtomicBool::new(false));
    let addr = server.addr.clone();
    let looping = stop.clone();
    let eraser = std::thread::spawn(move || {
        let mut all = (Vec::new(), Vec::new());
        while !looping.load(Ordering::Relaxed) {
            let (e, d) = rights_rounds(&addr, 1, Duration::from_millis(200));
            all.0.extend(e);
            all.1.extend(d);
        }
        all
    });
    let store = server.state.store.clone();
    let cutoff = oldest_visit(&server.dir) + purge_hours * 3600;
    let purge = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(seconds / 2));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let t = Instant::now();
        let report = runtime
            .block_on(store.purge(cutoff, assent::now()))
            .expect("purge");
        (t.elapsed().as_secs_f64() * 1000.0, report)
    });
    let loaded = wrk(
        &server.addr,
        "/api/event",
        Some(&script),
        connections,
        seconds,
    );
    stop.store(true, Ordering::Relaxed);
    let (mut export, mut erase) = eraser.join().expect("eraser");
    export.sort_by(f64::total_cmp);
    erase.sort_by(f64::total_cmp);
    let (purge_ms, report) = purge.join().expect("purge");
    println!("\nevents with wrk -t2 -c{connections} -d{seconds}s (realistic mix):\n");
    println!("| load | req/s | p50 ms | p99 ms | max ms | non-2xx |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, w) in [
        ("events alone", &quiet),
        ("events + erasure loop + retention run", &loaded),
    ] {
        println!(
            "| {label} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            w.rate, w.p50, w.p99, w.max, w.non_2xx
        );
    }
    println!(
        "\nduring the load: {} export/erase rounds, export p50 {:.2} / max {:.2} ms, erasure p50 {:.2} / max {:.2} ms; \
         retention run deleted {} events, {} visits, {} consent records in {purge_ms:.1} ms",
        export.len(),
        percentile(&export, 0.5),
        export.last().copied().unwrap_or(0.0),
        percentile(&erase, 0.5),
        erase.last().copied().unwrap_or(0.0),
        report.events,
        report.visits,
        report.consent_records
    );
    let (rss, peak) = server.rss_mb();
    println!("memory: {rss:.1} MB now, {peak:.1} MB peak");
}

fn mint(server: &Server, scripts: &Path, ids: u64) {
    let (before, _) = server.rss_mb();
    let (mut minted, mut seconds, mut errors) = (0u64, 0.0f64, 0u64);
    // wrk runs for a fixed time; each thread stops itself once it sent its share of what is left.
    while minted < ids {
        let share = (ids - minted).div_ceil(2);
        let script = format!(
            r#"local sent = 0
request = function()
  return wrk.format("POST", "/api/consent", {{["Content-Type"] = "text/plain"}},
    '{{"site":"demo","revision":1,"action":"accept_all"}}')
end
response = function(status)
  sent = sent + 1
  if sent >= {share} then wrk.thread:stop() end
end
"#
        );
        let path = scripts.join("mint.lua");
        std::fs::write(&path, script).expect("write wrk script");
        let w = wrk(&server.addr, "/api/consent", Some(&path), 8, 10);
        minted += w.requests;
        errors += w.non_2xx;
        seconds += w.requests as f64 / w.rate;
    }
    let (after, peak) = server.rss_mb();
    println!(
        "{minted} new consent ids ({:.0}/s, {errors} non-2xx): server memory {before:.1} MB before, \
         {after:.1} MB after, {peak:.1} MB peak; {} ids in the consent cache",
        minted as f64 / seconds,
        server.state.consents.len()
    );
}

/// The Stats API queries of a dashboard over `range`, each with a label and its raw-SQL equivalent.
fn dashboard(
    site: &str,
    range: &serde_json::Value,
    filter: &serde_json::Value,
) -> Vec<(String, serde_json::Value)> {
    use serde_json::json;
    // Plausible refuses views_per_visit beside an event:page filter (the rule is kept here).
    let page_filter = filter.to_string().contains("event:page");
    let mut headline = vec![
        "visitors",
        "visits",
        "pageviews",
        "views_per_visit",
        "bounce_rate",
        "visit_duration",
    ];
    if page_filter {
        headline.retain(|m| *m != "views_per_visit");
    }
    let mut out = vec![
        (
            "headline, with comparison".to_string(),
            json!({"site_id": site, "metrics": headline,
                   "date_range": range, "filters": filter, "include": {"comparisons": {"mode": "previous_period"}}}),
        ),
        (
            "time series".to_string(),
            json!({"site_id": site, "metrics": ["visitors", "pageviews"], "date_range": range, "filters": filter, "dimensions": ["time"]}),
        ),
    ];
    let breakdowns = [
        ("event:page", json!(["visitors", "pageviews"])),
        ("visit:entry_page", json!(["visitors", "bounce_rate"])),
        ("visit:exit_page", json!(["visitors"])),
        ("visit:source", json!(["visitors", "bounce_rate"])),
        ("visit:referrer", json!(["visitors"])),
        ("visit:utm_campaign", json!(["visitors"])),
        ("visit:country", json!(["visitors"])),
        ("visit:browser", json!(["visitors"])),
        ("visit:os", json!(["visitors"])),
        ("visit:device", json!(["visitors"])),
    ];
    for (dim, metrics) in breakdowns {
        out.push((
            dim.to_string(),
            json!({"site_id": site, "metrics": metrics, "date_range": range, "filters": filter,
                   "dimensions": [dim], "pagination": {"limit": 10}}),
        ));
    }
    out
}

/// The same questions in raw SQL over the visits and events tables (UTC days), for the baseline.
fn raw_sql(site: &str, from: i64, to: i64, filter_country: Option<&str>) -> Vec<(String, String)> {
    let cond = format!(
        "site_id = '{site}' AND started_at >= {from} AND started_at < {to}{}",
        filter_country
            .map(|c| format!(" AND country = '{c}'"))
            .unwrap_or_default()
    );
    let prev = format!(
        "site_id = '{site}' AND started_at >= {} AND started_at < {from}{}",
        2 * from - to,
        filter_country
            .map(|c| format!(" AND country = '{c}'"))
            .unwrap_or_default()
    );
    let headline = |c: &str| {
        format!(
            "SELECT COUNT(DISTINCT visitor), COUNT(*), SUM(pageviews), SUM(pageviews = 1 AND events = 1),
                    SUM(CASE WHEN engaged_ms > 0 THEN engaged_ms / 1000 ELSE last_at - started_at END) FROM visits WHERE {c}"
        )
    };
    let by = |col: &str, extra: &str| {
        format!(
            "SELECT {col}, COUNT(DISTINCT visitor){extra} FROM visits WHERE {cond} GROUP BY {col} ORDER BY 2 DESC LIMIT 10"
        )
    };
    vec![
        (
            "headline, with comparison".to_string(),
            format!("{}; {}", headline(&cond), headline(&prev)),
        ),
        (
            "time series".to_string(),
            format!(
                "SELECT started_at / 86400, COUNT(DISTINCT visitor), SUM(pageviews) FROM visits WHERE {cond} GROUP BY 1"
            ),
        ),
        (
            "event:page".to_string(),
            format!(
                "SELECT e.path, COUNT(DISTINCT v.visitor), COUNT(*) FROM visits v
                 JOIN events e ON e.id BETWEEN v.first_event AND v.last_event AND e.visit_id = v.id
                 WHERE v.{} AND e.name = 'pageview' GROUP BY e.path ORDER BY 2 DESC LIMIT 10",
                cond
            ),
        ),
        (
            "visit:entry_page".to_string(),
            by("entry_page", ", AVG(pageviews = 1 AND events = 1)"),
        ),
        ("visit:exit_page".to_string(), by("exit_page", "")),
        (
            "visit:source".to_string(),
            by("source", ", AVG(pageviews = 1 AND events = 1)"),
        ),
        ("visit:referrer".to_string(), by("referrer", "")),
        ("visit:utm_campaign".to_string(), by("utm_campaign", "")),
        ("visit:country".to_string(), by("country", "")),
        ("visit:browser".to_string(), by("browser", "")),
        ("visit:os".to_string(), by("os", "")),
        ("visit:device".to_string(), by("device", "")),
    ]
}

fn time_sql(conn: &rusqlite::Connection, sql: &str) -> f64 {
    let t = Instant::now();
    for statement in sql.split("; ") {
        let mut stmt = conn.prepare(statement).expect("raw SQL");
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).expect("raw SQL");
        while let Some(r) = rows.next().expect("raw SQL") {
            for c in 0..columns {
                let _ = r.get_ref(c);
            }
        }
    }
    t.elapsed().as_secs_f64() * 1000.0
}

fn median3(mut f: impl FnMut() -> f64) -> f64 {
    let mut v = [f(), f(), f()];
    v.sort_by(f64::total_cmp);
    v[1]
}

fn stats_bench(server: &Server, key: &str, site: &str, api_only: bool) {
    // On PostgreSQL (`--database-url`) only the API is timed: the raw SQL and the file are SQLite's.
    let api_only = api_only || server.state.settings.database_url.is_some();
    let conn = rusqlite::Connection::open_with_flags(
        server.dir.join("assent.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("db");
    let events: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap_or(0);
    let size = std::fs::metadata(server.dir.join("assent.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    let consents: i64 = conn
        .query_row(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE 'consents%'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    println!(
        "{events} events; database {:.0} MB: {:.0} bytes per event, {:.0} without the consent log\n",
        size as f64 / 1e6,
        size as f64 / events.max(1) as f64,
        (size as i64 - consents) as f64 / events.max(1) as f64
    );
    let now = assent::now();
    let today = now.div_euclid(86_400) * 86_400;
    let auth = format!("Authorization: Bearer {key}\r\n");
    let ask = |body: &serde_json::Value| {
        let t = Instant::now();
        let (status, answer) = request_with(
            &server.addr,
            "POST",
            "/api/v2/query",
            &body.to_string(),
            &auth,
        );
        assert_eq!(status, 200, "{body}: {answer}");
        t.elapsed().as_secs_f64() * 1000.0
    };
    let (idle, _) = server.rss_mb();
    let mut peak: f64 = 0.0;
    let empty = serde_json::json!([]);
    let country = serde_json::json!([["is", "visit:country", ["FR"]]]);
    let page = serde_json::json!([["is", "event:page", ["/pricing"]]]);
    for (label, range, days, filter, raw_country) in [
        ("30 days", serde_json::json!("30d"), 30, &empty, None),
        ("12 months", serde_json::json!("12mo"), 365, &empty, None),
        (
            "30 days, filter visit:country is FR",
            serde_json::json!("30d"),
            30,
            &country,
            Some("FR"),
        ),
        (
            "30 days, filter event:page is /pricing",
            serde_json::json!("30d"),
            30,
            &page,
            None,
        ),
    ] {
        println!("**{label}**\n");
        println!("| query | Stats API ms | raw SQL ms |");
        println!("|---|---:|---:|");
        let queries = dashboard(site, &range, filter);
        let raw = raw_sql(site, today - days * 86_400, today, raw_country);
        let (mut api_total, mut raw_total) = (0.0, 0.0);
        // The server's memory while it answers this set: the peak is reset first, and read before the
        // raw SQL (run in this process too) adds its own.
        server.reset_peak();
        let api_times: Vec<f64> = queries
            .iter()
            .map(|(_, body)| median3(|| ask(body)))
            .collect();
        // The whole set once more, as a dashboard asks it: one after another, cold from the first.
        let t = Instant::now();
        for (_, body) in &queries {
            ask(body);
        }
        let set = t.elapsed().as_secs_f64() * 1000.0;
        // And as the dashboard asks it: one batch, the rows of each period read once.
        let batch = serde_json::Value::Array(queries.iter().map(|(_, b)| b.clone()).collect());
        let one_batch = median3(|| {
            let t = Instant::now();
            let (status, answer) = request_with(
                &server.addr,
                "POST",
                "/api/v2/queries",
                &batch.to_string(),
                &auth,
            );
            assert_eq!(status, 200, "{answer}");
            t.elapsed().as_secs_f64() * 1000.0
        });
        let (_, set_peak) = server.rss_mb();
        peak = peak.max(set_peak);
        for ((name, _), api) in queries.iter().zip(api_times) {
            let sql = raw
                .iter()
                .find(|(n, _)| n == name)
                .filter(|_| {
                    !api_only
                        && (filter.as_array().is_some_and(|f| f.is_empty())
                            || raw_country.is_some())
                })
                .map(|(_, sql)| {
                    // Slow baselines run once: a minute-long query needs no median.
                    let first = time_sql(&conn, sql);
                    if first > 2000.0 {
                        first
                    } else {
                        median3(|| time_sql(&conn, sql))
                    }
                });
            api_total += api;
            raw_total += sql.unwrap_or(0.0);
            println!(
                "| {name} | {api:.1} | {} |",
                sql.map(|s| format!("{s:.1}")).unwrap_or_else(|| "—".into())
            );
        }
        println!(
            "| **whole set** (sum of medians / one pass / one batch) | {api_total:.1} / {set:.1} / **{one_batch:.1}** | {} |\n",
            if raw_total > 0.0 {
                format!("{raw_total:.1}")
            } else {
                "—".into()
            }
        );
        println!("server memory while answering this set: {set_peak:.1} MB peak\n");
    }
    let (rss, _) = server.rss_mb();
    println!(
        "server memory: {idle:.1} MB before the queries, {rss:.1} MB after; {peak:.1} MB peak while answering"
    );
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
        "ingest" => ingest(
            &server,
            scripts.path(),
            connections,
            seconds,
            args.number("--rounds", 3),
        ),
        "rights" => rights(
            &server,
            scripts.path(),
            connections,
            seconds,
            args.number("--purge-hours", 1) as i64,
        ),
        "mint" => mint(&server, scripts.path(), args.number("--ids", 150_000)),
        "stats" => stats_bench(
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
