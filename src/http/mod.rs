//! HTTP handlers: extract, call the domain and the store, respond. No SQL here. Also the middleware every
//! route gets: a request log that never records addresses or consent ids, the headers every API answer
//! carries (no caching of personal data, no sniffing), and CORS for each site's own pages on that site's
//! data only.

pub mod body;
pub mod connections;
pub mod consent;
pub mod dashboard;
pub mod event;
pub mod pages;
pub mod script;
pub mod stats;
pub mod visitor;

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::state::{AppState, SiteEntry};

/// The routes, shared by `main` and the tests. Each path is a resource, so a method it does not serve
/// gets 405, and `HEAD` is answered wherever `GET` is.
pub fn configure(cfg: &mut web::ServiceConfig) {
    dashboard::configure(cfg);
    cfg.service(get("/healthz", pages::healthz))
        .service(get("/demo", pages::demo))
        .service(get("/s/demo-page.js", pages::demo_script))
        .service(get("/s/assent.css", script::styles))
        .service(get("/s/{site}/assent.js", script::script))
        .service(get("/s/{site}/privacy", pages::privacy))
        .service(
            web::scope("/api")
                .service(
                    web::resource("/consent")
                        .route(web::post().to(consent::record))
                        .default_service(web::to(api_other)),
                )
                .service(
                    web::resource("/consent/{id}")
                        .route(web::get().to(consent::show))
                        .default_service(web::to(api_other)),
                )
                .service(
                    web::resource("/event")
                        .route(web::post().to(event::collect))
                        .default_service(web::to(api_other)),
                )
                .service(
                    web::resource("/visitor/{id}")
                        .route(web::get().to(visitor::export))
                        .route(web::delete().to(visitor::erase))
                        .default_service(web::to(api_other)),
                )
                .service(
                    web::resource("/v2/query")
                        .route(web::post().to(stats::query_v2))
                        .default_service(web::to(api_other)),
                )
                .service(
                    web::resource("/v2/queries")
                        .route(web::post().to(stats::queries_v2))
                        .default_service(web::to(api_other)),
                )
                .service(
                    web::resource("/v1/stats/realtime/visitors")
                        .route(web::get().to(stats::realtime_v1))
                        .default_service(web::to(api_other)),
                )
                .service(
                    web::resource("/v1/stats/{endpoint}")
                        .route(web::get().to(stats::stats_v1))
                        .default_service(web::to(api_other)),
                )
                .default_service(web::to(api_other)),
        );
}

/// A page or asset: `GET` and `HEAD`, 405 for other methods.
fn get<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler.clone()))
        .route(web::head().to(handler))
        .default_service(web::to(method_not_allowed))
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .content_type("text/plain; charset=utf-8")
        .body("method not allowed")
}

/// Preflights for any API route, and JSON 404/405 answers for what the API does not serve.
async fn api_other(req: HttpRequest) -> HttpResponse {
    if req.method() == Method::OPTIONS {
        return HttpResponse::NoContent()
            .insert_header(("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"))
            .insert_header(("Access-Control-Allow-Headers", "Content-Type"))
            .insert_header(("Access-Control-Max-Age", "86400"))
            .finish();
    }
    let known = req.match_pattern().is_some_and(|p| p != "/api");
    let (status, error) = if known {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not allowed on {}", req.method(), req.path()),
        )
    } else {
        (
            StatusCode::NOT_FOUND,
            format!("no API endpoint {} {}", req.method(), req.path()),
        )
    };
    HttpResponse::build(status).json(serde_json::json!({ "error": error }))
}

/// Marks an answer as being about a site's data, so its own pages (and only they) may read it.
pub struct CorsSite(pub Arc<SiteEntry>);

/// Attaches the site an answer is about (see [`CorsSite`]).
pub fn for_site(mut res: HttpResponse, site: Arc<SiteEntry>) -> HttpResponse {
    res.extensions_mut().insert(CorsSite(site));
    res
}

/// The API's headers and CORS, and the request log by route pattern (paths can carry consent ids;
/// addresses are never logged).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let api = req.path().starts_with("/api/");
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    // Resolving the route pattern costs a lookup per request; only do it when the line will be written.
    let pattern = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| req.match_pattern().unwrap_or_else(|| "(no route)".into()));
    let mut res = next.call(req).await?;
    if api {
        let allowed = origin.as_deref().filter(|o| {
            match res.response().extensions().get::<CorsSite>() {
                Some(site) => site.0.config.allows_origin(o),
                // A preflight names no site; it reveals nothing, so any site's page may get one.
                None => {
                    method == Method::OPTIONS
                        && state.as_ref().is_some_and(|s| s.sites.any_allows_origin(o))
                }
            }
        });
        let allowed = allowed.and_then(|o| HeaderValue::from_str(o).ok());
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(o) = allowed {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        }
    }
    if let Some(pattern) = pattern {
        tracing::debug!(
            method = %method,
            route = %pattern,
            status = res.status().as_u16(),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
    }
    Ok(res)
}
