//! Against the real server binary: the admin login printed on the first run, and consent ids kept out of
//! the log.

use super::*;

/// A `Set-Cookie` header's value for a cookie, from a real server's answer.
fn set_cookie_value(res: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap_or("").to_string())
}

/// The real server: the admin login it prints on its first run opens the dashboard, where the demo site
/// waits for its first event.
#[test]
fn the_printed_admin_login_opens_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]);
    let out = String::from_utf8_lossy(&server.stdout.lock().unwrap()).into_owned();
    let line = out
        .lines()
        .find(|l| l.starts_with("Created the admin login"))
        .unwrap_or_else(|| panic!("no admin login printed: {out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let email = words[4];
    let password = words[7];
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut form = agent.get(format!("{}/login", server.url)).call().unwrap();
    let nonce = set_cookie_value(&form, "assent_login").unwrap();
    assert!(form.body_mut().read_to_string().unwrap().contains(&nonce));
    let res = agent
        .post(format!("{}/login", server.url))
        .header("cookie", format!("assent_login={nonce}"))
        .send_form([("email", email), ("password", password), ("csrf", &nonce)])
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let session = set_cookie_value(&res, "assent_session").unwrap();
    let mut home = agent
        .get(format!("{}/", server.url))
        .header("cookie", format!("assent_session={session}"))
        .call()
        .unwrap();
    assert_eq!(home.status().as_u16(), 200);
    assert!(
        home.body_mut()
            .read_to_string()
            .unwrap()
            .contains("/sites/demo?")
    );
    let mut demo = agent
        .get(format!("{}/sites/demo", server.url))
        .header("cookie", format!("assent_session={session}"))
        .call()
        .unwrap();
    let body = demo.body_mut().read_to_string().unwrap();
    assert!(body.contains("Waiting for the first event"), "{body}");
}

/// The real server with debug logs: a consent id searched in the consent log appears in no log line
/// (the request log writes route patterns, not paths or query strings).
#[test]
fn the_consent_log_never_writes_a_consent_id_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut db = assent::storage::Database::open(&dir.path().join("assent.db")).unwrap();
        assent::commands::site::add(&mut db, "demo", vec!["localhost".into()], None).unwrap();
        db.add_user(ADMIN.0, ADMIN.1, true, 1).unwrap();
    }
    let server = Server::start(dir.path(), &[], &[("RUST_LOG", "debug")]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let form = agent.get(format!("{}/login", server.url)).call().unwrap();
    let nonce = set_cookie_value(&form, "assent_login").unwrap();
    let res = agent
        .post(format!("{}/login", server.url))
        .header("cookie", format!("assent_login={nonce}"))
        .send_form([("email", ADMIN.0), ("password", ADMIN.1), ("csrf", &nonce)])
        .unwrap();
    let session = set_cookie_value(&res, "assent_session").unwrap();
    let id = "0123456789abcdef0123456789abcdef";
    for path in [
        format!("/sites/demo/consents?id={id}"),
        format!("/sites/demo/consents.csv?id={id}"),
        format!("/sites/demo/consents?id={id}&page=abc"),
    ] {
        let res = agent
            .get(format!("{}{path}", server.url))
            .header("cookie", format!("assent_session={session}"))
            .call()
            .unwrap();
        assert!(res.status().as_u16() < 500, "{path}");
    }
    let out = || {
        format!(
            "{}{}",
            server.stderr_text(),
            String::from_utf8_lossy(&server.stdout.lock().unwrap())
        )
    };
    // The request lines are written (debug), by route.
    wait_for(10, || {
        out().contains("/sites/{site}/consents.csv").then_some(())
    });
    let log = out();
    assert!(log.contains("/sites/{site}/consents"), "{log}");
    assert!(!log.contains(id), "a consent id in the log:\n{log}");
    assert!(!log.contains(&id[..16]));
}
