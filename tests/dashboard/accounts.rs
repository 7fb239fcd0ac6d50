//! Logins (success, failure, limits, CSRF, cookie flags, logout, password change), users, API keys and
//! who sees which site.

use super::*;

#[actix_web::test]
async fn login_succeeds_fails_and_sets_a_safe_cookie() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    assert_eq!(
        send(&svc, get("/", None)).await.header("location"),
        Some("/login")
    );
    let wrong = try_login(&svc, ADMIN.0, "not the password").await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Wrong e-mail address or password"));
    assert!(wrong.cookie("assent_session").is_none());
    let ok = try_login(&svc, ADMIN.0, ADMIN.1).await;
    assert_eq!(ok.status, 303);
    let set = ok
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("assent_session="))
        .unwrap()
        .to_string();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    let token = ok.cookie("assent_session").unwrap();
    // Only a digest of the token is stored.
    let stored: String = app
        .with_sql(|c| c.value("SELECT token_hash FROM sessions", &[]))
        .unwrap();
    assert_ne!(stored, token);
    let home = send(&svc, get("/", Some(&token))).await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains(ADMIN.0));
    // Each login gets a new token.
    assert_ne!(login(&svc, ADMIN).await, token);

    let (https, _) = app_with(&[("ASSENT_PUBLIC_URL", "https://stats.example")]).await;
    let svc = service(&https).await;
    let ok = try_login(&svc, ADMIN.0, ADMIN.1).await;
    let set = ok
        .cookies()
        .into_iter()
        .find(|c| c.starts_with("assent_session="))
        .unwrap()
        .to_string();
    assert!(set.contains("; Secure"), "{set}");
}

#[actix_web::test]
async fn login_attempts_are_limited_with_a_clear_message() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..7 {
        let got = try_login(&svc, VIEWER.0, "guessing wrong").await;
        statuses.push(got.status);
        last = Some(got);
    }
    assert_eq!(&statuses[..5], [401; 5]);
    assert_eq!(statuses[6], 429);
    assert!(last.unwrap().body.contains("Too many login attempts"));
    // Even the right password waits now: the account is limited, not just the guesser.
    assert_eq!(try_login(&svc, VIEWER.0, VIEWER.1).await.status, 429);
    // Another account from another network is not affected.
    let form = send(&svc, get("/login", None)).await;
    let nonce = form.cookie("assent_login").unwrap();
    let other = send(
        &svc,
        post_form(
            "/login",
            Some(format!("assent_login={nonce}")),
            &[("email", ADMIN.0), ("password", ADMIN.1), ("csrf", &nonce)],
        )
        .peer_addr("198.51.100.7:4000".parse().unwrap()),
    )
    .await;
    assert_eq!(other.status, 303);
}

#[actix_web::test]
async fn forms_without_their_csrf_token_change_nothing() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    // Login without the token, or with a token that is not the cookie's.
    let refused = send(
        &svc,
        post_form("/login", None, &[("email", ADMIN.0), ("password", ADMIN.1)]),
    )
    .await;
    assert_eq!(refused.status, 403);
    let form = send(&svc, get("/login", None)).await;
    let nonce = form.cookie("assent_login").unwrap();
    let forged = send(
        &svc,
        post_form(
            "/login",
            Some(format!("assent_login={nonce}")),
            &[
                ("email", ADMIN.0),
                ("password", ADMIN.1),
                ("csrf", &"0".repeat(64)),
            ],
        ),
    )
    .await;
    assert_eq!(forged.status, 403);
    assert!(forged.cookie("assent_session").is_none());
    assert_eq!(app.count("sessions"), 0);

    // Logout without the token leaves the session open.
    let token = login(&svc, ADMIN).await;
    let cookie = Some(format!("assent_session={token}"));
    assert_eq!(
        send(&svc, post_form("/logout", cookie.clone(), &[]))
            .await
            .status,
        403
    );
    assert_eq!(send(&svc, get("/", Some(&token))).await.status, 200);
    // A cross-site form with the right token is refused too.
    let page = send(&svc, get("/", Some(&token))).await;
    let csrf = page.csrf();
    let cross = send(
        &svc,
        post_form("/logout", cookie.clone(), &[("csrf", &csrf)])
            .insert_header(("sec-fetch-site", "cross-site")),
    )
    .await;
    assert_eq!(cross.status, 403);
    // Other forms too: adding a user.
    let before = app.count("users");
    let add = send(
        &svc,
        post_form(
            "/settings/users",
            cookie.clone(),
            &[
                ("email", "eve@example.com"),
                ("password", "long enough pw"),
                ("role", "admin"),
            ],
        ),
    )
    .await;
    assert_eq!(add.status, 403);
    assert_eq!(app.count("users"), before);

    // With it, logout ends the session.
    let out = send(&svc, post_form("/logout", cookie, &[("csrf", &csrf)])).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.header("location"), Some("/login"));
    let after = send(&svc, get("/", Some(&token))).await;
    assert_eq!(after.status, 303);
    assert_eq!(after.header("location"), Some("/login"));
}

#[actix_web::test]
async fn a_password_change_ends_the_other_sessions() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let here = login(&svc, VIEWER).await;
    let elsewhere = login(&svc, VIEWER).await;
    let settings = send(&svc, get("/settings", Some(&here))).await;
    assert_eq!(settings.status, 200);
    let csrf = settings.csrf();
    let cookie = Some(format!("assent_session={here}"));
    let wrong = send(
        &svc,
        post_form(
            "/settings/password",
            cookie.clone(),
            &[
                ("csrf", &csrf),
                ("current", "not it at all"),
                ("new_password", "a brand new one"),
                ("confirm", "a brand new one"),
            ],
        ),
    )
    .await;
    assert_eq!(wrong.status, 403);
    assert_eq!(send(&svc, get("/", Some(&elsewhere))).await.status, 200);
    let changed = send(
        &svc,
        post_form(
            "/settings/password",
            cookie,
            &[
                ("csrf", &csrf),
                ("current", VIEWER.1),
                ("new_password", "a brand new one"),
                ("confirm", "a brand new one"),
            ],
        ),
    )
    .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    let fresh = changed
        .cookie("assent_session")
        .expect("a new session here");
    assert_eq!(send(&svc, get("/", Some(&elsewhere))).await.status, 303);
    assert_eq!(send(&svc, get("/", Some(&here))).await.status, 303);
    assert_eq!(send(&svc, get("/", Some(&fresh))).await.status, 200);
    assert_eq!(try_login(&svc, VIEWER.0, VIEWER.1).await.status, 401);
    login(&svc, (VIEWER.0, "a brand new one")).await;
}

#[actix_web::test]
async fn admins_manage_users_and_keys_and_removal_ends_sessions() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let admin = login(&svc, ADMIN).await;
    let viewer = login(&svc, VIEWER).await;
    let cookie = Some(format!("assent_session={admin}"));
    let page = send(&svc, get("/settings", Some(&admin))).await;
    let csrf = page.csrf();
    assert!(page.body.contains(VIEWER.0));
    // A viewer cannot manage users.
    let vpage = send(&svc, get("/settings", Some(&viewer))).await;
    assert!(!vpage.body.contains(ADMIN.0));
    let denied = send(
        &svc,
        post_form(
            "/settings/users",
            Some(format!("assent_session={viewer}")),
            &[
                ("csrf", &vpage.csrf()),
                ("email", "x@example.com"),
                ("password", "long enough pw"),
            ],
        ),
    )
    .await;
    assert_eq!(denied.status, 403);

    let added = send(
        &svc,
        post_form(
            "/settings/users",
            cookie.clone(),
            &[
                ("csrf", &csrf),
                ("email", "new@example.com"),
                ("password", "long enough pw"),
                ("role", "viewer"),
                ("site", "shop"),
            ],
        ),
    )
    .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let newbie = login(&svc, ("new@example.com", "long enough pw")).await;
    assert_eq!(
        send(&svc, get("/sites/shop", Some(&newbie))).await.status,
        200
    );

    // Keys: shown once, then only their names; revoked keys stop working.
    let created = send(
        &svc,
        post_form(
            "/settings/keys",
            cookie.clone(),
            &[("csrf", &csrf), ("name", "reporting")],
        ),
    )
    .await;
    assert_eq!(created.status, 200);
    let at = created.body.find("assent_").expect("the new key");
    let key = created.body[at..at + 7 + 48].to_string();
    assert_eq!(
        call(
            &svc,
            TestRequest::get()
                .uri("/api/v1/stats/realtime/visitors?site_id=shop")
                .insert_header(("authorization", format!("Bearer {key}")))
        )
        .await
        .0,
        200
    );
    assert!(
        !send(&svc, get("/settings", Some(&admin)))
            .await
            .body
            .contains(&key)
    );
    let id: i64 = app
        .with_sql(|c| c.value("SELECT id FROM api_keys WHERE name = 'reporting'", &[]))
        .unwrap();
    let revoked = send(
        &svc,
        post_form(
            &format!("/settings/keys/{id}/revoke"),
            cookie.clone(),
            &[("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(
        call(
            &svc,
            TestRequest::get()
                .uri("/api/v1/stats/realtime/visitors?site_id=shop")
                .insert_header(("authorization", format!("Bearer {key}")))
        )
        .await
        .0,
        401
    );

    let uid: i64 = app
        .with_sql(|c| c.value("SELECT id FROM users WHERE email = 'new@example.com'", &[]))
        .unwrap();
    let removed = send(
        &svc,
        post_form(
            &format!("/settings/users/{uid}/remove"),
            cookie,
            &[("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(removed.status, 303);
    assert_eq!(send(&svc, get("/", Some(&newbie))).await.status, 303);
}

#[actix_web::test]
async fn a_viewer_sees_only_the_sites_granted() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, VIEWER).await;
    let home = send(&svc, get("/", Some(&token))).await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("/sites/demo?"));
    assert!(!home.body.contains("/sites/shop"));
    for path in [
        "/sites/shop",
        "/sites/shop/breakdown?panel=pages",
        "/sites/shop/export?panel=pages",
        "/sites/shop/realtime",
        "/sites/shop/consent",
        "/sites/nope",
    ] {
        let got = send(&svc, get(path, Some(&token))).await;
        assert_eq!(got.status, 404, "{path}");
        assert!(!got.body.contains("Shop"), "{path}");
    }
    assert_eq!(
        send(&svc, get("/sites/demo", Some(&token))).await.status,
        200
    );
    let admin = login(&svc, ADMIN).await;
    let home = send(&svc, get("/", Some(&admin))).await;
    for site in ["demo", "other", "shop", "fresh"] {
        assert!(home.body.contains(&format!("/sites/{site}?")), "{site}");
    }
}
