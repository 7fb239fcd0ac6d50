//! Sites from the dashboard: the settings form validated like the CLI, confirmations for asking again and
//! for removal, and adding sites.

use super::*;

/// The value of a form field as the page shows it (`id="..."` then `value="..."`), unescaped.
fn field_value(body: &str, id: &str) -> String {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no field {id}"));
    let rest = &body[at..];
    let v = rest.find("value=\"").unwrap() + 7;
    let value = &rest[v..];
    value[..value.find('"').unwrap()]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// The message shown beside a field of the site settings form.
fn field_error(body: &str, field: &str) -> Option<String> {
    let marker = format!("<p class=\"field-error\" id=\"err-{field}\">");
    let at = body.find(&marker)?;
    let rest = &body[at + marker.len()..];
    Some(rest[..rest.find("</p>").unwrap()].to_string())
}

/// The site settings form's fields as the page has them, to post back with changes.
fn settings_fields(body: &str) -> Vec<(String, String)> {
    let textarea = |id: &str| {
        let start = body.find(&format!("id=\"{id}\"")).unwrap();
        let open = start + body[start..].find('>').unwrap() + 1;
        let close = open + body[open..].find("</textarea>").unwrap();
        body[open..close]
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&")
    };
    let mut f: Vec<(String, String)> = [
        "name",
        "timezone",
        "languages",
        "default_language",
        "privacy_url",
    ]
    .iter()
    .map(|k| (k.to_string(), field_value(body, k)))
    .collect();
    for k in ["domains", "categories", "texts"] {
        f.push((k.to_string(), textarea(k)));
    }
    for k in [
        "floating_button",
        "spa",
        "google_consent_mode",
        "outbound_links",
        "file_downloads",
        "allow_http",
    ] {
        if body.contains(&format!("name=\"{k}\" value=\"on\" checked")) {
            f.push((k.to_string(), "on".to_string()));
        }
    }
    f
}

fn with(fields: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = fields.iter().filter(|(k, _)| k != key).cloned().collect();
    f.push((key.to_string(), value.to_string()));
    f
}

fn refs(f: &[(String, String)]) -> Vec<(&str, &str)> {
    f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[actix_web::test]
async fn site_settings_validate_like_the_cli_and_show_errors_beside_fields() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    // Viewers (even of the site) and strangers get the 404 of a site that does not exist.
    let viewer = login(&svc, VIEWER).await;
    for path in ["/sites/demo/settings", "/sites/shop/settings"] {
        assert_eq!(send(&svc, get(path, Some(&viewer))).await.status, 404);
    }
    let token = login(&svc, ADMIN).await;
    let cookie = Some(format!("assent_session={token}"));
    let page = send(&svc, get("/sites/shop/settings", Some(&token))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(&html("/s/shop/assent.js")),
        "the embed snippet"
    );
    assert!(page.body.contains("data-copy="));
    let csrf = page.csrf();
    let fields = settings_fields(&page.body);
    assert_eq!(field_value(&page.body, "timezone"), "UTC");

    // Without the CSRF token nothing changes.
    let forged = send(
        &svc,
        post_form(
            "/sites/shop/settings",
            cookie.clone(),
            &refs(&with(&fields, "timezone", "Europe/Paris")),
        ),
    )
    .await;
    assert_eq!(forged.status, 403);

    let post = |f: Vec<(String, String)>| {
        let mut f = f;
        f.push(("csrf".into(), csrf.clone()));
        post_form("/sites/shop/settings", cookie.clone(), &refs(&f))
    };
    // Refusals: the message beside its field, the submitted values kept, nothing stored (400). Each
    // message is the one `assent site update` gives for the same document.
    let cases = [
        ("timezone", "Mars/Olympus", "timezone"),
        ("domains", "shop.test\nhttps://bad.example/x", "domains"),
        ("languages", "en Fr", "languages"),
        ("default_language", "it-xx", "default_language"),
        ("name", "  ", "name"),
        ("privacy_url", "ftp://x.example/", "privacy_url"),
        (
            "categories",
            "[[categories]]\nid = \"analytics\"\n",
            "categories",
        ),
        (
            "categories",
            "[[categories]]\nid = \"necessary\"\nrequired = true\nsurprise = 1\n",
            "categories",
        ),
        ("texts", "[texts.en\n", "texts"),
    ];
    for (key, value, field) in cases {
        let got = send(&svc, post(with(&fields, key, value))).await;
        assert_eq!(got.status, 400, "{key}={value:?}: {}", got.body);
        let message = field_error(&got.body, field)
            .unwrap_or_else(|| panic!("no message beside {field} for {value:?}: {}", got.body));
        assert!(!message.is_empty());
        if key == "timezone" {
            assert!(message.contains("unknown time zone"), "{message}");
            assert_eq!(field_value(&got.body, "timezone"), "Mars/Olympus");
        }
        if key == "domains" {
            assert!(message.contains("invalid domain"), "{message}");
        }
        assert!(got.body.contains("aria-invalid=\"true\""));
    }
    // The CLI refuses the same document with the same message.
    let text = app
        .state
        .sites
        .get("shop")
        .unwrap()
        .config
        .to_toml("shop", 1)
        .replace("timezone = \"UTC\"", "timezone = \"Mars/Olympus\"");
    let cli_error = assent::domain::site::SiteConfig::from_toml("shop", &text).unwrap_err();
    assert!(cli_error.ends_with("unknown time zone \"Mars/Olympus\": use an IANA name such as \"Europe/Paris\" or \"UTC\""), "{cli_error}");
    assert_eq!(app.state.sites.get("shop").unwrap().config.timezone, "UTC");

    // A valid change: stored, the registry reloaded at once, the revision kept (no text changed).
    let mut ok = with(&fields, "timezone", "Europe/Paris");
    ok.retain(|(k, _)| k != "floating_button");
    let saved = send(&svc, post(ok)).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        saved.header("location"),
        Some("/sites/shop/settings?done=saved")
    );
    let shop = app.state.sites.get("shop").unwrap();
    assert_eq!(shop.config.timezone, "Europe/Paris");
    assert!(!shop.config.options.floating_button);
    assert_eq!(shop.revision, 1);
    let stored = app.with_database(|db| db.site("shop").unwrap().unwrap());
    assert_eq!(stored.config.timezone, "Europe/Paris");

    // A changed text is a new policy revision; only the override is stored.
    let page = send(&svc, get("/sites/shop/settings", Some(&token))).await;
    let fields = settings_fields(&page.body);
    let texts = fields.iter().find(|(k, _)| k == "texts").unwrap().1.clone();
    let accept = texts
        .lines()
        .find(|l| l.starts_with("accept_all = "))
        .expect("accept_all text")
        .to_string();
    let changed = texts.replacen(&accept, "accept_all = \"Yes, fine\"", 1);
    let saved = send(&svc, post(with(&fields, "texts", &changed))).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert_eq!(
        saved.header("location"),
        Some("/sites/shop/settings?done=asked")
    );
    let shop = app.state.sites.get("shop").unwrap();
    assert_eq!(shop.revision, 2);
    assert_eq!(shop.config.texts.len(), 1, "{:?}", shop.config.texts);
    assert!(shop.script.contains("Yes, fine"));
}

#[actix_web::test]
async fn ask_again_and_removal_need_their_confirmation() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let token = login(&svc, ADMIN).await;
    let cookie = Some(format!("assent_session={token}"));
    let csrf = send(&svc, get("/sites/shop/settings", Some(&token)))
        .await
        .csrf();
    let unconfirmed = send(
        &svc,
        post_form(
            "/sites/shop/settings/ask-again",
            cookie.clone(),
            &[("csrf", &csrf)],
        ),
    )
    .await;
    assert_eq!(unconfirmed.status, 400);
    assert!(field_error(&unconfirmed.body, "ask_again").is_some());
    assert_eq!(app.state.sites.get("shop").unwrap().revision, 1);
    let asked = send(
        &svc,
        post_form(
            "/sites/shop/settings/ask-again",
            cookie.clone(),
            &[("csrf", &csrf), ("confirm", "yes")],
        ),
    )
    .await;
    assert_eq!(asked.status, 303);
    assert_eq!(app.state.sites.get("shop").unwrap().revision, 2);
    let page = send(&svc, get("/sites/shop/settings?done=asked", Some(&token))).await;
    assert!(page.body.contains("every visitor is asked again"));

    for typed in ["", "Shop", "demo"] {
        let got = send(
            &svc,
            post_form(
                "/sites/shop/settings/remove",
                cookie.clone(),
                &[("csrf", &csrf), ("confirm_id", typed)],
            ),
        )
        .await;
        assert_eq!(got.status, 400, "{typed:?}");
        assert!(field_error(&got.body, "remove").is_some());
        assert!(app.state.sites.get("shop").is_some());
    }
    let events_before = app.count("events");
    assert!(events_before > 0);
    let removed = send(
        &svc,
        post_form(
            "/sites/shop/settings/remove",
            cookie.clone(),
            &[("csrf", &csrf), ("confirm_id", "shop")],
        ),
    )
    .await;
    assert_eq!(removed.status, 303);
    assert_eq!(removed.header("location"), Some("/?done=removed"));
    assert!(app.state.sites.get("shop").is_none());
    assert_eq!(app.count("events"), 0, "everything collected for it went");
    assert_eq!(
        send(&svc, get("/sites/shop", Some(&token))).await.status,
        404
    );
    let home = send(&svc, get("/?done=removed", Some(&token))).await;
    assert!(home.body.contains("The site was removed"));
}

#[actix_web::test]
async fn admins_add_sites_from_the_list_with_the_cli_rules() {
    let (app, _) = app().await;
    let svc = service(&app).await;
    let viewer = login(&svc, VIEWER).await;
    let home = send(&svc, get("/", Some(&viewer))).await;
    assert!(!home.body.contains("Add a site"));
    let vcsrf = home.csrf();
    let refused = send(
        &svc,
        post_form(
            "/sites",
            Some(format!("assent_session={viewer}")),
            &[
                ("csrf", &vcsrf),
                ("id", "blog"),
                ("domains", "blog.example"),
            ],
        ),
    )
    .await;
    assert_eq!(refused.status, 403);
    assert!(app.state.sites.get("blog").is_none());

    let token = login(&svc, ADMIN).await;
    let cookie = Some(format!("assent_session={token}"));
    let home = send(&svc, get("/", Some(&token))).await;
    assert!(home.body.contains("Add a site"));
    let csrf = home.csrf();
    for (id, domains, status, text) in [
        ("Blog", "blog.example", 400, "invalid site id"),
        ("blog", "https://blog.example", 400, "invalid domain"),
        ("blog", "", 400, "at least one domain"),
        ("shop", "shop.example", 409, "already exists"),
    ] {
        let got = send(
            &svc,
            post_form(
                "/sites",
                cookie.clone(),
                &[("csrf", &csrf), ("id", id), ("domains", domains)],
            ),
        )
        .await;
        assert_eq!(got.status, status, "{id} {domains}: {}", got.body);
        assert!(got.body.contains(text), "{text}: {}", got.body);
        assert!(got.body.contains(&format!("value=\"{id}\"")), "kept");
    }
    assert!(app.state.sites.get("blog").is_none());
    let added = send(
        &svc,
        post_form(
            "/sites",
            cookie.clone(),
            &[
                ("csrf", &csrf),
                ("id", "blog"),
                ("domains", "blog.example\nwww.blog.example"),
                ("name", "The <b>Blog</b>"),
            ],
        ),
    )
    .await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert_eq!(
        added.header("location"),
        Some("/sites/blog/settings?done=added")
    );
    let blog = app.state.sites.get("blog").unwrap();
    assert_eq!(blog.config.domains, ["blog.example", "www.blog.example"]);
    assert_eq!(blog.revision, 1);
    let home = send(&svc, get("/", Some(&token))).await;
    assert!(home.body.contains("The &lt;b&gt;Blog&lt;&#x2f;b&gt;"));
}
