//! `GET /api/visitor/{id}` and `DELETE /api/visitor/{id}`: a visitor's access to and erasure of
//! everything stored about their consent id. Holding the id is the authorisation.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::{Error, Result};
use crate::http::{body, consent::history_json};
use crate::state::AppState;

pub async fn export(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let id = body::consent_id_from_path(&req, &state, &path)?;
    let data = state.store.visitor_export(id).await?;
    if data.consents.is_empty() {
        return Err(Error::NotFound(
            "no data for this consent id (unknown or erased)".into(),
        ));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "consent_id": id.to_string(),
        "consents": history_json(&data.consents),
        "visits": data.visits,
        "events": data.events,
    })))
}

pub async fn erase(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let id = body::consent_id_from_path(&req, &state, &path)?;
    let report = state.store.erase(id).await?;
    if report.consent_records == 0 && report.events == 0 && report.visits == 0 {
        return Err(Error::NotFound(
            "no data for this consent id (unknown or already erased)".into(),
        ));
    }
    Ok(HttpResponse::NoContent().finish())
}
