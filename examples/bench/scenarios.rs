//! The write-side scenarios: `ingest` (events against `/healthz`), `rights` (export, erasure and a
//! retention run under load) and `mint` (memory after many new consent ids).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::load::{event_script, median, percentile, row, wrk};
use crate::server::{Server, new_consent, request};

/// `--rounds` rounds of `/healthz`, the simple mix and the realistic mix, one after the other: this
/// machine's throughput drifts by ±15% over minutes, so each ratio divides by the `/healthz` run just
/// before it, and the summary gives the median over the rounds.
pub fn ingest(server: &Server, scripts: &Path, connections: u64, seconds: u64, rounds: u64) {
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

pub fn rights(server: &Server, scripts: &Path, connections: u64, seconds: u64, purge_hours: i64) {
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

pub fn mint(server: &Server, scripts: &Path, ids: u64) {
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
