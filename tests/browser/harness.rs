//! Test environment for the browser tests: a tiny static web server for the
//! test pages (on `localhost`), and the Assent backend (on `127.0.0.1`):
//! the real server binary by default, or an in-process stub of its API when
//! `ASSENT_BROWSER_BACKEND=stub` (used to develop the script on its own).
#![allow(dead_code)]

use crate::payload;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- web server

type Handler = dyn Fn(&Request) -> Option<Response> + Send + Sync;

pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type: content_type.into(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    pub fn json(status: u16, v: &Value) -> Response {
        Response::new(status, "application/json", v.to_string())
    }
}

struct WebState {
    pages: HashMap<String, Response>,
    log: Vec<String>,
}

/// HTTP/1.0-style static server on 127.0.0.1:0, one thread per connection.
pub struct Web {
    pub port: u16,
    state: Arc<Mutex<WebState>>,
    stop: Arc<AtomicBool>,
}

impl Web {
    pub fn start(handler: Option<Arc<Handler>>) -> Web {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind web server");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(WebState {
            pages: HashMap::new(),
            log: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, handler) = (st.clone(), handler.clone());
                std::thread::spawn(move || serve(conn, &st, handler.as_deref()));
            }
        });
        Web { port, state, stop }
    }

    /// Serves `body` at `path` on this server.
    pub fn put(&self, path: &str, content_type: &str, body: &str) {
        self.put_response(path, Response::new(200, content_type, body));
    }

    pub fn put_response(&self, path: &str, r: Response) {
        self.state.lock().unwrap().pages.insert(path.to_string(), r);
    }

    /// Request lines seen so far ("GET /path").
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn origin(&self, host: &str) -> String {
        format!("http://{host}:{}", self.port)
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<WebState>, handler: Option<&Handler>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    state
        .lock()
        .unwrap()
        .log
        .push(format!("{} {}", req.method, req.path));
    let resp = if req.method == "OPTIONS" {
        Response::new(204, "text/plain", "")
    } else if let Some(r) = handler.and_then(|h| h(&req)) {
        r
    } else {
        let st = state.lock().unwrap();
        match st.pages.get(&req.path) {
            Some(r) => Response {
                status: r.status,
                content_type: r.content_type.clone(),
                body: r.body.clone(),
                delay: r.delay,
            },
            None => Response::new(404, "text/plain", "not found"),
        }
    };
    if !resp.delay.is_zero() {
        std::thread::sleep(resp.delay);
    }
    let head = format!(
        "HTTP/1.0 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Headers: content-type\r\n\
         Access-Control-Allow-Methods: GET, POST, DELETE\r\nConnection: close\r\n\r\n",
        resp.status,
        resp.content_type,
        resp.body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&resp.body);
    let _ = conn.flush();
}

fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    Some(Request {
        method,
        path,
        query,
        headers,
        body,
    })
}

// ---------------------------------------------------------------- the stub API

/// An in-memory imitation of the server's public API, for developing the
/// script without the server (`ASSENT_BROWSER_BACKEND=stub`).
pub struct Stub {
    pub config: Value,
    consents: Vec<Value>,
    events: Vec<Value>,
    next: u64,
}

fn now_plus_days(days: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(days))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("/").to_string()
}

impl Stub {
    fn handle(&mut self, req: &Request) -> Option<Response> {
        let p = req.path.as_str();
        if req.method == "GET" && p == "/s/demo/assent.js" {
            return Some(Response::new(
                200,
                "text/javascript",
                payload::served_script(&self.config),
            ));
        }
        if req.method == "GET" && p == "/s/assent.css" {
            return Some(Response::new(200, "text/css", payload::min_css()));
        }
        if let Some(id) = p.strip_prefix("/api/visitor/") {
            let consents: Vec<Value> = self
                .consents
                .iter()
                .filter(|c| c["consent_id"] == id)
                .cloned()
                .collect();
            let events: Vec<Value> = self
                .events
                .iter()
                .filter(|e| e["consent_id"] == id)
                .cloned()
                .collect();
            // like the server: a visit with the first page view's referrer host and UTM source
            let visits: Vec<Value> = events
                .iter()
                .find(|e| e["name"] == "pageview")
                .map(|e| {
                    let url = e["url"].as_str().unwrap_or_default();
                    let utm = url
                        .split(['?', '&'])
                        .find_map(|kv| kv.strip_prefix("utm_source="));
                    let referrer = e["referrer"].as_str().map(|r| {
                        let host = r
                            .split("://")
                            .nth(1)
                            .unwrap_or(r)
                            .split('/')
                            .next()
                            .unwrap_or("");
                        host.trim_start_matches("www.").to_string()
                    });
                    json!({"entry_page": e["path"], "referrer": referrer, "utm_source": utm})
                })
                .into_iter()
                .collect();
            return Some(Response::json(
                200,
                &json!({"consents": consents, "events": events, "visits": visits}),
            ));
        }
        if req.method != "POST" {
            return None;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return Some(Response::json(400, &json!({"error": "malformed JSON"})));
        };
        match p {
            "/api/consent" => {
                if body["revision"] != self.config["revision"] {
                    return Some(Response::json(409, &json!({"error": "stale revision"})));
                }
                let known = body["consent_id"]
                    .as_str()
                    .filter(|id| self.consents.iter().any(|c| c["consent_id"] == *id));
                let id = match known {
                    Some(id) => id.to_string(),
                    None => {
                        self.next += 1;
                        format!("stub{:028x}", self.next)
                    }
                };
                let expires = now_plus_days(395);
                self.consents.push(json!({
                    "consent_id": id, "action": body["action"], "revision": body["revision"],
                    "choices": body["choices"], "language": body["language"], "url": body["url"],
                    "expires_at": expires,
                }));
                Some(Response::json(
                    200,
                    &json!({"consent_id": id, "revision": body["revision"], "choices": body["choices"], "expires_at": expires}),
                ))
            }
            "/api/event" => {
                let id = body["consent_id"].as_str().unwrap_or_default();
                let granted = self
                    .consents
                    .iter()
                    .rev()
                    .find(|c| c["consent_id"] == id)
                    .is_some_and(|c| c["choices"]["analytics"] == true);
                if !granted {
                    return Some(Response::json(
                        403,
                        &json!({"error": "no analytics consent"}),
                    ));
                }
                let mut e = body.clone();
                e["path"] = json!(url_path(body["url"].as_str().unwrap_or("/")));
                self.events.push(e);
                Some(Response::new(202, "application/json", "{}"))
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------- the real server

pub struct Server {
    child: Child,
    pub url: String,
    pub data_dir: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    pub fn start() -> Server {
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_assent"))
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--listen", "127.0.0.1:0", "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the assent server");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let err_buf = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut b = err_buf.lock().unwrap();
                b.push_str(&line);
                b.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let url = line[i + "listening on ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send(url);
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url.trim_end_matches('/').to_string(),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the server did not print `listening on` in 60 s; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Server {
            child,
            url,
            data_dir,
            stderr,
        }
    }

    /// Runs the CLI on this server's data directory.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_assent"))
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(args)
            .output()
            .expect("run assent CLI");
        assert!(
            out.status.success(),
            "assent {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- server stderr ---\n{}", self.stderr.lock().unwrap());
        }
    }
}

// ---------------------------------------------------------------- the environment

/// One test's world: pages on `http://localhost:PORT/`, the backend on
/// `http://127.0.0.1:...`.
pub struct Env {
    pub web: Web,
    pub api: String,
    server: Option<Server>,
    stub: Option<Arc<Mutex<Stub>>>,
    http: ureq::Agent,
}

pub fn use_stub() -> bool {
    std::env::var("ASSENT_BROWSER_BACKEND").is_ok_and(|v| v == "stub")
}

impl Env {
    pub fn new() -> Env {
        let http = crate::webdriver::agent();
        if use_stub() {
            let stub = Arc::new(Mutex::new(Stub {
                config: Value::Null,
                consents: vec![],
                events: vec![],
                next: 0,
            }));
            let s2 = stub.clone();
            let handler: Arc<Handler> =
                Arc::new(move |req: &Request| s2.lock().unwrap().handle(req));
            let web = Web::start(Some(handler));
            let api = web.origin("127.0.0.1");
            stub.lock().unwrap().config =
                payload::demo_config(&api, 1, &payload::LANGUAGES, json!({}));
            Env {
                web,
                api,
                server: None,
                stub: Some(stub),
                http,
            }
        } else {
            let server = Server::start();
            let api = server.url.clone();
            Env {
                web: Web::start(None),
                api,
                server: Some(server),
                stub: None,
                http,
            }
        }
    }

    /// Serves a test page at `path` and returns its URL (on `localhost`).
    pub fn page(&self, path: &str, lang: &str, body: &str) -> String {
        let html = format!(
            "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\"><title>Assent test</title>\
             <script src=\"{api}/s/demo/assent.js\" defer></script>\
             <style>body{{font:16px/1.6 system-ui,sans-serif;margin:0;padding:2rem 3rem;max-width:60rem}}\
             @media (prefers-color-scheme:dark){{body{{background:#0e1116;color:#d6dbe1}}}}</style></head>\
             <body><h1>Assent test page</h1>{body}\
             <p>Lorem ipsum dolor sit amet, consectetur adipiscing elit. Sed do eiusmod tempor incididunt ut labore et \
             dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris.</p></body></html>",
            api = self.api
        );
        self.web.put(path, "text/html; charset=utf-8", &html);
        format!("{}{}", self.web.origin("localhost"), path)
    }

    pub fn get_json(&self, url: &str) -> (u16, Value) {
        let mut r = self.http.get(url).call().expect("GET");
        let status = r.status().as_u16();
        (status, r.body_mut().read_json().unwrap_or(Value::Null))
    }

    /// Everything the backend stored about a consent id.
    pub fn visitor(&self, id: &str) -> Value {
        let (status, v) = self.get_json(&format!("{}/api/visitor/{id}", self.api));
        assert_eq!(status, 200, "GET /api/visitor/{id}: {v}");
        v
    }

    /// The consent records of `id`, oldest first.
    pub fn consents(&self, id: &str) -> Vec<Value> {
        self.visitor(id)["consents"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The stored events of `id`, oldest first.
    pub fn events(&self, id: &str) -> Vec<Value> {
        self.visitor(id)["events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls the stored events of `id` until `pred` holds for one of them.
    pub fn wait_event(&self, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.events(id);
            if let Some(e) = events.iter().find(|e| pred(e)) {
                return e.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no stored event {what} for {id}; stored: {events:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls the consent records of `id` until there are at least `n`.
    pub fn wait_consents(&self, id: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let c = self.consents(id);
            if c.len() >= n {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} consent records for {id}, got {c:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The script as currently served.
    pub fn script(&self) -> String {
        let mut r = self
            .http
            .get(format!("{}/s/demo/assent.js", self.api))
            .call()
            .expect("GET script");
        r.body_mut().read_to_string().unwrap_or_default()
    }

    /// Polls the served script until it contains `needle`.
    pub fn wait_script(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.script().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "served script never contained {needle}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Changes the demo site's settings: `stub` edits the config JSON the stub
    /// serves, `real` edits the TOML of `assent site show demo`, which is then
    /// applied with `assent site update demo --file F [--bump-revision]`.
    pub fn update_site(
        &self,
        bump: bool,
        stub: impl FnOnce(&mut Value),
        real: impl FnOnce(&mut toml::Table),
    ) {
        if let Some(s) = &self.stub {
            let mut s = s.lock().unwrap();
            stub(&mut s.config);
            if bump {
                let r = s.config["revision"].as_u64().unwrap();
                s.config["revision"] = json!(r + 1);
            }
            return;
        }
        let server = self.server.as_ref().unwrap();
        let mut table: toml::Table = server
            .cli(&["site", "show", "demo"])
            .parse()
            .expect("site show prints TOML");
        real(&mut table);
        let file = server.data_dir.path().join("site-edit.toml");
        std::fs::write(&file, toml::to_string(&table).unwrap()).unwrap();
        let file = file.to_string_lossy().into_owned();
        let mut args = vec!["site", "update", "demo", "--file", file.as_str()];
        if bump {
            args.push("--bump-revision");
        }
        server.cli(&args);
    }

    pub fn revision(&self) -> u64 {
        let s = self.script();
        let i = s
            .find("\"revision\":")
            .expect("revision in the served script");
        s[i + 11..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap()
    }

    /// Bumps the site's policy revision and waits until the script serves it.
    pub fn bump_revision(&self) {
        let next = self.revision() + 1;
        self.update_site(true, |_| {}, |_| {});
        self.wait_script(&format!("\"revision\":{next}"));
    }
}
