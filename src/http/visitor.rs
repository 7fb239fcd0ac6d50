//! `GET /api/visitor/{id}` and `DELETE /api/visitor/{id}`: a visitor's access to and erasure of
//! everything stored about their consent id. Holding the id is the authorisation.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::{Error, Result};
use crate::http::{body, consent::history_json, for_site};
use crate::state::AppState;

/// `GET /api/visitor/{id}`
#[utoipa::path(
    get,
    path = "/api/visitor/{id}",
    tag = "visitor",
    summary = "Everything stored about a consent id",
    description = "Holding the id is the authorisation. The consent history, and on every site the visits \
        and events of the pseudonymous visitor key the id has there.",
    params(("id" = String, Path, description = "The consent id (32 lower-case hex digits)")),
    responses(
        (status = 200, description = "The data, as JSON: `consent_id`, `consents`, `visits`, `events`", body = Object),
        (status = 400, description = "Not a consent id", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown or erased", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    )
)]
pub async fn export(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let id = body::consent_id_from_path(&req, &state, &path)?;
    let data = state.store.visitor_export(id).await?;
    if data.is_empty() {
        return Err(Error::NotFound(
            "no data for this consent id (unknown or erased)".into(),
        ));
    }
    let site = data
        .consents
        .first()
        .map(|c| c.site.clone())
        .or_else(|| data.visits.first().map(|v| v.site.clone()));
    let res = HttpResponse::Ok().json(serde_json::json!({
        "consent_id": id.to_string(),
        "consents": history_json(&data.consents),
        "visits": data.visits,
        "events": data.events,
    }));
    Ok(match site.and_then(|s| state.sites.get(&s)) {
        Some(site) => for_site(res, site),
        None => res,
    })
}

/// `DELETE /api/visitor/{id}`
#[utoipa::path(
    delete,
    path = "/api/visitor/{id}",
    tag = "visitor",
    summary = "Erase everything derived from a consent id",
    description = "Answered once the data is gone from the database files too (GDPR art. 17).",
    params(("id" = String, Path, description = "The consent id (32 lower-case hex digits)")),
    responses(
        (status = 204, description = "Erased"),
        (status = 400, description = "Not a consent id", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown or already erased", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
        (status = 503, description = "Saturated (Retry-After)", body = crate::error::ErrorBody),
    )
)]
pub async fn erase(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let id = body::consent_id_from_path(&req, &state, &path)?;
    // Whose pages may read the answer: the site the id was given on, while its records still say so.
    let site = state.store.latest_consent(id).await?.map(|c| c.site);
    let report = state.store.erase(id).await?;
    if report.is_empty() {
        return Err(Error::NotFound(
            "no data for this consent id (unknown or already erased)".into(),
        ));
    }
    let res = HttpResponse::NoContent().finish();
    Ok(match site.and_then(|s| state.sites.get(&s)) {
        Some(site) => for_site(res, site),
        None => res,
    })
}
