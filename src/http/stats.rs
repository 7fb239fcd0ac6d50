//! The Stats API, compatible with Plausible's: v2 `POST /api/v2/query` and v1
//! `GET /api/v1/stats/aggregate|timeseries|breakdown|realtime/visitors`, with `Authorization: Bearer KEY`.
//! A key reads its user's sites only (any other answers 401, as Plausible does, so a key cannot learn
//! which sites exist), 600 requests an hour; `Accept: text/csv` gets CSV.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use crate::domain::stats::csv;
use crate::domain::stats::engine::Answer;
use crate::domain::stats::period::{Clock, Zone};
use crate::domain::stats::query::Query;
use crate::domain::stats::{plausible, plausible_v1};
use crate::error::{Error, Result};
use crate::state::AppState;

/// Largest v2 request body.
const MAX_QUERY_BODY: usize = 64 * 1024;

const UNAUTHORIZED: &str = "Invalid API key or site ID. Please make sure you're using a valid API key with access to the site you've requested.";

fn unauthorized() -> Error {
    Error::Unauthorized(UNAUTHORIZED.into())
}

/// The key of the request, checked: its owner may read `site`, and it is within its hourly limit.
async fn authorize(req: &HttpRequest, state: &AppState, site: &str) -> Result<()> {
    let key = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .ok_or_else(|| {
            Error::Unauthorized(
                "Missing API key. Please use a valid Plausible API key as a Bearer Token.".into(),
            )
        })?;
    let owner = state
        .store
        .key_owner(key.to_string())
        .await?
        .ok_or_else(unauthorized)?;
    if !state.stats_keys.allow(owner.key) {
        return Err(Error::TooManyRequests(
            "Too many API requests: the limit is 600 an hour per key.".into(),
        ));
    }
    let allowed = owner
        .sites
        .as_ref()
        .is_none_or(|s| s.iter().any(|x| x == site));
    if !allowed || state.sites.get(site).is_none() {
        return Err(unauthorized());
    }
    Ok(())
}

/// "Now" and "today" for a site: its time zone and the start of its data.
async fn clock(state: &AppState, site: &str) -> Result<Clock> {
    let entry = state.sites.site(site)?;
    let zone = Zone::parse(&entry.config.timezone).unwrap_or_else(Zone::utc);
    let first = state.store.first_visit(site.to_string()).await?;
    Ok(Clock {
        now: crate::now(),
        zone,
        first_day: first.map(|t| zone.day(t)),
    })
}

fn wants_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"))
}

fn csv_response(query: &Query, answer: &Answer) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .body(csv::table(
            &query.dimensions,
            &query.metrics,
            &answer.table.rows,
        ))
}

async fn read_body(payload: web::Payload) -> Result<serde_json::Value> {
    let mut body = web::BytesMut::new();
    let mut payload = payload;
    let read = async {
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|e| Error::bad(format!("could not read the request body: {e}")))?;
            if body.len() + chunk.len() > MAX_QUERY_BODY {
                return Err(Error::PayloadTooLarge(MAX_QUERY_BODY));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    tokio::time::timeout(super::body::BODY_TIMEOUT, read)
        .await
        .map_err(|_| Error::RequestTimeout)??;
    serde_json::from_slice(&body).map_err(|e| Error::bad(format!("invalid JSON body: {e}")))
}

/// `POST /api/v2/query`
#[utoipa::path(
    post,
    path = "/api/v2/query",
    tag = "stats",
    summary = "Stats API v2 query (Plausible's shape)",
    description = "Body: `site_id`, `metrics`, `date_range`, `dimensions`, `filters`, `order_by`, `include`, \
        `pagination`, as Plausible's Stats API v2. `Accept: text/csv` answers CSV.",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "`results`, `meta` and `query`, as Plausible answers", body = Object),
        (status = 400, description = "A bad parameter, named", body = crate::error::ErrorBody),
        (status = 401, description = "No valid key for this site", body = crate::error::ErrorBody),
        (status = 429, description = "Over the key's 600 requests an hour", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn query_v2(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let body = read_body(payload).await?;
    let site = plausible::site_id(&body).map_err(Error::BadRequest)?;
    authorize(&req, &state, &site).await?;
    let clock = clock(&state, &site).await?;
    let request = plausible::parse(&body, &clock).map_err(Error::BadRequest)?;
    let answer = state.store.stats(request.query.clone()).await?;
    if wants_csv(&req) {
        return Ok(csv_response(&request.query, &answer));
    }
    Ok(HttpResponse::Ok().json(plausible::response(&request, &answer)))
}

/// Most queries one `POST /api/v2/queries` may carry.
const MAX_BATCH: usize = 30;

/// `POST /api/v2/queries` (an Assent extension): a JSON array of v2 query bodies, answered as an array of
/// v2 responses in the same order. The rows of each period are read once for the whole set, which is how a
/// dashboard asks. Each query counts against the key's hourly limit; any bad query fails the whole request
/// with a 400 naming its position.
#[utoipa::path(
    post,
    path = "/api/v2/queries",
    tag = "stats",
    summary = "Up to 30 Stats API v2 queries at once (an Assent extension)",
    request_body(content = Vec<Object>, content_type = "application/json"),
    responses(
        (status = 200, description = "One v2 response per query, in order", body = Vec<Object>),
        (status = 400, description = "A bad parameter, named", body = crate::error::ErrorBody),
        (status = 401, description = "No valid key for this site", body = crate::error::ErrorBody),
        (status = 429, description = "Over the key's 600 requests an hour", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn queries_v2(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let body = read_body(payload).await?;
    let bodies = body
        .as_array()
        .filter(|a| !a.is_empty() && a.len() <= MAX_BATCH)
        .ok_or_else(|| {
            Error::bad(format!(
                "the body must be a JSON array of 1 to {MAX_BATCH} v2 queries"
            ))
        })?;
    let mut requests = Vec::with_capacity(bodies.len());
    for (i, body) in bodies.iter().enumerate() {
        let site =
            plausible::site_id(body).map_err(|e| Error::BadRequest(format!("[{i}]: {e}")))?;
        authorize(&req, &state, &site).await?;
        let clock = clock(&state, &site).await?;
        requests.push(
            plausible::parse(body, &clock).map_err(|e| Error::BadRequest(format!("[{i}]: {e}")))?,
        );
    }
    let queries = requests.iter().map(|r| r.query.clone()).collect();
    let answers = state.store.stats_batch(queries).await?;
    let mut out = Vec::with_capacity(answers.len());
    for (request, answer) in requests.iter().zip(answers) {
        out.push(plausible::response(request, &answer?));
    }
    Ok(HttpResponse::Ok().json(out))
}

/// `GET /api/v1/stats/{endpoint}`
#[utoipa::path(
    get,
    path = "/api/v1/stats/{endpoint}",
    tag = "stats",
    summary = "Stats API v1 (Plausible's legacy API)",
    params(
        ("endpoint" = String, Path, description = "`aggregate`, `timeseries` or `breakdown`"),
        ("site_id" = String, Query, description = "The site id"),
        ("period" = Option<String>, Query, description = "`day`, `7d`, `30d`, `month`, `6mo`, `12mo` or `custom`"),
        ("date" = Option<String>, Query, description = "A day (`YYYY-MM-DD`), or two separated by a comma for `custom`"),
        ("metrics" = Option<String>, Query, description = "Comma list: `visitors visits pageviews views_per_visit bounce_rate visit_duration events`"),
        ("property" = Option<String>, Query, description = "For breakdown: e.g. `event:page`, `visit:source`"),
        ("filters" = Option<String>, Query, description = "e.g. `event:page==/a;visit:country==FR`"),
        ("limit" = Option<u32>, Query),
        ("page" = Option<u32>, Query),
    ),
    responses(
        (status = 200, description = "`{\"results\": ...}` as Plausible answers; CSV for `Accept: text/csv`", body = Object),
        (status = 404, description = "Unknown endpoint", body = crate::error::ErrorBody),
        (status = 400, description = "A bad parameter, named", body = crate::error::ErrorBody),
        (status = 401, description = "No valid key for this site", body = crate::error::ErrorBody),
        (status = 429, description = "Over the key's 600 requests an hour", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn stats_v1(
    req: HttpRequest,
    path: web::Path<String>,
    params: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let endpoint = match path.as_str() {
        "aggregate" => plausible_v1::Endpoint::Aggregate,
        "timeseries" => plausible_v1::Endpoint::Timeseries,
        "breakdown" => plausible_v1::Endpoint::Breakdown,
        other => return Err(Error::NotFound(format!("no v1 stats endpoint {other:?}"))),
    };
    let site = params
        .get("site_id")
        .cloned()
        .ok_or_else(|| Error::bad("site_id: missing (the site's id)"))?;
    authorize(&req, &state, &site).await?;
    let clock = clock(&state, &site).await?;
    let request = plausible_v1::parse(endpoint, &params, &clock).map_err(Error::BadRequest)?;
    let answer = state.store.stats(request.query.clone()).await?;
    if wants_csv(&req) {
        return Ok(csv_response(&request.query, &answer));
    }
    Ok(HttpResponse::Ok().json(plausible_v1::response(&request, &answer)))
}

/// `GET /api/v1/stats/realtime/visitors`: visitors active in the last five minutes, as a bare number.
#[utoipa::path(
    get,
    path = "/api/v1/stats/realtime/visitors",
    tag = "stats",
    summary = "Visitors active in the last five minutes",
    params(("site_id" = String, Query, description = "The site id")),
    responses(
        (status = 200, description = "A bare number", body = u64),
        (status = 400, description = "A bad parameter, named", body = crate::error::ErrorBody),
        (status = 401, description = "No valid key for this site", body = crate::error::ErrorBody),
        (status = 429, description = "Over the key's 600 requests an hour", body = crate::error::ErrorBody),
    ),
    security(("api_key" = []))
)]
pub async fn realtime_v1(
    req: HttpRequest,
    params: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let site = params
        .get("site_id")
        .cloned()
        .ok_or_else(|| Error::bad("site_id: missing (the site's id)"))?;
    authorize(&req, &state, &site).await?;
    let n = state
        .store
        .active_visitors(site, crate::now() - 5 * 60)
        .await?;
    Ok(HttpResponse::Ok().json(n))
}
