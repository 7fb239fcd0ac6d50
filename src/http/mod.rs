//! HTTP handlers: extract, call the domain and the store, respond. No SQL here. Also the two pieces of
//! middleware every route gets: a request log that never records addresses or consent ids, and CORS for
//! the API limited to the sites' domains.

pub mod body;
pub mod consent;
pub mod event;
pub mod pages;
pub mod script;
pub mod visitor;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// The routes, shared by `main` and the tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(pages::healthz))
        .route("/demo", web::get().to(pages::demo))
        .route("/s/demo-page.js", web::get().to(pages::demo_script))
        .route("/s/assent.css", web::get().to(script::styles))
        .route("/s/{site}/assent.js", web::get().to(script::script))
        .route("/s/{site}/privacy", web::get().to(pages::privacy))
        .service(
            web::scope("/api")
                .route("/consent", web::post().to(consent::record))
                .route("/consent/{id}", web::get().to(consent::show))
                .route("/event", web::post().to(event::collect))
                .route("/visitor/{id}", web::get().to(visitor::export))
                .route("/visitor/{id}", web::delete().to(visitor::erase))
                .default_service(web::route().to(api_default)),
        );
}

/// Preflights for any API route, and a JSON 404/405 for everything else under /api.
async fn api_default(req: actix_web::HttpRequest) -> HttpResponse {
    if req.method() == actix_web::http::Method::OPTIONS {
        return HttpResponse::NoContent()
            .insert_header(("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"))
            .insert_header(("Access-Control-Allow-Headers", "Content-Type"))
            .insert_header(("Access-Control-Max-Age", "86400"))
            .finish();
    }
    HttpResponse::NotFound().json(
        serde_json::json!({ "error": format!("no API endpoint {} {}", req.method(), req.path()) }),
    )
}

/// Adds CORS headers to API answers for origins on a known site's domain, and logs the request by its
/// route pattern (paths can carry consent ids; addresses are never logged).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let origin = req.headers().get(header::ORIGIN).cloned();
    let api = req.path().starts_with("/api/");
    let allowed = api
        && origin.as_ref().is_some_and(|o| {
            let state = req.app_data::<web::Data<AppState>>();
            matches!((body::host_of_origin(o), state), (Some(h), Some(s)) if s.sites.any_allows_host(&h))
        });
    // Resolving the route pattern costs a lookup per request; only do it when the line will be written.
    let pattern = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| req.match_pattern().unwrap_or_else(|| "(no route)".into()));
    let mut res = next.call(req).await?;
    if allowed && let Some(o) = origin {
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.append(header::VARY, HeaderValue::from_static("Origin"));
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
