//! Ingestion benchmark: loads `POST /api/event` with valid, consented events on loopback and reports
//! events/s and latency percentiles beside `GET /healthz` measured the same way in the same run, plus
//! the server's peak memory.
//!
//! Run: `cargo build --release && cargo run --release --example bench -- [--connections 32] [--seconds 10]`
//! It starts `target/release/assent` on a temporary data directory (rate limit off) and stops it at the end;
//! `--data-dir DIR` uses (and keeps) an existing one instead, e.g. filled by `assent seed`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Stats {
    label: &'static str,
    requests: usize,
    errors: usize,
    seconds: f64,
    latencies_us: Vec<u64>,
}

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// Reads one HTTP/1.1 response (headers and Content-Length body); returns the status.
fn read_response(r: &mut BufReader<TcpStream>) -> std::io::Result<u16> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut len = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(status)
}

fn load(
    label: &'static str,
    addr: &str,
    connections: usize,
    seconds: u64,
    request: Arc<dyn Fn(usize, usize) -> Vec<u8> + Send + Sync>,
    expect: u16,
) -> Stats {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let addr = addr.to_string();
            let request = request.clone();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&addr).expect("connect");
                stream.set_nodelay(true).ok();
                let mut writer = stream.try_clone().expect("clone");
                let mut reader = BufReader::new(stream);
                let (mut lat, mut errors, mut i) = (Vec::new(), 0usize, 0usize);
                while Instant::now() < deadline {
                    let req = request(c, i);
                    i += 1;
                    let t = Instant::now();
                    if writer.write_all(&req).is_err() {
                        errors += 1;
                        break;
                    }
                    match read_response(&mut reader) {
                        Ok(s) if s == expect => lat.push(t.elapsed().as_micros() as u64),
                        Ok(_) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            break;
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t.join().expect("load thread");
        latencies_us.extend(l);
        errors += e;
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    Stats {
        label,
        requests: latencies_us.len(),
        errors,
        seconds,
        latencies_us,
    }
}

fn post(addr: &str, path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn one_request(addr: &str, req: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(req.as_bytes()).expect("write");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut len = 0;
    r.read_line(&mut line).expect("status");
    loop {
        let mut h = String::new();
        r.read_line(&mut h).expect("header");
        if h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).expect("body");
    String::from_utf8_lossy(&body).into_owned()
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let connections = arg("--connections", 32) as usize;
    let seconds = arg("--seconds", 10);

    let exe = std::env::current_exe().expect("exe");
    let bin: PathBuf = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join("assent");
    assert!(
        bin.exists(),
        "build the server first: cargo build --release ({} missing)",
        bin.display()
    );
    // --data-dir runs against an existing data directory (e.g. one filled by `assent seed`) and keeps it.
    let given_dir = args
        .iter()
        .position(|a| a == "--data-dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let dir = given_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("assent-bench-{}", std::process::id()))
    });
    let mut child = Command::new(&bin)
        .args([
            "--data-dir",
            dir.to_str().expect("utf-8 temp dir"),
            "--listen",
            "127.0.0.1:0",
            "--rate-limit",
            "0",
            "serve",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start server");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut addr = String::new();
    for line in out.lines().map_while(Result::ok) {
        if let Some(u) = line.strip_prefix("listening on http://") {
            addr = u.to_string();
            break;
        }
    }
    assert!(!addr.is_empty(), "server did not start");

    // One consent per simulated visitor.
    let visitors = 2000;
    let ids: Arc<Vec<String>> = Arc::new(
        (0..visitors)
            .map(|_| {
                let body = one_request(
                    &addr,
                    &post(
                        &addr,
                        "/api/consent",
                        r#"{"site":"demo","revision":1,"action":"accept_all"}"#,
                    ),
                );
                let v: serde_json::Value = serde_json::from_str(&body).expect("consent answer");
                v["consent_id"].as_str().expect("consent id").to_string()
            })
            .collect(),
    );

    let a = addr.clone();
    let health: Arc<dyn Fn(usize, usize) -> Vec<u8> + Send + Sync> =
        Arc::new(move |_, _| format!("GET /healthz HTTP/1.1\r\nHost: {a}\r\n\r\n").into_bytes());
    let a = addr.clone();
    let event: Arc<dyn Fn(usize, usize) -> Vec<u8> + Send + Sync> = Arc::new(move |c, i| {
        let id = &ids[(c * 7919 + i) % ids.len()];
        let page = ["/", "/pricing", "/blog", "/docs", "/about"][i % 5];
        let body = format!(
            r#"{{"site":"demo","consent_id":"{id}","name":"pageview","url":"http://localhost{page}?utm_source=bench","referrer":"https://www.google.com/","screen_width":1440}}"#
        );
        post(&a, "/api/event", &body).into_bytes()
    });

    // Warm-up, then the two measured runs.
    load("warm-up", &addr, connections, 2, event.clone(), 202);
    let h = load("GET /healthz", &addr, connections, seconds, health, 200);
    let e = load("POST /api/event", &addr, connections, seconds, event, 202);
    let rss = peak_rss_mb(child.id());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let db_mb = std::fs::metadata(dir.join("assent.db"))
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(0.0);
    if given_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }

    println!(
        "\n{connections} connections, {seconds} s per run, {} cores\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    println!("| endpoint | requests/s | p50 ms | p99 ms | max ms | errors |");
    println!("|---|---:|---:|---:|---:|---:|");
    for s in [&h, &e] {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            s.label,
            s.rate(),
            s.pct(0.5),
            s.pct(0.99),
            s.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0,
            s.errors
        );
    }
    println!(
        "\nevent rate / healthz rate: {:.2}; server peak RSS {rss:.1} MB; database {db_mb:.1} MB after {} events",
        e.rate() / h.rate(),
        e.requests
    );
}
