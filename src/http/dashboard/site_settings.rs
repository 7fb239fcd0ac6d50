//! `/sites/{site}/settings` (admins; anyone else gets the 404 of a site that does not exist): a site's
//! name, domains, time zone, languages and options as fields, its categories (with services and
//! cookies) and banner texts as TOML, "ask every visitor again" (a revision bump, confirmed), removal
//! (confirmed by typing the site id) and the embed snippet. Also `POST /sites`, "Add a site".
//!
//! The form is validated by the very loader of `assent site update` ([`site_form`]), so both accept and
//! refuse the same settings with the same messages. Writes are those of the CLI too ([`sites`] through the
//! store), and the registry is reloaded at once (the writer notices by the sites generation).
//!
//! [`sites`]: crate::storage::sites
//! [`site_form`]: crate::domain::dashboard::site_form

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde_json::{Value, json};

use super::auth::{Current, check_form, require};
use super::pages::chrome;
use super::{Fail, Page, form, query_pairs, render_status, respond, see_other};
use crate::domain::dashboard::site_form::{OPTIONS, load, values_of, values_posted};
use crate::error::Error;
use crate::state::{AppState, SiteEntry};

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
            let cfg = match load(&entry.id, &entry.config, entry.revision, &values) {
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
