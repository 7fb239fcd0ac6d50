//! Headless Chromium through chromedriver for the browser tests: the WebDriver protocol is fantoccini's;
//! this module starts the driver and the browser, and gives the tests a small synchronous API.
#![allow(dead_code)]

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use http::Method;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// A normal desktop Chrome: the server drops `HeadlessChrome` as a bot.
pub const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

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

/// A chromedriver process with one browser session, driven through `fantoccini` (a W3C WebDriver client)
/// on a runtime of its own, so that the tests stay plain synchronous functions.
pub struct Browser {
    driver: Child,
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    _scratch: tempfile::TempDir,
}

/// A command fantoccini has no method for (chromedriver's CDP endpoint, the raw cookie list, key
/// actions as the spec's JSON), sent through its session.
#[derive(Debug)]
struct Raw {
    method: Method,
    /// Below `/session/{id}/`.
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for Raw {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/{}",
            session.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
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
        // Everything the browser writes: its profile, and its temporary files (Chromium leaves empty
        // `org.chromium.Chromium.scoped_dir.*` directories in TMPDIR), removed with this directory.
        let scratch = tempfile::tempdir().expect("temp dir for the browser");
        let (profile, temp) = (scratch.path().join("profile"), scratch.path().join("tmp"));
        std::fs::create_dir(&temp).expect("browser's temp dir");
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .env("TMPDIR", &temp)
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
            format!("--user-data-dir={}", profile.display()),
            format!("--user-agent={USER_AGENT}"),
            format!("--window-size={},{}", opts.width, opts.height),
            format!(
                "--lang={}",
                opts.languages.split(',').next().unwrap_or("en-US")
            ),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                "prefs": {"intl.accept_languages": opts.languages},
            },
        });
        let caps = caps.as_object().cloned().expect("capabilities object");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let client = runtime
            .block_on(
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps)
                    .connect(&base),
            )
            .expect("new session");
        let b = Browser {
            driver,
            runtime,
            client: Some(client),
            _scratch: scratch,
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

    fn client(&self) -> &Client {
        // Only Drop takes the client.
        self.client.as_ref().expect("the session is open")
    }

    fn raw(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let cmd = Raw {
            method,
            path: path.to_string(),
            body: body.clone(),
        };
        self.runtime
            .block_on(self.client().issue_cmd(cmd))
            .unwrap_or_else(|e| panic!("{path} {body:?}: {e}"))
    }

    /// A Chrome DevTools Protocol command through chromedriver.
    pub fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.raw(
            Method::POST,
            "goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
    }

    pub fn goto(&self, url: &str) {
        self.runtime
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
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
        self.try_js(script, args)
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    fn try_js(&self, script: &str, args: &[Value]) -> Result<Value, fantoccini::error::CmdError> {
        self.runtime
            .block_on(self.client().execute(script, args.to_vec()))
    }

    pub fn eval(&self, expr: &str) -> Value {
        self.js(&format!("return ({expr});"), &[])
    }

    /// Runs `script`, whose last argument is a callback taking the result.
    pub fn js_async(&self, script: &str, args: &[Value]) -> Value {
        self.runtime
            .block_on(self.client().execute_async(script, args.to_vec()))
            .unwrap_or_else(|e| panic!("async script {script}: {e}"))
    }

    /// Polls the expression `cond` (arguments available) until it is truthy.
    pub fn wait(&self, cond: &str, args: &[Value]) -> Value {
        self.wait_for(cond, args, Duration::from_secs(10))
    }

    pub fn wait_for(&self, cond: &str, args: &[Value], timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        let script = format!("return ({cond});");
        loop {
            // An error (a navigation under way) is retried like a falsy answer.
            if let Ok(v) = self.try_js(&script, args) {
                let truthy = !(v.is_null()
                    || v == false
                    || v == 0
                    || v == ""
                    || v.as_array().is_some_and(|a| a.is_empty()));
                if truthy {
                    return v;
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
        let state = self.try_js(
            "return {url:location.href,cookie:document.cookie,net:window.__net,consent:window.assent&&assent.consent(),\
             active:document.activeElement&&document.activeElement.outerHTML.slice(0,120),\
             assent:(document.querySelector('.assent')||{}).outerHTML};",
            &[],
        );
        match state {
            Ok(v) => v.to_string(),
            Err(e) => e.to_string(),
        }
    }

    fn find(&self, css: &str) -> Element {
        self.runtime
            .block_on(self.client().find(Locator::Css(css)))
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
    }

    /// Clicks the element matching `css` like a user (WebDriver element click).
    pub fn click(&self, css: &str) {
        self.wait("document.querySelector(arguments[0])", &[json!(css)]);
        let element = self.find(css);
        self.runtime
            .block_on(element.click())
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Presses keys one after the other (WebDriver key actions).
    pub fn keys(&self, seq: &[&str]) {
        let mut actions = Vec::new();
        for k in seq {
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        self.key_actions(actions);
    }

    fn key_actions(&self, actions: Vec<Value>) {
        self.raw(
            Method::POST,
            "actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
    }

    /// Shift+Tab.
    pub fn shift_tab(&self) {
        self.key_actions(vec![
            json!({"type": "keyDown", "value": keys::SHIFT}),
            json!({"type": "keyDown", "value": keys::TAB}),
            json!({"type": "keyUp", "value": keys::TAB}),
            json!({"type": "keyUp", "value": keys::SHIFT}),
        ]);
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
        let png = self
            .runtime
            .block_on(self.client().screenshot())
            .expect("screenshot");
        std::fs::write(path, png).expect("write screenshot");
    }

    /// The cookies of the current page's site as chromedriver reports them (JSON objects with
    /// `name`, `value`, `path`, `sameSite`, `expiry`...).
    pub fn cookies(&self) -> Vec<Value> {
        self.raw(Method::GET, "cookie", None)
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(name)
}

// ---- additions for the dashboard tests (tests/dashboard_browser.rs)

impl Browser {
    /// Types `text` into the element matching `css` (WebDriver element send keys), as a user would.
    pub fn type_into(&self, css: &str, text: &str) {
        self.wait("document.querySelector(arguments[0])", &[json!(css)]);
        let element = self.find(css);
        self.runtime
            .block_on(async {
                element.clear().await?;
                element.send_keys(text).await
            })
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// The value of a cookie of the current page's site (HttpOnly ones included), if set.
    pub fn cookie_value(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["value"].as_str().map(String::from))
    }
}
