//! What the operator's tools read: `GET /metrics` (for Prometheus; who may read it is the `metrics`
//! setting) and `GET /api/openapi.json` (the API's description, generated from the handlers).

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::{Error, Result};
use crate::metrics::{CLASSIC, MetricsAccess, OPENMETRICS, to_classic};
use crate::state::AppState;

/// Whether this request may read the metrics: the setting allows everyone, or the client is on the
/// loopback interface (after the trusted-proxy rules: a client behind a local proxy is not), or it sent
/// the configured bearer token.
fn allowed(req: &HttpRequest, state: &AppState) -> Result<()> {
    let token_sent = || {
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
    };
    match state.settings.metrics {
        MetricsAccess::Off => Err(Error::NotFound(
            "metrics are off (setting metrics = off)".into(),
        )),
        MetricsAccess::Public => Ok(()),
        MetricsAccess::Local => {
            let by_token = state
                .settings
                .metrics_token
                .as_ref()
                .zip(token_sent())
                .is_some_and(|(t, sent)| t.matches(sent.trim()));
            if by_token || super::body::client_net(req, state).is_loopback() {
                Ok(())
            } else {
                Err(Error::Forbidden(
                    "metrics are served to loopback clients, or with the bearer token of the \
                     metrics_token setting (setting metrics = local)"
                        .into(),
                ))
            }
        }
    }
}

/// `GET /metrics`
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operator",
    summary = "Server metrics for Prometheus",
    description = "OpenMetrics 1.0 text for clients that accept `application/openmetrics-text` (Prometheus \
        does), Prometheus's text format 0.0.4 otherwise: requests by route pattern \
        and status, the writer's queue depth, batch sizes and commit times, events stored and refused by \
        reason, consent decisions by action, erasures and retention runs, database size. Labels never hold \
        a path, an address or a consent id. Served to loopback clients by default (setting `metrics`: \
        `off`, `local`, `public`; `metrics_token` for a bearer token).",
    responses(
        (status = 200, description = "The metrics", content(
            (String = "application/openmetrics-text"),
            (String = "text/plain"),
        )),
        (status = 403, description = "Not a loopback client and no valid token", body = crate::error::ErrorBody),
        (status = 404, description = "Metrics are off", body = crate::error::ErrorBody),
    ),
    security((), ("metrics_token" = []))
)]
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse> {
    allowed(&req, &state)?;
    // The other figures stay readable while the database cannot tell its size.
    let database_bytes = state.store.database_bytes().await.unwrap_or_default();
    let text = state
        .metrics
        .render(state.store.queue_depth(), database_bytes);
    let openmetrics = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let (content_type, text) = if openmetrics {
        (OPENMETRICS, text)
    } else {
        (CLASSIC, to_classic(&text))
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::VARY, "Accept"))
        .body(text))
}

/// `GET /api/openapi.json`
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "operator",
    summary = "This description of the HTTP API (OpenAPI 3.1)",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn openapi() -> HttpResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let doc = DOC.get_or_init(super::openapi::json);
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.as_str())
}
