//! Every dashboard form, filter and path taken literally, with the session helpers they need.

use super::*;
use common::page::{self, Got};

async fn send<S, B>(svc: &S, req: TestRequest) -> Got
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    send_from(svc, req, "192.0.2.10").await
}

/// [`send`] from a chosen address (logins are limited per network).
async fn send_from<S, B>(svc: &S, req: TestRequest, peer: &str) -> Got
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let peer = format!("{peer}:5000").parse().unwrap();
    page::send(svc, req.peer_addr(peer)).await
}

fn form(path: &str, cookie: &str, fields: &[(&str, &str)]) -> TestRequest {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        body.append_pair(k, v);
    }
    TestRequest::post()
        .uri(path)
        .insert_header(("content-type", "application/x-www-form-urlencoded"))
        .insert_header(("cookie", cookie.to_string()))
        .set_payload(body.finish())
}

/// A dashboard page with the session's cookie.
async fn open<S, B>(svc: &S, session: &str, path: &str) -> Got
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    send(
        svc,
        TestRequest::get()
            .uri(path)
            .insert_header(("cookie", session.to_string())),
    )
    .await
}

async fn try_login<S, B>(svc: &S, email: &str, password: &str, peer: &str) -> Got
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let page = send_from(svc, TestRequest::get().uri("/login"), peer).await;
    let nonce = page.cookie("assent_login").expect("login cookie");
    let fields = [
        ("email", email),
        ("password", password),
        ("csrf", nonce.as_str()),
    ];
    send_from(
        svc,
        form("/login", &format!("assent_login={nonce}"), &fields),
        peer,
    )
    .await
}

#[actix_web::test]
async fn dashboard_forms_filters_and_paths_take_text_literally() {
    let (app, key) = app().await;
    let svc = service(&app).await;
    let (_, baseline) = v2(&svc, &key, "/api/v2/query", &reference()).await;
    let mut before = snapshot(&app);

    let login = try_login(&svc, ADMIN.0, ADMIN.1, "192.0.2.10").await;
    assert_eq!(login.status, 303);
    let session = format!("assent_session={}", login.cookie("assent_session").unwrap());
    // Logging in with an injection as the address or the password: refused (each attempt from a network
    // of its own, as logins are limited per network; a password costs a slow hash, so a few suffice).
    for (n, inj) in INJECTIONS.iter().take(4).enumerate() {
        for (m, (email, password)) in [(*inj, "x"), (ADMIN.0, *inj)].into_iter().enumerate() {
            let got = try_login(&svc, email, password, &format!("198.51.{n}.{m}")).await;
            assert!(
                matches!(got.status, 400 | 401 | 429),
                "{email:?} {password:?}: {}",
                got.status
            );
            assert!(got.cookie("assent_session").is_none());
        }
    }
    let csrf = open(&svc, &session, "/settings").await.csrf();
    // The good login added a session, and nothing else was written.
    let sessions = before.iter_mut().find(|(t, _)| t == "sessions").unwrap();
    sessions.1 += 1;
    assert_eq!(snapshot(&app), before);

    for (n, inj) in INJECTIONS.iter().copied().enumerate() {
        let e = enc(inj);
        // Views, filters, searches and paths: pages or 4xx, figures of nothing for a filter on the text.
        let reads = [
            format!("/sites/demo?period={e}"),
            format!("/sites/demo?period=custom&from={e}&to={e}"),
            format!("/sites/demo?metric={e}&compare={e}"),
            format!("/sites/demo?f={e}"),
            format!("/sites/demo?f={}", enc(&format!("{inj}|is|x"))),
            format!("/sites/demo?f={}", enc(&format!("event:page|{inj}|x"))),
            format!("/sites/demo?fd=event:page&fo=is&fv={e}"),
            format!("/sites/demo/breakdown?panel={e}"),
            format!("/sites/demo/breakdown?panel=pages&q={e}&sort={e}&page={e}"),
            format!(
                "/sites/demo/breakdown?panel=pages&format=json&f={}",
                enc(&format!("event:page|is|{inj}"))
            ),
            format!(
                "/sites/demo/export?f={}",
                enc(&format!("event:page|contains|{inj}"))
            ),
            format!("/sites/demo/consents?id={e}&from={e}&to={e}&action={e}&page={e}"),
            format!("/sites/demo/consents.csv?id={e}&action={e}"),
            format!("/sites/demo/consents/revisions/{e}"),
            format!("/sites/{e}"),
            format!("/sites/{e}/settings"),
            format!("/sites/demo/realtime?period={e}"),
        ];
        for path in reads {
            let got = open(&svc, &session, &path).await;
            assert!(
                matches!(got.status, 200 | 400 | 404),
                "{path}: {}",
                got.status
            );
            assert!(!got.body.contains("database error"), "{path}");
        }
        let filtered = open(
            &svc,
            &session,
            &format!(
                "/sites/demo/breakdown?panel=pages&format=json&f={}",
                enc(&format!("event:page|is|{inj}"))
            ),
        )
        .await;
        assert_eq!(filtered.status, 200, "{}", filtered.body);
        assert!(
            !filtered.body.contains("/pricing"),
            "a filter on {inj:?} matched pages: {}",
            filtered.body
        );
        // Forms that write nothing when given the text: a user with it as the address, a site with it as
        // the id, a password change with it as the current password, removals and revocations by it.
        // (A password is hashed slowly in a debug build: the forms that hash one run for a few texts.)
        let mut refused: Vec<(String, Vec<(&str, &str)>)> = vec![
            (
                "/settings/users".into(),
                vec![
                    ("email", inj),
                    ("password", "long enough pw"),
                    ("role", "viewer"),
                ],
            ),
            (
                "/settings/users".into(),
                vec![
                    ("email", "new@example.com"),
                    ("password", "long enough pw"),
                    ("role", inj),
                    ("site", inj),
                ],
            ),
            (
                "/sites".into(),
                vec![("id", inj), ("domains", "site.example"), ("name", "x")],
            ),
            (
                "/settings/password".into(),
                vec![
                    ("current", inj),
                    ("new_password", "another long one"),
                    (
                        "confirm",
                        if n < 3 { "another long one" } else { "differs" },
                    ),
                ],
            ),
            (format!("/settings/users/{e}/remove"), vec![]),
            (format!("/settings/keys/{e}/revoke"), vec![]),
        ];
        if n >= 3 {
            refused.remove(1);
        }
        for (path, fields) in refused {
            let mut fields = fields;
            fields.push(("csrf", &csrf));
            let got = send(&svc, form(&path, &session, &fields)).await;
            if path == "/settings/users" && got.status == 303 {
                // An address may be valid with quotes in it; then it is stored exactly as given.
                let email = fields[0].1.trim().to_ascii_lowercase();
                let stored: i64 = app
                    .with_sql(|c| {
                        c.value(
                            "SELECT COUNT(*) FROM users WHERE email = ?1 AND is_admin = 0",
                            assent::args![email.as_str()],
                        )
                    })
                    .unwrap();
                assert_eq!(stored, 1, "{email:?}");
                app.with_sql(|c| {
                    c.execute(
                        "DELETE FROM users WHERE email = ?1",
                        assent::args![email.as_str()],
                    )?;
                    c.execute(
                        "DELETE FROM user_sites WHERE user_id NOT IN (SELECT id FROM users)",
                        &[],
                    )
                })
                .unwrap();
                continue;
            }
            assert!(
                matches!(got.status, 400 | 403 | 404 | 405 | 409 | 429),
                "{path} {inj:?}: {} {}",
                got.status,
                got.body
            );
            if let Some(to) = got.location() {
                assert!(!to.contains(['\r', '\n']), "{to:?}");
            }
        }
        assert_eq!(snapshot(&app), before, "after {inj:?}");
    }

    // Forms that store text: the text is stored as written, and shown escaped.
    for (n, inj) in INJECTIONS.iter().enumerate() {
        let got = send(
            &svc,
            form(
                "/settings/keys",
                &session,
                &[("name", inj), ("csrf", &csrf)],
            ),
        )
        .await;
        assert_eq!(got.status, 200, "key {inj:?}");
        let stored: i64 = app
            .with_sql(|c| {
                c.value(
                    "SELECT COUNT(*) FROM api_keys WHERE name = ?1",
                    assent::args![*inj],
                )
            })
            .unwrap();
        assert_eq!(stored, 1, "key {inj:?}");
        let id = format!("lit-{n}");
        let got = send(
            &svc,
            form(
                "/sites",
                &session,
                &[
                    ("id", &id),
                    ("domains", "lit.example"),
                    ("name", inj),
                    ("csrf", &csrf),
                ],
            ),
        )
        .await;
        assert_eq!(got.status, 303, "site named {inj:?}: {}", got.body);
        assert_eq!(
            got.location(),
            Some(format!("/sites/{id}/settings?done=added").as_str())
        );
        assert_eq!(app.state.sites.get(&id).unwrap().config.name, *inj);
        let shown = open(&svc, &session, &format!("/sites/{id}/settings")).await;
        assert_eq!(shown.status, 200);
        assert!(
            !shown.body.contains(inj) || !inj.contains(['<', '>', '"', '\'']),
            "unescaped {inj:?}"
        );
    }
    // The site settings form: the text as the name is saved as written; as the time zone, a domain or a
    // language it is refused beside its field.
    let categories = toml::to_string(&json!({
        "categories": assent::domain::site::SiteConfig::new_default("x", vec![]).categories
    }))
    .unwrap();
    // The languages a new site offers: the form keeps them, so the policy (and its revision) stays.
    let languages = assent::domain::i18n::SHIPPED.join(" ");
    for (n, inj) in INJECTIONS.iter().enumerate() {
        let path = format!("/sites/lit-{n}/settings");
        let csrf = open(&svc, &session, &path).await.csrf();
        let fields = |k: &str, v: &str| {
            let mut f = vec![
                ("name", "Lit"),
                ("domains", "lit.example"),
                ("timezone", "UTC"),
                ("languages", &languages),
                ("default_language", "en"),
                ("privacy_url", ""),
                ("categories", categories.as_str()),
                ("texts", ""),
                ("csrf", csrf.as_str()),
            ];
            f.retain(|(x, _)| *x != k);
            f.push((k, v));
            f.into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        for field in [
            "timezone",
            "domains",
            "languages",
            "default_language",
            "privacy_url",
        ] {
            let f = fields(field, inj);
            let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let got = send(&svc, form(&path, &session, &refs)).await;
            assert_eq!(got.status, 400, "{field} {inj:?}");
        }
        let f = fields("name", inj);
        let refs: Vec<(&str, &str)> = f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let got = send(&svc, form(&path, &session, &refs)).await;
        assert_eq!(got.status, 303, "name {inj:?}: {}", got.body);
        let entry = app.state.sites.get(&format!("lit-{n}")).unwrap();
        assert_eq!((entry.config.name.as_str(), entry.revision), (*inj, 1));
    }
    let keys = before.iter_mut().find(|(t, _)| t == "api_keys").unwrap();
    keys.1 += INJECTIONS.len() as i64;
    let sites = before.iter_mut().find(|(t, _)| t == "sites").unwrap();
    sites.1 += INJECTIONS.len() as i64;
    let revisions = before
        .iter_mut()
        .find(|(t, _)| t == "site_revisions")
        .unwrap();
    revisions.1 += INJECTIONS.len() as i64;
    assert_eq!(snapshot(&app), before);
    let (s, after) = v2(&svc, &key, "/api/v2/query", &reference()).await;
    assert_eq!((s, &after["results"]), (200, &baseline["results"]));
}
