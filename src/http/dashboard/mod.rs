//! The dashboard: login, the list of sites, a site's figures, breakdowns and exports, and the settings
//! page. Server-rendered (templates in `assets/dashboard/`, one stylesheet and one small script of its own
//! under `/assets/`), every page with a strict Content-Security-Policy and no caching. Every figure comes
//! from the statistics engine through [`data::run_panels`].

pub mod archive;
pub mod auth;
pub mod consent;
pub mod consent_log;
pub mod data;
pub mod lists;
pub mod pages;
pub mod settings;
pub mod site_settings;

use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder, web};
use minijinja::{AutoEscape, Environment};

use crate::domain::dashboard::auth::SESSION_COOKIE;
use crate::error::Error;

/// The routes (a line in [`crate::http::configure`] adds them).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(page("/", pages::index))
        .service(
            web::resource("/login")
                .route(web::get().to(auth::login_form))
                .route(web::head().to(auth::login_form))
                .route(web::post().to(auth::login))
                .default_service(web::to(not_allowed)),
        )
        .service(post("/logout", auth::logout))
        .service(page("/settings", settings::show))
        .service(post("/settings/password", settings::password))
        .service(post("/settings/users", settings::add_user))
        .service(post("/settings/users/{id}/remove", settings::remove_user))
        .service(post("/settings/keys", settings::create_key))
        .service(post("/settings/keys/{id}/revoke", settings::revoke_key))
        .service(page("/sites/{site}", pages::site))
        .service(page("/sites/{site}/realtime", lists::realtime))
        .service(page("/sites/{site}/consent", consent::page))
        .service(page("/sites/{site}/breakdown", lists::breakdown))
        .service(page("/sites/{site}/export", lists::export))
        .service(page("/sites/{site}/export.zip", archive::export))
        .service(post("/sites", site_settings::add))
        .service(
            page("/sites/{site}/settings", site_settings::show)
                .route(web::post().to(site_settings::save)),
        )
        .service(post(
            "/sites/{site}/settings/ask-again",
            site_settings::ask_again,
        ))
        .service(post("/sites/{site}/settings/remove", site_settings::remove))
        .service(page("/sites/{site}/consents", consent_log::page))
        .service(page("/sites/{site}/consents.csv", consent_log::export))
        .service(page(
            "/sites/{site}/consents/revisions/{revision}",
            consent_log::revision,
        ))
        .service(page("/assets/dashboard.css", styles))
        .service(page("/assets/dashboard.js", script));
}

fn page<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(web::to(not_allowed))
}

fn post<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(not_allowed))
}

async fn not_allowed() -> HttpResponse {
    error_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "This address does not take that method.",
    )
}

/// The stylesheet and the script: fixed routes, cacheable for an hour.
async fn styles() -> HttpResponse {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../../web/dashboard.css"),
    )
}

async fn script() -> HttpResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../../web/dashboard.js"),
    )
}

fn asset(kind: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(kind)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

/// The Content-Security-Policy of every dashboard page: only this server's own script, styles and
/// images; no inline script or style; no framing; forms post here only.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the headers every dashboard page carries. Pages show data: nothing is cached.
pub fn secure(mut res: HttpResponse) -> HttpResponse {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Why a dashboard request did not get its page.
#[derive(Debug)]
pub enum Fail {
    /// Not logged in (or the session ended): to the login page.
    Login,
    Error(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Error(e)
    }
}

pub type Page = Result<HttpResponse, Fail>;

/// A handler's outcome as the response: errors as a small HTML page, with the security headers.
pub fn respond(req: &HttpRequest, outcome: Page) -> HttpResponse {
    match outcome {
        Ok(mut res) => {
            // A live session's cookie is sent again, so that it lasts as long as the session is used
            // (unless this answer sets or clears it itself).
            let sets_session = res
                .headers()
                .get_all(header::SET_COOKIE)
                .any(|v| v.as_bytes().starts_with(SESSION_COOKIE.as_bytes()));
            let refresh = req.extensions().get::<auth::SessionCookie>().cloned();
            if let Some(auth::SessionCookie(value)) = refresh.filter(|_| !sets_session)
                && let Ok(v) = HeaderValue::from_str(&value)
            {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            secure(res)
        }
        Err(Fail::Login) => secure(see_other("/login")),
        Err(Fail::Error(e)) => {
            let status = actix_web::ResponseError::status_code(&e);
            let message = if status.is_server_error() {
                tracing::error!(error = %e, "dashboard request failed");
                "Something went wrong on the server; the server log says what.".to_string()
            } else if status == StatusCode::NOT_FOUND {
                // The same answer for a site that does not exist and one this user may not see.
                "There is nothing here, or you may not see it.".to_string()
            } else {
                e.to_string()
            };
            error_page(status, &message)
        }
    }
}

/// A small HTML page for an error, with the security headers.
fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let html = render_str(
        "error.html",
        minijinja::context! { title => status.canonical_reason().unwrap_or("Error"), status => status.as_u16(), message },
    )
    .unwrap_or_else(|_| "error".into());
    secure(
        HttpResponseBuilder::new(status)
            .content_type("text/html; charset=utf-8")
            .body(html),
    )
}

pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Every dashboard template is HTML: escape everything, whatever the name.
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        for (name, source) in TEMPLATES {
            // Compiled in and parsed by the tests, so adding them cannot fail.
            env.add_template(name, source)
                .expect("dashboard templates parse (tested)");
        }
        env
    })
}

pub const TEMPLATES: [(&str, &str); 14] = [
    (
        "site_settings.html",
        include_str!("../../../assets/dashboard/site_settings.html"),
    ),
    (
        "consent_log.html",
        include_str!("../../../assets/dashboard/consent_log.html"),
    ),
    (
        "consent_revision.html",
        include_str!("../../../assets/dashboard/consent_revision.html"),
    ),
    (
        "consent.html",
        include_str!("../../../assets/dashboard/consent.html"),
    ),
    (
        "controls.html",
        include_str!("../../../assets/dashboard/controls.html"),
    ),
    (
        "rows.html",
        include_str!("../../../assets/dashboard/rows.html"),
    ),
    (
        "base.html",
        include_str!("../../../assets/dashboard/base.html"),
    ),
    (
        "error.html",
        include_str!("../../../assets/dashboard/error.html"),
    ),
    (
        "login.html",
        include_str!("../../../assets/dashboard/login.html"),
    ),
    (
        "index.html",
        include_str!("../../../assets/dashboard/index.html"),
    ),
    (
        "site.html",
        include_str!("../../../assets/dashboard/site.html"),
    ),
    (
        "breakdown.html",
        include_str!("../../../assets/dashboard/breakdown.html"),
    ),
    (
        "settings.html",
        include_str!("../../../assets/dashboard/settings.html"),
    ),
    (
        "realtime.html",
        include_str!("../../../assets/dashboard/realtime.html"),
    ),
];

fn render_str(name: &str, ctx: minijinja::Value) -> Result<String, Error> {
    templates()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| Error::Internal(format!("template {name}: {e}")))
}

/// A page from its template, 200.
pub fn render(name: &str, ctx: minijinja::Value) -> Page {
    render_status(name, ctx, StatusCode::OK)
}

pub fn render_status(name: &str, ctx: minijinja::Value, status: StatusCode) -> Page {
    let html = render_str(name, ctx)?;
    Ok(HttpResponseBuilder::new(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// The query string's pairs, repeated keys kept.
pub fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// A posted form's fields (the last of a repeated name wins; see [`form_all`] for lists).
pub fn form(body: &[u8]) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Every value of a repeated form field.
pub fn form_all(body: &[u8], name: &str) -> Vec<String> {
    url::form_urlencoded::parse(body)
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// A cookie of the request.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure when the server is reached over https.
pub fn set_cookie(secure: bool, name: &str, value: &str, max_age: i64) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn templates_parse() {
        for (name, _) in super::TEMPLATES {
            assert!(super::templates().get_template(name).is_ok(), "{name}");
        }
    }
}
