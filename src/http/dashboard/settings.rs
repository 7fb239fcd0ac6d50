//! `/settings`: the user's password and Stats API keys; for admins, the users (added with a role and, for
//! viewers, their sites; removed). Every form carries the session's CSRF token.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde_json::json;

use super::auth::{Current, add_session_cookie, check_form, require};
use super::{Fail, Page, form, form_all, query_pairs, render_status, respond, see_other};
use crate::error::Error;
use crate::state::AppState;

async fn page(
    state: &AppState,
    me: &Current,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    new_key: Option<String>,
) -> Page {
    let keys: Vec<serde_json::Value> = state
        .store
        .keys(me.user.id)
        .await?
        .into_iter()
        .map(|k| {
            let day = crate::domain::stats::period::Zone::utc().date(k.created_at);
            json!({"id": k.id, "name": k.name, "created": crate::domain::stats::period::format_date(day)})
        })
        .collect();
    let users = if me.user.admin {
        state.store.users().await?
    } else {
        Vec::new()
    };
    let sites: Vec<serde_json::Value> = state
        .sites
        .ids()
        .into_iter()
        .map(|id| json!({"id": id}))
        .collect();
    render_status(
        "settings.html",
        context! {
            title => "Settings",
            user => me.user.email.clone(),
            user_id => me.user.id,
            admin => me.user.admin,
            csrf => me.csrf(),
            notice,
            error,
            new_key,
            keys => Serde(keys),
            users => Serde(users),
            sites => Serde(sites),
        },
        status,
    )
}

/// `GET /settings`
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    respond(
        &req,
        async {
            let me = require(&req, &state).await?;
            let notice = query_pairs(&req)
                .into_iter()
                .find(|(k, _)| k == "done")
                .map(|(_, v)| match v.as_str() {
                    "password" => "Your password was changed; your other sessions were ended.",
                    "user_added" => "The user was added.",
                    "user_removed" => "The user was removed, with their sessions and keys.",
                    "key_revoked" => "The key was revoked.",
                    _ => "Done.",
                })
                .map(String::from);
            page(&state, &me, StatusCode::OK, notice, None, None).await
        }
        .await,
    )
}

/// The session and the form of a POST, its CSRF token checked.
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

/// A refused form: the settings page again with the message, and the error's status.
async fn refused(state: &AppState, me: &Current, e: Error) -> Page {
    let status = actix_web::ResponseError::status_code(&e);
    if status.is_server_error() {
        return Err(Fail::Error(e));
    }
    page(state, me, status, None, Some(e.to_string()), None).await
}

/// `POST /settings/password`: needs the current password; ends every session of the user and opens a
/// new one here.
pub async fn password(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        &req,
        async {
            let (me, f) = posted(&req, &state, &body).await?;
            let get = |k: &str| f.get(k).cloned().unwrap_or_default();
            if get("new_password") != get("confirm") {
                return refused(
                    &state,
                    &me,
                    Error::bad("The new password and its confirmation differ."),
                )
                .await;
            }
            match state
                .store
                .change_password(
                    me.user.id,
                    get("current"),
                    get("new_password"),
                    crate::now(),
                )
                .await
            {
                Ok(token) => {
                    let mut res = see_other("/settings?done=password");
                    add_session_cookie(&mut res, &state, &token)?;
                    Ok(res)
                }
                Err(e) => refused(&state, &me, e).await,
            }
        }
        .await,
    )
}

fn admin_only(me: &Current) -> Result<(), Fail> {
    if me.user.admin {
        Ok(())
    } else {
        Err(Fail::Error(Error::Forbidden(
            "Only admins manage users.".into(),
        )))
    }
}

/// `POST /settings/users` (admins): `email`, `password`, `role` (`admin` or `viewer`), `site` repeated.
pub async fn add_user(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        &req,
        async {
            let (me, f) = posted(&req, &state, &body).await?;
            admin_only(&me)?;
            let admin = f.get("role").map(String::as_str) == Some("admin");
            let sites: Vec<String> = form_all(&body, "site")
                .into_iter()
                .filter(|s| state.sites.get(s).is_some())
                .collect();
            let get = |k: &str| f.get(k).cloned().unwrap_or_default();
            match state
                .store
                .add_user(get("email"), get("password"), admin, sites, crate::now())
                .await
            {
                Ok(()) => Ok(see_other("/settings?done=user_added")),
                Err(e) => refused(&state, &me, e).await,
            }
        }
        .await,
    )
}

/// `POST /settings/users/{id}/remove` (admins; not oneself).
pub async fn remove_user(
    req: HttpRequest,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        &req,
        async {
            let (me, _) = posted(&req, &state, &body).await?;
            admin_only(&me)?;
            let id = path.into_inner();
            if id == me.user.id {
                return refused(&state, &me, Error::bad("You cannot remove yourself.")).await;
            }
            if !state.store.remove_user(id).await? {
                return Err(Fail::Error(Error::NotFound("no such user".into())));
            }
            Ok(see_other("/settings?done=user_removed"))
        }
        .await,
    )
}

/// `POST /settings/keys`: a new Stats API key for oneself, shown once.
pub async fn create_key(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        &req,
        async {
            let (me, f) = posted(&req, &state, &body).await?;
            let name = f.get("name").map(|n| n.trim()).unwrap_or("").to_string();
            if name.is_empty() || name.chars().count() > 100 {
                return refused(
                    &state,
                    &me,
                    Error::bad("A key needs a name of 1 to 100 characters."),
                )
                .await;
            }
            let key = state
                .store
                .create_key_for(me.user.id, name, crate::now())
                .await?;
            page(
                &state,
                &me,
                StatusCode::OK,
                Some("Here is the new key. Copy it now: it is not shown again.".into()),
                None,
                Some(key),
            )
            .await
        }
        .await,
    )
}

/// `POST /settings/keys/{id}/revoke`: one of one's own keys.
pub async fn revoke_key(
    req: HttpRequest,
    path: web::Path<i64>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(
        &req,
        async {
            let (me, _) = posted(&req, &state, &body).await?;
            if !state
                .store
                .revoke_key(me.user.id, path.into_inner())
                .await?
            {
                return Err(Fail::Error(Error::NotFound("no such key".into())));
            }
            Ok(see_other("/settings?done=key_revoked"))
        }
        .await,
    )
}
