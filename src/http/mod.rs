//! HTTP handlers: extract, call the domain and the store, respond. No SQL here. Also the middleware every
//! route gets: a request id, a request log and request metrics that never record addresses or consent ids
//! (route patterns, not paths), the headers every API answer carries (no caching of personal data, no
//! sniffing), and CORS for each site's own pages on that site's data only.

pub mod body;
pub mod connections;
pub mod consent;
pub mod dashboard;
pub mod event;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod request_id;
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
use tracing::Instrument;

use crate::state::{AppState, SiteEntry};

/// Declares the public API once: [`PUBLIC_ROUTES`] (what the OpenAPI document must describe, checked by
/// a test) and `public_routes`, which registers exactly those. A `page` answers `GET` and `HEAD` and 405
/// otherwise; an `api` route answers its methods, JSON 405s and CORS preflights.
macro_rules! public_api {
    ($($kind:ident $path:literal { $($method:ident: $handler:path),+ $(,)? })*) => {
        /// Every `(method, path)` of the public HTTP API, as registered (`HEAD` goes with each page's `GET`).
        pub const PUBLIC_ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path),)+)*];

        fn public_routes(cfg: &mut web::ServiceConfig) {
            $(cfg.service(public_api!(@resource $kind $path $($method $handler)+));)*
        }
    };
    (@resource page $path:literal get $handler:path) => {
        get($path, $handler)
    };
    (@resource api $path:literal $($method:ident $handler:path)+) => {
        web::resource($path)
            $(.route(web::$method().to($handler)))+
            .default_service(web::to(api_other))
    };
}

// Ingestion first: it is most of the traffic, and each dynamic pattern before it costs a regex match.
public_api! {
    api "/api/event" { post: event::collect }
    api "/api/consent" { post: consent::record }
    page "/healthz" { get: pages::healthz }
    page "/metrics" { get: ops::metrics }
    page "/s/assent.css" { get: script::styles }
    page "/s/{site}/assent.js" { get: script::script }
    page "/s/{site}/privacy" { get: pages::privacy }
    api "/api/openapi.json" { get: ops::openapi }
    api "/api/consent/{id}" { get: consent::show }
    api "/api/visitor/{id}" { get: visitor::export, delete: visitor::erase }
    api "/api/v2/query" { post: stats::query_v2 }
    api "/api/v2/queries" { post: stats::queries_v2 }
    api "/api/v1/stats/realtime/visitors" { get: stats::realtime_v1 }
    api "/api/v1/stats/{endpoint}" { get: stats::stats_v1 }
}

/// The routes, shared by `main` and the tests. Each path is a resource, so a method it does not serve
/// gets 405, and `HEAD` is answered wherever `GET` is.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // The router tries resources in order, and each dynamic pattern costs a regex match: the public API
    // (ingestion, on every page of every site) comes before the dashboard's score of `/sites/{site}/...`
    // pages. No pattern of one overlaps the other's.
    public_routes(cfg);
    dashboard::configure(cfg);
    cfg.service(get("/demo", pages::demo))
        .service(get("/s/demo-page.js", pages::demo_script))
        // Anything else under /api: JSON 404s, and preflights.
        .service(web::scope("/api").default_service(web::to(api_other)));
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

/// The request id, the API's headers and CORS, and the request log and metrics by route pattern (paths
/// can carry consent ids; addresses are never logged).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let from_proxy = state.as_ref().is_some_and(|s| {
        req.peer_addr().is_some_and(|p| {
            crate::domain::network::is_trusted_peer(p.ip(), &s.settings.trusted_proxies)
        })
    });
    let id = request_id::of(req.headers().get(request_id::HEADER), from_proxy);
    // At ERROR so that the span, and the id in it, exists whatever level the log filter lets through.
    let span = tracing::error_span!("request", request_id = %id);
    let mut res = respond(req, next, state, started).instrument(span).await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(header::HeaderName::from_static(request_id::HEADER), v);
    }
    Ok(res)
}

/// The rest of [`middleware`], inside the request's span.
async fn respond(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    state: Option<web::Data<AppState>>,
    started: Instant,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let method = req.method().clone();
    let api = req.path().starts_with("/api/");
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    let mut res = next.call(req).await?;
    // After routing, the matched resource is known and its pattern a few steps away.
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "(no route)".into());
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
    tracing::debug!(
        method = %method,
        route = %route,
        status = res.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    if let Some(state) = &state {
        let status = res.status().as_u16();
        state
            .metrics
            .request(crate::metrics::method_label(&method), route, status);
    }
    Ok(res)
}
