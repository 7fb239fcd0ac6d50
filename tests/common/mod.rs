//! Test helpers: a temporary data directory, the app built in-process, a real server as a child process,
//! and seeded consents. No fixed ports (port 0), no files in the working directory, no sleeps for readiness.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::test;
use actix_web::web;
use assent::settings::{FlagSettings, Settings};
use assent::state::AppState;
use serde_json::{Value, json};

pub mod engine;
pub mod page;
pub mod prometheus;

pub const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_assent")
}

/// Settings for a temp data directory, with extra environment-style overrides.
pub fn settings(dir: &Path, env: &[(&str, &str)]) -> Settings {
    let mut map: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.insert("ASSENT_DATA_DIR".into(), dir.display().to_string());
    Settings::load(None, &map, &FlagSettings::default()).expect("test settings are valid")
}

/// Runs the CLI against a data directory; returns (success, stdout, stderr).
pub fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run assent");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An in-process app over a fresh data directory holding the demo site (created through the CLI code).
pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub state: Arc<AppState>,
    /// The scratch database when the suite runs on PostgreSQL (see [`engine`]).
    pub pg: Option<assent::storage::postgres::ScratchDatabase>,
}

impl TestApp {
    pub fn new() -> TestApp {
        Self::with_env(&[])
    }

    pub fn with_env(env: &[(&str, &str)]) -> TestApp {
        Self::build(env, |_| {})
    }

    /// The demo and "other" sites, whatever `setup` adds to the database, then the app.
    pub fn build(
        env: &[(&str, &str)],
        setup: impl FnOnce(&mut assent::storage::Database) + Send,
    ) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = engine::scratch_database();
        let mut env: Vec<(&str, &str)> = env.to_vec();
        let engine_env = engine::engine_env(&pg);
        env.extend(engine_env.iter().map(|(k, v)| (*k, v.as_str())));
        let s = settings(dir.path(), &env);
        assent::storage::sql::off_runtime(|| {
            let mut db = assent::storage::Database::connect(&s.location()).expect("db");
            assent::commands::site::add(
                &mut db,
                "demo",
                vec!["localhost".into(), "127.0.0.1".into()],
                None,
            )
            .expect("demo site");
            assent::commands::site::add(&mut db, "other", vec!["other.example".into()], None)
                .expect("other site");
            setup(&mut db);
        });
        let (state, _writer) = AppState::open(s).expect("state");
        TestApp { dir, state, pg }
    }

    pub fn data(&self) -> web::Data<AppState> {
        web::Data::from(self.state.clone())
    }

    /// The SQLite file itself (tests of SQLite's own behaviour).
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.state.settings.db_path()).expect("open db")
    }

    /// A connection to the store, whichever its engine (PostgreSQL's only where no runtime runs: see
    /// [`TestApp::with_sql`]).
    pub fn sql(&self) -> assent::storage::engine::Owned {
        engine::open(&self.state.settings.location())
    }

    /// Runs `f` on a connection to the store, off the test's runtime.
    pub fn with_sql<T: Send>(
        &self,
        f: impl FnOnce(&mut assent::storage::sql::Conn) -> T + Send,
    ) -> T {
        assent::storage::sql::off_runtime(|| f(&mut self.sql().conn()))
    }

    /// Runs `f` on the store as a command would (another process), whichever its engine, off the test's
    /// runtime (the PostgreSQL client blocks).
    pub fn with_database<T: Send>(
        &self,
        f: impl FnOnce(&mut assent::storage::Database) -> T + Send,
    ) -> T {
        let location = self.state.settings.location();
        assent::storage::sql::off_runtime(|| {
            f(&mut assent::storage::Database::connect(&location).expect("open the store"))
        })
    }

    pub fn count(&self, table: &str) -> i64 {
        self.with_sql(|c| c.value(&format!("SELECT COUNT(*) FROM {table}"), &[]))
            .expect("count")
    }
}

/// A page view or event from Firefox on a Linux desktop, with no referrer, campaign, country or
/// properties: for tests where only the site, the time, the name and the page matter.
pub fn plain_event(site: &str, ts: i64, name: &str, path: &str) -> assent::domain::event::NewEvent {
    assent::domain::event::NewEvent {
        site: site.into(),
        ts,
        name: name.into(),
        path: path.into(),
        referrer: None,
        source: None,
        utm_source: None,
        utm_medium: None,
        utm_campaign: None,
        utm_content: None,
        utm_term: None,
        country: None,
        browser: "Firefox".into(),
        os: "Linux".into(),
        device: "Desktop".into(),
        screen: "Desktop".into(),
        props: None,
        prop_pairs: Vec::new(),
        engaged_ms: None,
    }
}

pub async fn service(
    app: &TestApp,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl actix_web::body::MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(assent::app(app.data())).await
}

/// Sends a request and returns (status, JSON body or Null).
pub async fn call<S, B>(svc: &S, req: test::TestRequest) -> (u16, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(svc, req.to_request()).await;
    let status = res.status().as_u16();
    let body = test::read_body(res).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

pub fn post_json(path: &str, body: &Value) -> test::TestRequest {
    test::TestRequest::post()
        .uri(path)
        .insert_header(("content-type", "application/json"))
        .insert_header(("user-agent", UA))
        .peer_addr("192.0.2.10:5000".parse().unwrap())
        .set_payload(body.to_string())
}

pub async fn consent<S, B>(svc: &S, site: &str, action: &str, choices: Value) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let (status, body) = call(
        svc,
        post_json(
            "/api/consent",
            &json!({"site": site, "revision": 1, "action": action, "choices": choices}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["consent_id"].as_str().expect("consent id").to_string()
}

pub fn event_body(site: &str, id: &str, name: &str, url: &str) -> Value {
    json!({"site": site, "consent_id": id, "name": name, "url": url, "screen_width": 1440})
}

/// A real server in a child process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<Vec<u8>>>,
    pub stdout: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    /// Starts `assent serve` on port 0 and waits for its "listening on" line.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(bin());
        cmd.arg("--data-dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .arg("serve");
        cmd.env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let out_pipe = child.stdout.take().expect("stdout");
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                sink.lock()
                    .unwrap()
                    .extend_from_slice(format!("{line}\n").as_bytes());
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start: {}",
                    String::from_utf8_lossy(&stderr.lock().unwrap())
                );
            }
        };
        let addr = url.trim_start_matches("http://").parse().expect("addr");
        Server {
            child,
            url,
            addr,
            stderr,
            stdout,
        }
    }

    pub fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    }

    pub fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = Self::agent()
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match req.send(body.to_string()) {
            Ok(mut res) => {
                let status = res.status().as_u16();
                (status, res.body_mut().read_json().unwrap_or(Value::Null))
            }
            Err(e) => (0, json!({"transport": e.to_string()})),
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        match Self::agent().get(format!("{}{path}", self.url)).call() {
            Ok(mut res) => (
                res.status().as_u16(),
                res.body_mut().read_to_string().unwrap_or_default(),
            ),
            Err(e) => (0, e.to_string()),
        }
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns Some, for at most `secs` seconds.
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {secs}s"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Every byte of the database, its WAL and shared memory file.
pub fn db_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["assent.db", "assent.db-wal", "assent.db-shm"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            all.extend_from_slice(&b);
        }
    }
    all
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// POSTs a JSON body from a browser-like client and returns (status, JSON body).
pub async fn post<S, B>(svc: &S, path: &str, body: &Value) -> (u16, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    call(svc, post_json(path, body)).await
}

/// A consent record of `site` at its current policy, made now and kept 13 months, as the banner's
/// `action` with `choices` would store it (no language, no page).
pub fn consent_record(
    app: &TestApp,
    site: &str,
    id: u128,
    action: assent::domain::consent::Action,
    choices: &[(&str, bool)],
) -> assent::domain::consent::ConsentRecord {
    let now = time::OffsetDateTime::now_utc();
    let entry = app.state.sites.get(site).expect("a site of the app");
    assent::domain::consent::ConsentRecord {
        consent_id: assent::domain::consent::ConsentId(id),
        site: site.into(),
        created_at: now,
        revision: entry.revision,
        policy_hash: entry.policy_hash.clone(),
        choices: choices.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        action,
        language: None,
        page_path: None,
        expires_at: assent::domain::consent::add_months(now, 13),
    }
}
