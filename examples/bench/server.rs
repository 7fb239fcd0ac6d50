//! The server under test, run in the bench's own process, and plain HTTP requests to it (one connection
//! each) for the set-up and the measurements that wrk does not make.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assent::settings::{FlagSettings, Settings};
use assent::state::AppState;

pub const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// The server, in this process.
pub struct Server {
    pub addr: String,
    pub state: Arc<AppState>,
    pub dir: PathBuf,
}

impl Server {
    pub fn start(dir: &Path, database_url: Option<&str>) -> Server {
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
    pub fn reset_peak(&self) {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    pub fn rss_mb(&self) -> (f64, f64) {
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
pub fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    request_with(addr, method, path, body, "")
}

pub fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
    extra: &str,
) -> (u16, String) {
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

pub fn new_consent(addr: &str) -> String {
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
