//! Logging in and out, the session of a request, and the CSRF check of every form that changes anything.
//! The login form's token is a random value also set as a cookie (there is no session yet); a session's
//! forms carry a token derived from its session token.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use minijinja::context;

use super::{Fail, Page, cookie, render_status, respond, see_other, set_cookie};
use crate::domain::dashboard::auth::{
    self as rules, IDLE_SECS, LOGIN_COOKIE, SESSION_COOKIE, csrf_of, same, well_formed,
};
use crate::error::Error;
use crate::state::AppState;
use crate::storage::sessions::SessionUser;

/// The `Set-Cookie` value that renews a live session's cookie (see [`super::respond`]).
#[derive(Clone)]
pub struct SessionCookie(pub String);

/// The logged-in user of a request, with their session token.
pub struct Current {
    pub user: SessionUser,
    pub token: String,
}

impl Current {
    /// The CSRF token this session's forms carry.
    pub fn csrf(&self) -> String {
        csrf_of(&self.token)
    }
}

fn secure_cookies(state: &AppState) -> bool {
    state.settings.public_url.starts_with("https://")
}

/// The session of a request, if it has a live one.
pub async fn current(req: &HttpRequest, state: &AppState) -> Result<Option<Current>, Error> {
    let Some(token) = cookie(req, SESSION_COOKIE).filter(|t| well_formed(t)) else {
        return Ok(None);
    };
    let user = state.store.session(token.clone(), crate::now()).await?;
    if user.is_some() {
        let value = set_cookie(secure_cookies(state), SESSION_COOKIE, &token, IDLE_SECS);
        req.extensions_mut().insert(SessionCookie(value));
    }
    Ok(user.map(|user| Current { user, token }))
}

/// The session of a request, or a redirect to the login page.
pub async fn require(req: &HttpRequest, state: &AppState) -> Result<Current, Fail> {
    current(req, state).await?.ok_or(Fail::Login)
}

/// Refuses a form posted from another site: its CSRF token must be this session's, and a browser that
/// says the request is cross-site is believed.
pub fn check_form(req: &HttpRequest, expected: &str, sent: Option<&str>) -> Result<(), Fail> {
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site");
    match sent {
        Some(t) if !cross_site && same(t, expected) => Ok(()),
        _ => Err(Fail::Error(Error::Forbidden(
            "This form is out of date or did not come from this dashboard (CSRF check). Reload the page and try again.".into(),
        ))),
    }
}

/// The login page, with a fresh CSRF token in a cookie and in the form.
fn login_page(state: &AppState, status: StatusCode, error: Option<&str>, email: &str) -> Page {
    let nonce = rules::random_hex::<32>()
        .ok_or_else(|| Error::Internal("no randomness for the login form".into()))?;
    let mut res = render_status(
        "login.html",
        context! { title => "Log in", csrf => nonce.clone(), error, email },
        status,
    )?;
    let value = set_cookie(secure_cookies(state), LOGIN_COOKIE, &nonce, 3600);
    res.headers_mut().append(
        header::SET_COOKIE,
        header::HeaderValue::from_str(&value).map_err(|e| Error::Internal(e.to_string()))?,
    );
    Ok(res)
}

/// `GET /login`
pub async fn login_form(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    respond(
        &req,
        async {
            if current(&req, &state).await?.is_some() {
                return Ok(see_other("/"));
            }
            login_page(&state, StatusCode::OK, None, "")
        }
        .await,
    )
}

/// `POST /login`: checks the form's token, the attempt limits (per client network and per account), then
/// the password; a new session on success.
pub async fn login(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let form = super::form(&body);
    respond(
        &req,
        async {
            let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
            let email = field("email").trim().to_string();
            let expected = cookie(&req, LOGIN_COOKIE).filter(|t| well_formed(t));
            let sent = form.get("csrf").map(String::as_str);
            match expected {
                Some(e) => check_form(&req, &e, sent)?,
                None => {
                    return login_page(
                        &state,
                        StatusCode::FORBIDDEN,
                        Some("The login form expired or cookies are off (CSRF check). Try again."),
                        &email,
                    );
                }
            }
            let net = crate::http::body::client_net(&req, &state);
            let by_net = state.login_nets.allow(net);
            let by_account = state.login_accounts.allow(rules::account_key(&email));
            if !by_net || !by_account {
                tracing::warn!(
                    per = if by_net { "account" } else { "network" },
                    "login attempts limited"
                );
                return login_page(
                    &state,
                    StatusCode::TOO_MANY_REQUESTS,
                    Some("Too many login attempts. Wait a few minutes, then try again."),
                    &email,
                );
            }
            let user = state
                .store
                .check_login(email.clone(), field("password").to_string())
                .await?;
            let Some(user) = user else {
                return login_page(
                    &state,
                    StatusCode::UNAUTHORIZED,
                    Some("Wrong e-mail address or password."),
                    &email,
                );
            };
            let token = state.store.open_session(user, crate::now()).await?;
            let mut res = see_other("/");
            add_session_cookie(&mut res, &state, &token)?;
            let clear = set_cookie(secure_cookies(&state), LOGIN_COOKIE, "", 0);
            res.headers_mut().append(
                header::SET_COOKIE,
                header::HeaderValue::from_str(&clear)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            );
            Ok(res)
        }
        .await,
    )
}

/// Sets the session cookie on a response.
pub fn add_session_cookie(
    res: &mut HttpResponse,
    state: &AppState,
    token: &str,
) -> Result<(), Error> {
    let value = set_cookie(secure_cookies(state), SESSION_COOKIE, token, IDLE_SECS);
    res.headers_mut().append(
        header::SET_COOKIE,
        header::HeaderValue::from_str(&value).map_err(|e| Error::Internal(e.to_string()))?,
    );
    Ok(())
}

/// `POST /logout`: ends the session (with this session's CSRF token).
pub async fn logout(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = super::form(&body);
    respond(
        &req,
        async {
            let me = require(&req, &state).await?;
            check_form(&req, &me.csrf(), form.get("csrf").map(String::as_str))?;
            state.store.close_session(me.token.clone()).await?;
            let mut res = see_other("/login");
            let clear = set_cookie(secure_cookies(&state), SESSION_COOKIE, "", 0);
            res.headers_mut().append(
                header::SET_COOKIE,
                header::HeaderValue::from_str(&clear)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            );
            Ok(res)
        }
        .await,
    )
}
