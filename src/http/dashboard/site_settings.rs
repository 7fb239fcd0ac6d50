//! `/sites/{site}/settings` (admins; anyone else gets the 404 of a site that does not exist): a site's
//! name, domains, time zone, languages and options as fields, its categories (with services and
//! cookies) and banner texts as TOML, "ask every visitor again" (a revision bump, confirmed), removal
//! (confirmed by typing the site id) and the embed snippet. Also `POST /sites`, "Add a site".
//!
//! The form is validated by the very loader of `assent site update`: the fields are written into the
//! site's `assent site show` document, which [`SiteConfig::from_toml`] reads, so both accept and refuse
//! the same settings with the same messages. Writes are those of the CLI too ([`sites`] through the
//! store), and the registry is reloaded at once (the writer notices by the sites generation).
//!
//! [`sites`]: crate::storage::sites

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::{Current, check_form, require};
use super::pages::chrome;
use super::{Fail, Page, form, query_pairs, render_status, respond, see_other};
use crate::domain::site::{Category, SiteConfig};
use crate::error::Error;
use crate::state::{AppState, SiteEntry};

/// The options of [`crate::domain::site::SiteOptions`] shown as checkboxes, with their labels.
const OPTIONS: [(&str, &str); 6] = [
    (
        "floating_button",
        "Floating button that reopens the preferences",
    ),
    (
        "spa",
        "Count page views of single-page apps (history and hash changes)",
    ),
    ("google_consent_mode", "Google Consent Mode signals"),
    ("outbound_links", "Count clicks on outbound links"),
    ("file_downloads", "Count file downloads"),
    (
        "allow_http",
        "Allow pages served over plain http (not https)",
    ),
];

/// The categories part of the settings document, edited as TOML.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoriesDoc {
    categories: Vec<Category>,
}

/// The texts part of the settings document (every offered language, merged), edited as TOML.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextsDoc {
    #[serde(default)]
    texts: BTreeMap<String, Value>,
}

/// A site this user may administer: admins only; anyone else is told it does not exist.
fn administered(
    state: &AppState,
    me: &Current,
    site: &str,
) -> Result<std::sync::Arc<SiteEntry>, Fail> {
    match state.sites.get(site) {
        Some(s) if me.user.admin => Ok(s),
        _ => Err(Fail::Error(Error::NotFound(format!("no site {site:?}")))),
    }
}

/// The session and the fields of a POST, its CSRF token checked.
async fn posted(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<(Current, std::collections::HashMap<String, String>), Fail> {
    let me = require(req, state).await?;
    let f = form(body);
    check_form(req, &me.csrf(), f.get("csrf").map(String::as_str))?;
    Ok((me, f))
}

/// The form's values of a site's settings as they are.
fn values_of(cfg: &SiteConfig) -> BTreeMap<String, Value> {
    let mut v = BTreeMap::new();
    v.insert("name".into(), json!(cfg.name));
    v.insert("domains".into(), json!(cfg.domains.join("\n")));
    v.insert("timezone".into(), json!(cfg.timezone));
    v.insert("default_language".into(), json!(cfg.default_language));
    v.insert("languages".into(), json!(cfg.languages.join(" ")));
    v.insert("privacy_url".into(), json!(cfg.options.privacy_url));
    let options = serde_json::to_value(&cfg.options).unwrap_or(Value::Null);
    for (id, _) in OPTIONS {
        v.insert(id.into(), json!(options[id].as_bool().unwrap_or(false)));
    }
    let categories = toml::to_string(&CategoriesDoc {
        categories: cfg.categories.clone(),
    })
    .unwrap_or_default();
    v.insert("categories".into(), json!(categories));
    let texts = toml::to_string(&TextsDoc {
        texts: cfg.merged_texts(),
    })
    .unwrap_or_default();
    v.insert("texts".into(), json!(texts));
    v
}

/// The form's values as posted (checkboxes: present or not).
fn values_posted(f: &std::collections::HashMap<String, String>) -> BTreeMap<String, Value> {
    let mut v = BTreeMap::new();
    for k in [
        "name",
        "domains",
        "timezone",
        "default_language",
        "languages",
        "privacy_url",
        "categories",
        "texts",
    ] {
        v.insert(
            k.to_string(),
            json!(f.get(k).cloned().unwrap_or_default().replace("\r\n", "\n")),
        );
    }
    for (id, _) in OPTIONS {
        v.insert(id.to_string(), json!(f.contains_key(id)));
    }
    v
}

/// Which field a message of the settings loader is about (the form shows it there).
fn field_of(message: &str) -> &'static str {
    let m = message.trim_start();
    if m.starts_with("texts") || m.contains(" in texts") {
        "texts"
    } else if m.starts_with("name") {
        "name"
    } else if m.starts_with("domains") || m.starts_with("invalid domain") {
        "domains"
    } else if m.starts_with("timezone") {
        "timezone"
    } else if m.starts_with("invalid category")
        || m.starts_with("category")
        || m.starts_with("the category")
        || m.starts_with("invalid cookie")
        || m.starts_with("categories")
    {
        "categories"
    } else if m.starts_with("default_language") {
        "default_language"
    } else if m.starts_with("languages") || m.starts_with("invalid language") {
        "languages"
    } else if m.starts_with("invalid privacy_url") {
        "privacy_url"
    } else {
        "general"
    }
}

/// A loader message without the "line N: " of the composed document (its lines are not the form's).
fn without_line(message: &str) -> &str {
    match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") || head == "settings" => rest,
        _ => message,
    }
}

fn words(s: &str) -> Vec<toml::Value> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(|w| toml::Value::String(w.to_string()))
        .collect()
}

/// The posted form as new settings, read by the loader of `assent site update`; otherwise the
/// messages per field.
fn load(
    id: &str,
    entry: &SiteEntry,
    v: &BTreeMap<String, Value>,
) -> Result<SiteConfig, BTreeMap<String, String>> {
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut errors = BTreeMap::new();
    // The site's document as `assent site show` prints it: whatever the form does not edit stays.
    let mut doc: toml::Table = match toml::from_str(&entry.config.to_toml(id, entry.revision)) {
        Ok(d) => d,
        Err(e) => {
            errors.insert("general".into(), e.to_string());
            return Err(errors);
        }
    };
    doc.insert("name".into(), toml::Value::String(text("name")));
    doc.insert(
        "domains".into(),
        toml::Value::Array(words(&text("domains"))),
    );
    doc.insert(
        "timezone".into(),
        toml::Value::String(text("timezone").trim().to_string()),
    );
    doc.insert(
        "default_language".into(),
        toml::Value::String(text("default_language").trim().to_string()),
    );
    doc.insert(
        "languages".into(),
        toml::Value::Array(words(&text("languages"))),
    );
    let mut options = doc
        .get("options")
        .and_then(|o| o.as_table())
        .cloned()
        .unwrap_or_default();
    for (k, _) in OPTIONS {
        let on = v.get(k).and_then(Value::as_bool).unwrap_or(false);
        options.insert(k.into(), toml::Value::Boolean(on));
    }
    let privacy = text("privacy_url").trim().to_string();
    if privacy.is_empty() {
        options.remove("privacy_url");
    } else {
        options.insert("privacy_url".into(), toml::Value::String(privacy));
    }
    doc.insert("options".into(), toml::Value::Table(options));
    // The structured parts are read on their own first, so that their messages name their own lines.
    match toml::from_str::<CategoriesDoc>(&text("categories")) {
        Ok(c) => match toml::Value::try_from(&c.categories) {
            Ok(t) => {
                doc.insert("categories".into(), t);
            }
            Err(e) => {
                errors.insert("categories".into(), e.to_string());
            }
        },
        Err(e) => {
            errors.insert("categories".into(), e.to_string().trim().to_string());
        }
    }
    match toml::from_str::<TextsDoc>(&text("texts")) {
        Ok(t) => match toml::Value::try_from(&t.texts) {
            Ok(t) => {
                doc.insert("texts".into(), t);
            }
            Err(e) => {
                errors.insert("texts".into(), e.to_string());
            }
        },
        Err(e) => {
            errors.insert("texts".into(), e.to_string().trim().to_string());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let composed = toml::to_string(&doc)
        .map_err(|e| BTreeMap::from([("general".to_string(), e.to_string())]))?;
    SiteConfig::from_toml(id, &composed).map_err(|e| {
        let message = without_line(&e).trim().to_string();
        BTreeMap::from([(field_of(&message).to_string(), message)])
    })
}

/// The settings page of a site: its form with `values` and `errors`, and the other sections.
async fn page(
    state: &AppState,
    me: &Current,
    entry: &SiteEntry,
    values: BTreeMap<String, Value>,
    errors: BTreeMap<String, String>,
    notice: Option<String>,
    status: StatusCode,
) -> Page {
    let id = entry.id.as_str();
    let options: Vec<Value> = OPTIONS
        .iter()
        .map(|(k, label)| json!({"id": k, "label": label, "on": values.get(*k).and_then(Value::as_bool).unwrap_or(false)}))
        .collect();
    let snippet = crate::commands::site::snippet(&state.settings, id);
    render_status(
        "site_settings.html",
        context! {
            site_id => id,
            site_name => entry.config.name.clone(),
            revision => entry.revision,
            policy_hash => entry.policy_hash.clone(),
            snippet,
            v => Serde(values),
            errors => Serde(errors),
            options => Serde(options),
            notice,
            ..chrome(me, &format!("Settings · {}", entry.config.name))
        },
        status,
    )
}

/// `GET /sites/{site}/settings`
pub async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        &req,
        async {
            let me = require(&req, &state).await?;
            let entry = administered(&state, &me, &path)?;
            let pairs = query_pairs(&req);
            let get = |k: &str| pairs.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
            let notice = match get("done") {
                Some("saved") => Some(format!(
                    "Saved. The policy revision stays {}.",
                    entry.revision
                )),
                Some("asked") => Some(format!(
                    "Saved. The policy revision is now {}: every visitor is asked again.",
                    entry.revision
                )),
                Some("added") => {
                    Some("The site was added. Put the snippet below in its pages.".into())
                }
                _ => None,
            };
            page(
                &state,
                &me,
                &entry,
                values_of(&entry.config),
                BTreeMap::new(),
                notice,
                StatusCode::OK,
            )
            .await
        }
        .await,
    )
}

/// `POST /sites/{site}/settings`: the whole form; refused with the messages beside their fields (400),
/// the submitted values kept.
pub async fn save(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        &req,
        async {
            let (me, f) = posted(&req, &state, &body).await?;
            let entry = administered(&state, &me, &path)?;
            let values = values_posted(&f);
            let cfg = match load(&entry.id, &entry, &values) {
                Ok(cfg) => cfg,
                Err(errors) => {
                    return page(
                        &state,
                        &me,
                        &entry,
                        values,
                        errors,
                        None,
                        StatusCode::BAD_REQUEST,
                    )
                    .await;
                }
            };
            let revision = state
                .store
                .update_site(entry.id.clone(), cfg, false, crate::now())
                .await?;
            state.refresh_sites().await?;
            let done = if revision != entry.revision {
                "asked"
            } else {
                "saved"
            };
            Ok(see_other(&format!(
                "/sites/{}/settings?done={done}",
                entry.id
            )))
        }
        .await,
    )
}

/// `POST /sites/{site}/settings/ask-again`: bumps the policy revision (with `confirm=yes`), so every
/// visitor is asked again.
pub async fn ask_again(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        &req,
        async {
            let (me, f) = posted(&req, &state, &body).await?;
            let entry = administered(&state, &me, &path)?;
            if f.get("confirm").map(String::as_str) != Some("yes") {
                let errors = BTreeMap::from([(
                    "ask_again".to_string(),
                    "Tick the box to confirm that every visitor is asked again.".to_string(),
                )]);
                return page(
                    &state,
                    &me,
                    &entry,
                    values_of(&entry.config),
                    errors,
                    None,
                    StatusCode::BAD_REQUEST,
                )
                .await;
            }
            state
                .store
                .update_site(entry.id.clone(), entry.config.clone(), true, crate::now())
                .await?;
            state.refresh_sites().await?;
            Ok(see_other(&format!(
                "/sites/{}/settings?done=asked",
                entry.id
            )))
        }
        .await,
    )
}

/// `POST /sites/{site}/settings/remove`: removes the site and everything collected for it, once its id
/// is typed in `confirm_id`.
pub async fn remove(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        &req,
        async {
            let (me, f) = posted(&req, &state, &body).await?;
            let entry = administered(&state, &me, &path)?;
            if f.get("confirm_id").map(|s| s.trim()) != Some(entry.id.as_str()) {
                let errors = BTreeMap::from([(
                    "remove".to_string(),
                    format!("Type the site id, {}, to confirm the removal.", entry.id),
                )]);
                return page(
                    &state,
                    &me,
                    &entry,
                    values_of(&entry.config),
                    errors,
                    None,
                    StatusCode::BAD_REQUEST,
                )
                .await;
            }
            if !state.store.remove_site(entry.id.clone()).await? {
                return Err(Fail::Error(Error::NotFound(format!(
                    "no site {:?}",
                    entry.id
                ))));
            }
            state.refresh_sites().await?;
            tracing::info!(site = %entry.id, "site removed from the dashboard");
            Ok(see_other("/?done=removed"))
        }
        .await,
    )
}

/// `POST /sites` (admins): "Add a site" on `/`, with `id`, `domains` (one per line or comma-separated)
/// and `name`, checked and created by the code of `assent site add`.
pub async fn add(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    respond(
        &req,
        async {
            let (me, f) = posted(&req, &state, &body).await?;
            if !me.user.admin {
                return Err(Fail::Error(Error::Forbidden(
                    "Only admins add sites.".into(),
                )));
            }
            let get = |k: &str| f.get(k).map(|s| s.trim().to_string()).unwrap_or_default();
            let id = get("id");
            let domains: Vec<String> = get("domains")
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect();
            let name = Some(get("name")).filter(|n| !n.is_empty());
            let location = state.settings.location();
            let (site, doms, nm) = (id.clone(), domains, name);
            let outcome = web::block(move || -> anyhow::Result<()> {
                let mut db = crate::storage::Database::connect(&location)?;
                crate::commands::site::add(&mut db, &site, doms, nm)
            })
            .await
            .map_err(|e| Error::Internal(format!("adding a site failed: {e}")))?;
            match outcome {
                Ok(()) => {
                    state.refresh_sites().await?;
                    Ok(see_other(&format!("/sites/{id}/settings?done=added")))
                }
                Err(e) => {
                    let status = match e.downcast_ref::<Error>() {
                        Some(Error::Conflict(_)) => StatusCode::CONFLICT,
                        Some(other) => {
                            let s = actix_web::ResponseError::status_code(other);
                            if s.is_server_error() {
                                return Err(Fail::Error(Error::Internal(e.to_string())));
                            }
                            s
                        }
                        None => StatusCode::BAD_REQUEST,
                    };
                    let message = e.to_string();
                    let field = if message.starts_with("invalid site id")
                        || status == StatusCode::CONFLICT
                    {
                        "id"
                    } else if message.starts_with("name") {
                        "name"
                    } else {
                        "domains"
                    };
                    let form = json!({
                        "id": f.get("id").cloned().unwrap_or_default(),
                        "domains": f.get("domains").cloned().unwrap_or_default(),
                        "name": f.get("name").cloned().unwrap_or_default(),
                        "field": field,
                        "error": message,
                    });
                    super::pages::index_with(&req, &state, status, Some(form)).await
                }
            }
        }
        .await,
    )
}
