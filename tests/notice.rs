//! The published privacy notice `/s/{site}/privacy`: wholly in the requested language (each of the seven
//! shipped ones), with the controller, what is collected and why, every cookie, each right and how to use
//! it, the supervisory authority and the revision; also as a fragment without page chrome. And the
//! controller settings through `site show` / `site update`.

mod common;

use actix_web::test::{TestRequest, call_service, read_body};
use common::*;
use serde_json::Value;

const LANGS: [&str; 7] = ["en", "fr", "de", "es", "it", "nl", "pt"];

fn json_file(path: &str) -> Value {
    let p = format!("{}/web/i18n/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Object(m) => m.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Every text a language ships: notice, banner and "Your data" texts.
fn texts_of(lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    for f in [
        format!("notice/{lang}.json"),
        format!("{lang}.json"),
        format!("rights/{lang}.json"),
    ] {
        strings(&json_file(&f), &mut out);
    }
    out
}

/// The page as text: HTML entities that minijinja escapes turned back.
fn unescape(html: &str) -> String {
    html.replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn with_controller(db: &mut assent::storage::Database) {
    let row = db.site("demo").unwrap().unwrap();
    let mut cfg = row.config.clone();
    cfg.controller.name = "Zorglub Trading SARL".into();
    cfg.controller.address = "12 rue Quelquepart\n75011 Paris".into();
    cfg.controller.email = "privacy@zorglub.example".into();
    cfg.controller.dpo = "Dana Protection, dpo@zorglub.example".into();
    cfg.controller.supervisory_authority = "CNIL, 3 place de Fontenoy, 75007 Paris".into();
    let marketing = cfg
        .categories
        .iter_mut()
        .find(|c| c.id == "marketing")
        .unwrap();
    marketing.services = vec![assent::domain::site::Service {
        name: "Ads".into(),
        description: String::new(),
        cookies: vec!["_gcl_*".into(), "_fbp".into()],
    }];
    db.update_site("demo", &cfg, false, assent::now()).unwrap();
}

async fn get(app: &TestApp, uri: &str) -> (u16, String) {
    let svc = service(app).await;
    let res = call_service(&svc, TestRequest::get().uri(uri).to_request()).await;
    let status = res.status().as_u16();
    (
        status,
        String::from_utf8_lossy(&read_body(res).await).into_owned(),
    )
}

#[actix_web::test]
async fn each_language_is_whole_and_complete() {
    let app = TestApp::build(&[], with_controller);
    for lang in LANGS {
        let (status, html) = get(&app, &format!("/s/demo/privacy?lang={lang}")).await;
        assert_eq!(status, 200, "{lang}");
        let page = unescape(&html);
        assert!(page.contains(&format!("<html lang=\"{lang}\"")), "{lang}");
        let notice = json_file(&format!("notice/{lang}.json"));
        let t = |k: &str| notice[k].as_str().unwrap().to_string();
        // the controller, with every detail
        for needle in [
            "Zorglub Trading SARL",
            "12 rue Quelquepart",
            "75011 Paris",
            "mailto:privacy@zorglub.example",
            "Dana Protection, dpo@zorglub.example",
            "CNIL, 3 place de Fontenoy, 75007 Paris",
        ] {
            assert!(page.contains(needle), "{lang}: no {needle:?}");
        }
        // every cookie of the site, each right, and how to use them
        for cookie in ["assent_consent", "_gcl_*", "_fbp"] {
            assert!(
                page.contains(&format!("<code>{cookie}</code>")),
                "{lang}: cookie {cookie}"
            );
        }
        for k in [
            "r_access",
            "r_rectification",
            "r_erasure",
            "r_portability",
            "r_objection",
            "r_withdrawal",
            "recipients_h",
            "transfers_p",
            "complaint_h",
            "b_consent",
            "b_choice",
        ] {
            assert!(page.contains(&t(k)), "{lang}: {k}");
        }
        assert!(
            page.contains("data-assent-open"),
            "{lang}: a link that opens the dialog"
        );
        assert!(page.contains(&t("open_settings")), "{lang}");
        // retention and revision with their numbers
        assert!(
            page.contains(&t("months").replace("{n}", "13")),
            "{lang}: retention"
        );
        let revision = t("revision_p").replace("{revision}", "2");
        let (before_date, _) = revision.split_once("{date}").unwrap();
        assert!(page.contains(before_date), "{lang}: revision");
        // nothing of another language (names aside): every text another language ships that this one
        // does not, in pieces between placeholders of at least 12 characters
        let own = texts_of(lang);
        for other in LANGS.iter().filter(|l| **l != lang) {
            for s in texts_of(other) {
                for piece in s.split(['{', '}']) {
                    let piece = piece.trim();
                    if piece.chars().count() < 12 || own.iter().any(|o| o.contains(piece)) {
                        continue;
                    }
                    assert!(
                        !page.contains(piece),
                        "the {lang} notice holds {other} text {piece:?}"
                    );
                }
            }
        }
    }
}

#[actix_web::test]
async fn fragment_has_no_page_chrome_and_unknown_languages_fall_back_whole() {
    let app = TestApp::build(&[], with_controller);
    let (status, html) = get(&app, "/s/demo/privacy?lang=de&format=fragment").await;
    assert_eq!(status, 200);
    for chrome in [
        "<!doctype",
        "<html",
        "<head",
        "<body",
        "<style",
        "<title",
        "<main",
    ] {
        assert!(
            !html.to_ascii_lowercase().contains(chrome),
            "{chrome} in {html}"
        );
    }
    assert!(
        html.trim_start()
            .starts_with("<article class=\"assent-notice\" lang=\"de\"")
    );
    assert!(html.contains("Datenschutz- und Cookie-Hinweis"));
    // a language the site does not offer: the default language, whole
    let (_, html) = get(&app, "/s/demo/privacy?lang=ja").await;
    assert!(html.contains("<html lang=\"en\""));
    let (_, html) = get(&app, "/s/demo/privacy?lang=fr-CA").await;
    assert!(html.contains("<html lang=\"fr\""));
    let (status, _) = get(&app, "/s/demo/privacy?format=pdf").await;
    assert_eq!(status, 400);
    // without a controller configured, nothing is invented
    let bare = TestApp::new();
    let (_, html) = get(&bare, "/s/demo/privacy").await;
    assert!(html.contains("not given"));
    assert!(html.contains("GDPR art. 77"));
}

#[test]
fn controller_settings_through_site_show_and_update() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = cli(
        dir.path(),
        &["site", "add", "shop", "--domain", "shop.example"],
    );
    assert!(ok, "{err}");
    let (ok, shown, _) = cli(dir.path(), &["site", "show", "shop"]);
    assert!(ok);
    assert!(shown.contains("[controller]"), "{shown}");
    let edited = shown.replace(
        "[controller]\n",
        "[controller]\nemail = \"not an address\"\n",
    );
    let edited = dedupe_keys(&edited);
    let file = dir.path().join("shop.toml");
    std::fs::write(&file, &edited).unwrap();
    let (ok, _, err) = cli(
        dir.path(),
        &["site", "update", "shop", "--file", file.to_str().unwrap()],
    );
    assert!(!ok);
    assert!(err.contains("controller.email"), "{err}");
    std::fs::write(
        &file,
        edited.replace("\"not an address\"", "\"dpo@shop.example\""),
    )
    .unwrap();
    let (ok, _, err) = cli(
        dir.path(),
        &["site", "update", "shop", "--file", file.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let (_, shown, _) = cli(dir.path(), &["site", "show", "shop"]);
    assert!(shown.contains("email = \"dpo@shop.example\""), "{shown}");
}

/// Drops the empty `email = ""` line `site show` prints, keeping the one the test inserted first.
fn dedupe_keys(toml: &str) -> String {
    toml.lines()
        .filter(|l| l.trim() != "email = \"\"")
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// `site register` (GDPR art. 30) and `consents export` on a seeded site.
#[test]
fn register_and_consent_export_on_a_seeded_site() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = cli(
        dir.path(),
        &[
            "site",
            "add",
            "shop",
            "--domain",
            "shop.example",
            "--name",
            "Shop",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = cli(
        dir.path(),
        &["seed", "shop", "--events", "3000", "--days", "20"],
    );
    assert!(ok, "{err}");
    let db = rusqlite::Connection::open(dir.path().join("assent.db")).unwrap();
    let records: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM consents WHERE site_id = 'shop'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(records > 10, "seeded consents: {records}");

    // the register, as JSON and Markdown
    let (ok, json, err) = cli(
        dir.path(),
        &["site", "register", "shop", "--format", "json"],
    );
    assert!(ok, "{err}");
    let reg: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(reg["site"], "shop");
    assert_eq!(reg["domains"], serde_json::json!(["shop.example"]));
    let purposes: Vec<&str> = reg["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["purpose"].as_str().unwrap())
        .collect();
    assert!(purposes[0].contains("consent"), "{purposes:?}");
    assert!(purposes.iter().any(|p| p.contains("Audience statistics")));
    assert_eq!(
        purposes.len(),
        4,
        "the choice and the three optional categories"
    );
    for a in reg["activities"].as_array().unwrap() {
        for k in [
            "legal_basis",
            "data_subjects",
            "recipients",
            "transfers_outside_eu",
            "retention",
        ] {
            assert!(!a[k].as_str().unwrap().is_empty(), "{k} of {a}");
        }
    }
    assert!(
        reg["activities"][0]["retention"]
            .as_str()
            .unwrap()
            .contains("13 months")
    );
    assert_eq!(reg["cookies"][0]["name"], "assent_consent");
    assert!(reg["security_measures"].as_array().unwrap().len() >= 4);
    let (ok, md, _) = cli(dir.path(), &["site", "register", "shop"]);
    assert!(ok);
    assert!(md.starts_with("# Record of processing activities: Shop (shop)"));
    for heading in [
        "## Controller",
        "## Processing activities",
        "## Cookies",
        "## Technical and organisational",
    ] {
        assert!(md.contains(heading), "{heading}");
    }
    assert!(md.contains("Address: *not given*"));
    let (ok, _, err) = cli(dir.path(), &["site", "register", "shop", "--format", "pdf"]);
    assert!(!ok && err.contains("--format"), "{err}");

    // the consent log, whole, as CSV and JSON lines
    let (ok, csv, err) = cli(dir.path(), &["consents", "export", "shop"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "record,consent_id,created_at,site,revision,policy_hash,action,choices,language,page_path,expires_at"
    );
    assert_eq!(lines.len() as i64, records + 1);
    let hash: String = db
        .query_row(
            "SELECT policy_hash FROM site_revisions WHERE site_id = 'shop'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains(&hash) && l.contains(",shop,1,")),
        "{}",
        lines[1]
    );
    let (ok, jsonl, err) = cli(
        dir.path(),
        &["consents", "export", "shop", "--format", "jsonl"],
    );
    assert!(ok, "{err}");
    let rows: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len() as i64, records);
    assert!(
        rows.iter()
            .all(|r| r["revision"] == 1 && r["policy_hash"] == hash.as_str())
    );
    assert!(
        rows.windows(2)
            .all(|w| w[0]["record"].as_i64() < w[1]["record"].as_i64())
    );
    assert!(rows[0]["choices"]["necessary"] == true);
    // a range: the records of the last five days only (days are UTC, `--to` includes its day)
    let today = time::OffsetDateTime::now_utc().date();
    let from = (today - time::Duration::days(4)).to_string();
    let want: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM consents WHERE site_id = 'shop' AND created_at >= unixepoch(?1)",
            [&from],
            |r| r.get(0),
        )
        .unwrap();
    let (ok, part, err) = cli(
        dir.path(),
        &[
            "consents",
            "export",
            "shop",
            "--format",
            "jsonl",
            "--from",
            &from,
            "--to",
            &today.to_string(),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(part.lines().count() as i64, want);
    assert!(want < records && want > 0, "{want} of {records}");
    for bad in [
        vec!["consents", "export", "nope"],
        vec!["consents", "export", "shop", "--format", "xml"],
        vec!["consents", "export", "shop", "--from", "yesterday"],
    ] {
        let (ok, _, err) = cli(dir.path(), &bad);
        assert!(!ok && !err.is_empty(), "{bad:?}");
    }
}
