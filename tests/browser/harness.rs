//! Test environment for the browser tests: a tiny static web server for the
//! test pages (on `localhost`), and the Assent backend (on `127.0.0.1`):
//! the real server binary, with a fresh data directory per test.
#![allow(dead_code)]

use serde_json::Value;
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
    server: Server,
    http: ureq::Agent,
}

impl Env {
    pub fn new() -> Env {
        let http = crate::webdriver::agent();
        let server = Server::start();
        let api = server.url.clone();
        Env {
            web: Web::start(None),
            api,
            server,
            http,
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

    /// Changes the demo site's settings: `edit` changes the TOML of `assent site show demo`, which is
    /// then applied with `assent site update demo --file F [--bump-revision]`.
    pub fn update_site(&self, bump: bool, edit: impl FnOnce(&mut toml::Table)) {
        let server = &self.server;
        let mut table: toml::Table = server
            .cli(&["site", "show", "demo"])
            .parse()
            .expect("site show prints TOML");
        edit(&mut table);
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
        self.update_site(true, |_| {});
        self.wait_script(&format!("\"revision\":{next}"));
    }
}
