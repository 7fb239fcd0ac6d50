//! A minimal W3C WebDriver client for chromedriver + headless Chromium.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// A normal desktop Chrome: the server drops `HeadlessChrome` as a bot.
pub const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub mod keys {
    pub const TAB: &str = "\u{E004}";
    pub const ENTER: &str = "\u{E007}";
    pub const SHIFT: &str = "\u{E008}";
    pub const ESCAPE: &str = "\u{E00C}";
    pub const SPACE: &str = "\u{E00D}";
}

/// Whether Chromium and chromedriver are installed. When they are not, a
/// browser test prints a SKIPPED line and returns, unless
/// `ASSENT_REQUIRE_BROWSER=1`, in which case it fails.
pub fn browser_available(test: &str) -> bool {
    let found =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !found {
        if std::env::var("ASSENT_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
            panic!("{test}: chromium/chromedriver not found and ASSENT_REQUIRE_BROWSER=1");
        }
        println!("SKIPPED {test}: chromium/chromedriver not found ({CHROMIUM}, {CHROMEDRIVER})");
    }
    found
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// A chromedriver process with one browser session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

pub struct Options {
    pub dark: bool,
    pub gpc: bool,
    /// Send `Sec-GPC: 1` with every request, as a browser with GPC on does, without the JS property.
    pub sec_gpc_header: bool,
    pub width: u32,
    pub height: u32,
    pub languages: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dark: false,
            gpc: false,
            sec_gpc_header: false,
            width: 1280,
            height: 800,
            languages: "en-US,en",
        }
    }
}

impl Browser {
    pub fn start(opts: Options) -> Browser {
        let port = free_port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let agent = agent();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = agent
                .get(format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            if let Ok(Some(status)) = driver.try_wait() {
                panic!("chromedriver exited: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready after 20 s"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        let profile = tempfile::tempdir().expect("temp profile dir");
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--user-agent={USER_AGENT}"),
            format!("--window-size={},{}", opts.width, opts.height),
            format!(
                "--lang={}",
                opts.languages.split(',').next().unwrap_or("en-US")
            ),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": {"intl.accept_languages": opts.languages},
            },
        }}});
        let mut resp = agent
            .post(format!("{base}/session"))
            .send_json(&caps)
            .expect("new session");
        let v: Value = resp.body_mut().read_json().expect("session json");
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        let b = Browser {
            driver,
            base,
            session,
            agent,
            _profile: profile,
        };
        b.cdp("Network.enable", json!({}));
        if opts.sec_gpc_header {
            b.cdp(
                "Network.setExtraHTTPHeaders",
                json!({"headers": {"Sec-GPC": "1"}}),
            );
        }
        if opts.dark {
            b.cdp(
                "Emulation.setEmulatedMedia",
                json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
            );
        }
        // Record every request the page's scripts make, to prove that nothing
        // is sent before a choice.
        let mut init = String::from(
            "window.__net=[];(function(){var f=window.fetch,b=navigator.sendBeacon;\
             window.fetch=function(u,o){window.__net.push({kind:'fetch',url:String(u&&u.url||u),body:o&&o.body||null});return f.apply(this,arguments);};\
             navigator.sendBeacon=function(u,d){window.__net.push({kind:'beacon',url:String(u),body:d||null});return b.apply(navigator,arguments);};})();",
        );
        if opts.gpc {
            init.push_str("Object.defineProperty(Navigator.prototype,'globalPrivacyControl',{get:function(){return true;},configurable:true});");
        }
        b.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": init}),
        );
        b
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{}", self.base, self.session, path)
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let mut r = self
            .agent
            .post(self.url(path))
            .send_json(&body)
            .expect("webdriver request");
        let status = r.status();
        let v: Value = r.body_mut().read_json().expect("webdriver json");
        assert!(status.is_success(), "POST {path} {body}: {status} {v}");
        v["value"].clone()
    }

    fn get(&self, path: &str) -> Value {
        let mut r = self
            .agent
            .get(self.url(path))
            .call()
            .expect("webdriver request");
        let status = r.status();
        let v: Value = r
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_json()
            .expect("webdriver json");
        assert!(status.is_success(), "GET {path}: {status} {v}");
        v["value"].clone()
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.post("/goog/cdp/execute", json!({"cmd": cmd, "params": params}))
    }

    pub fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url }));
    }

    /// Navigates with a given referrer (as if arriving from a search engine).
    pub fn goto_from(&self, url: &str, referrer: &str) {
        self.cdp("Page.navigate", json!({"url": url, "referrer": referrer}));
        self.wait(
            "document.readyState=='complete'&&location.href==arguments[0]",
            &[json!(url)],
        );
    }

    /// Runs `script` (a function body: use `return`) in the page.
    pub fn js(&self, script: &str, args: &[Value]) -> Value {
        self.post("/execute/sync", json!({"script": script, "args": args}))
    }

    pub fn eval(&self, expr: &str) -> Value {
        self.js(&format!("return ({expr});"), &[])
    }

    /// Runs `script`, whose last argument is a callback taking the result.
    pub fn js_async(&self, script: &str, args: &[Value]) -> Value {
        self.post("/execute/async", json!({"script": script, "args": args}))
    }

    /// Polls the expression `cond` (arguments available) until it is truthy.
    pub fn wait(&self, cond: &str, args: &[Value]) -> Value {
        self.wait_for(cond, args, Duration::from_secs(10))
    }

    pub fn wait_for(&self, cond: &str, args: &[Value], timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let script = format!("return ({cond});");
        loop {
            let r = self
                .agent
                .post(self.url("/execute/sync"))
                .send_json(json!({"script": script, "args": args}));
            if let Ok(mut r) = r {
                let ok = r.status().is_success();
                if let Ok(v) = r.body_mut().read_json::<Value>() {
                    let v = v["value"].clone();
                    let truthy = ok
                        && !(v.is_null()
                            || v == false
                            || v == 0
                            || v == ""
                            || v.as_array().is_some_and(|a| a.is_empty()));
                    if truthy {
                        return v;
                    }
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for `{cond}`; page state: {}",
                    self.debug_state()
                );
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    pub fn debug_state(&self) -> String {
        let r = self.agent.post(self.url("/execute/sync")).send_json(json!({"script":
            "return {url:location.href,cookie:document.cookie,net:window.__net,consent:window.assent&&assent.consent(),\
             active:document.activeElement&&document.activeElement.outerHTML.slice(0,120),\
             assent:(document.querySelector('.assent')||{}).outerHTML};", "args": []}));
        match r {
            Ok(mut r) => r.body_mut().read_to_string().unwrap_or_default(),
            Err(e) => e.to_string(),
        }
    }

    pub fn find(&self, css: &str) -> String {
        let v = self.post("/element", json!({"using": "css selector", "value": css}));
        v[ELEMENT_KEY].as_str().expect("element id").to_string()
    }

    /// Clicks the element matching `css` like a user (WebDriver element click).
    pub fn click(&self, css: &str) {
        self.wait("document.querySelector(arguments[0])", &[json!(css)]);
        let id = self.find(css);
        self.post(&format!("/element/{id}/click"), json!({}));
    }

    /// Presses keys one after the other (WebDriver key actions).
    pub fn keys(&self, seq: &[&str]) {
        let mut actions = Vec::new();
        for k in seq {
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        );
    }

    /// Shift+Tab.
    pub fn shift_tab(&self) {
        let a = json!([
            {"type": "keyDown", "value": keys::SHIFT},
            {"type": "keyDown", "value": keys::TAB},
            {"type": "keyUp", "value": keys::TAB},
            {"type": "keyUp", "value": keys::SHIFT},
        ]);
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": a}]}),
        );
    }

    /// A description of the focused element: id, else class, plus its text.
    pub fn focused(&self) -> String {
        self.eval(
            "(function(e){return e?(e.id||e.className||e.tagName)+'|'+(e.textContent||e.getAttribute('aria-label')||''):'none';})(document.activeElement)",
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub fn screenshot(&self, path: &std::path::Path) {
        let v = self.get("/screenshot");
        let png = base64_decode(v.as_str().expect("base64 screenshot"));
        std::fs::write(path, png).expect("write screenshot");
    }

    pub fn cookies(&self) -> Vec<Value> {
        self.get("/cookie").as_array().cloned().unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(self.url("")).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(name)
}

// ---- additions for the dashboard tests (tests/dashboard_browser.rs)

impl Browser {
    /// Types `text` into the element matching `css` (WebDriver element send keys), as a user would.
    pub fn type_into(&self, css: &str, text: &str) {
        self.wait("document.querySelector(arguments[0])", &[json!(css)]);
        let id = self.find(css);
        self.post(&format!("/element/{id}/clear"), json!({}));
        self.post(&format!("/element/{id}/value"), json!({ "text": text }));
    }

    /// The value of a cookie of the current page's site (HttpOnly ones included), if set.
    pub fn cookie_value(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["value"].as_str().map(String::from))
    }
}
