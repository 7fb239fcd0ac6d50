//! `GET /api/visitor/{id}` and `DELETE /api/visitor/{id}`: a visitor's access to and erasure of
//! everything stored about their consent id. Holding the id is the authorisation.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::{Error, Result};
use crate::http::{body, consent::history_json};
use crate::state::AppState;
use crate::storage::{consents, events, sites};

pub async fn export(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    // Limited like ingestion: each call reads (or, for erasure and export, writes) the database.
    body::rate_limit(&req, &state)?;
    let id = body::parse_consent_id(&path)?;
    // Open visits' rows lag their events by a few seconds; the visitor sees them as they are now.
    state.store.flush().await?;
    let data = state
        .store
        .read(move |c| {
            let history = consents::history(c, id)?;
            let mut visits = Vec::new();
            let mut evs = Vec::new();
            for site in consents::sites_of(c, id)? {
                if let Some(row) = sites::get(c, &site)? {
                    let key = crate::domain::visits::visitor_key(&row.secret, id);
                    for v in events::visits_of(c, &site, key)? {
                        let mut j = serde_json::to_value(v).unwrap_or_default();
                        j["site"] = serde_json::Value::from(site.clone());
                        visits.push(j);
                    }
                    for e in events::events_of(c, &site, key)? {
                        let mut j = serde_json::to_value(e).unwrap_or_default();
                        j["site"] = serde_json::Value::from(site.clone());
                        evs.push(j);
                    }
                }
            }
            Ok((history, visits, evs))
        })
        .await?;
    let (history, visits, evs) = data;
    if history.is_empty() {
        return Err(Error::NotFound(
            "no data for this consent id (unknown or erased)".into(),
        ));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "consent_id": id.to_string(),
        "consents": history_json(&history),
        "visits": visits,
        "events": evs,
    })))
}

pub async fn erase(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    // Limited like ingestion: each call reads (or, for erasure and export, writes) the database.
    body::rate_limit(&req, &state)?;
    let id = body::parse_consent_id(&path)?;
    let report = state.store.erase(id).await?;
    if report.consent_records == 0 && report.events == 0 && report.visits == 0 {
        return Err(Error::NotFound(
            "no data for this consent id (unknown or already erased)".into(),
        ));
    }
    Ok(HttpResponse::NoContent().finish())
}
