//! wrk, the external load generator: its runs (with the CPU the server, wrk and the whole machine used
//! meanwhile), the Lua scripts of consented page views it sends, and the summaries of its figures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::server::UA;

/// What wrk measured.
#[derive(Default)]
pub struct Wrk {
    /// CPU time over the run, in cores (1.0: one core busy all the time): the whole server process, and wrk.
    pub server_cores: f64,
    pub wrk_cores: f64,
    /// The whole machine's busy time over the run, in cores: the server, wrk, the kernel's loopback and
    /// disk work wherever it ran, and anything else running.
    pub machine_cores: f64,
    pub rate: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub requests: u64,
    pub non_2xx: u64,
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

pub fn wrk(addr: &str, path: &str, script: Option<&Path>, connections: u64, seconds: u64) -> Wrk {
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
    pub fn machine_micros_per_request(&self) -> f64 {
        self.machine_cores * 1e6 / self.rate
    }
}

/// A wrk script posting events of the given visitors, chosen at random, to `/api/event`.
///
/// Each wrk thread formats a pool of requests once, in `init`, and then cycles through it: formatting a
/// request in Lua for every send (random picks, string joins, `wrk.format`) cost wrk about twice the CPU per
/// request that `/healthz` costs it, on the cores the server needs, which lowered the events' rate and not
/// the baseline's. The pool is large enough that every visitor and every path recurs in random order.
pub fn event_script(dir: &Path, name: &str, ids: &[String], realistic: bool) -> PathBuf {
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

pub fn row(label: &str, w: &Wrk, base: Option<&Wrk>) -> String {
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

pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
