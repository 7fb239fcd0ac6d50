//! `POST /api/consent` and `GET /api/consent/{id}`: recording a visitor's choice in the append-only log
//! and reading back its latest state.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use time::format_description::well_known::Rfc3339;

use crate::domain::consent::{self, Action, ConsentId, ConsentInput, ConsentRecord};
use crate::error::{Error, Result};
use crate::http::{body, for_site};
use crate::state::AppState;

/// The answer to a recorded choice.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ConsentAnswer {
    consent_id: String,
    revision: u32,
    choices: BTreeMap<String, bool>,
    /// RFC 3339.
    expires_at: String,
}

/// The latest state of a consent id.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ConsentState {
    consent_id: String,
    site: String,
    revision: u32,
    choices: BTreeMap<String, bool>,
    action: Action,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    expires_at: String,
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn state_of(rec: &ConsentRecord) -> ConsentState {
    ConsentState {
        consent_id: rec.consent_id.to_string(),
        site: rec.site.clone(),
        revision: rec.revision,
        choices: rec.choices.clone(),
        action: rec.action,
        created_at: rfc3339(rec.created_at),
        expires_at: rfc3339(rec.expires_at),
    }
}

fn state_json(rec: &ConsentRecord) -> serde_json::Value {
    serde_json::to_value(state_of(rec)).unwrap_or_default()
}

/// `POST /api/consent`
#[utoipa::path(
    post,
    path = "/api/consent",
    tag = "consent",
    summary = "Record a visitor's choice",
    description = "Appends one record to the consent log (consent id, time, site, revision, hash of the texts \
        shown, choices, action, language, page path; no address).",
    request_body = ConsentInput,
    responses(
        (status = 200, description = "Recorded", body = ConsentAnswer),
        (status = 400, description = "Malformed", body = crate::error::ErrorBody),
        (status = 403, description = "Sent from a page that is not the site's", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown site", body = crate::error::ErrorBody),
        (status = 409, description = "Stale policy revision", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 8 KiB", body = crate::error::ErrorBody),
        (status = 415, description = "Not JSON or text/plain", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
        (status = 503, description = "Saturated (Retry-After)", body = crate::error::ErrorBody),
    )
)]
pub async fn record(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let net = body::rate_limit(&req, &state)?;
    let input: ConsentInput = body::read_json(&req, payload).await?;
    let site = state.sites.site(&input.site)?;
    body::check_origin(&req, &site)?;
    if input.revision != site.revision {
        return Err(Error::Conflict(format!(
            "revision {} is not the site's current policy revision {}: show the current banner",
            input.revision, site.revision
        )));
    }
    let choices = consent::resolve_choices(&site.config, input.action, &input.choices)
        .map_err(Error::BadRequest)?;
    let language = input
        .language
        .as_deref()
        .map(consent::language_tag)
        .transpose()
        .map_err(Error::BadRequest)?;
    let page_path = input
        .url
        .as_deref()
        .map(|u| consent::page_path(u, &site.config))
        .transpose()
        .map_err(Error::BadRequest)?;
    let given = input
        .consent_id
        .as_deref()
        .map(body::parse_consent_id)
        .transpose()?;

    // A known id of this site keeps its history; an unknown one (or another site's) gets a fresh id.
    let known = match given {
        Some(id) => state
            .store
            .latest_consent(id)
            .await?
            .filter(|r| r.site == site.id)
            .map(|_| id),
        None => None,
    };
    let consent_id = match known {
        Some(id) => id,
        None => {
            // Each new id is remembered by the consent cache: issuing them is limited far below events.
            if !state.new_ids.allow(net) {
                return Err(Error::RateLimited);
            }
            ConsentId::random().map_err(|e| Error::Internal(e.to_string()))?
        }
    };
    let now = time::OffsetDateTime::from_unix_timestamp(crate::now())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let rec = ConsentRecord {
        consent_id,
        site: site.id.clone(),
        created_at: now,
        revision: site.revision,
        policy_hash: site.policy_hash.clone(),
        choices,
        action: input.action,
        language,
        page_path,
        expires_at: consent::add_months(now, state.settings.consent_months),
    };
    state.store.append_consent(rec.clone()).await?;
    state.metrics.consent(rec.action);
    let res = HttpResponse::Ok().json(ConsentAnswer {
        consent_id: rec.consent_id.to_string(),
        revision: rec.revision,
        expires_at: rfc3339(rec.expires_at),
        choices: rec.choices,
    });
    Ok(for_site(res, site))
}

/// `GET /api/consent/{id}`
#[utoipa::path(
    get,
    path = "/api/consent/{id}",
    tag = "consent",
    summary = "The latest state of a consent id",
    params(("id" = String, Path, description = "The consent id (32 lower-case hex digits)")),
    responses(
        (status = 200, description = "Its latest record", body = ConsentState),
        (status = 400, description = "Not a consent id", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown or erased", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
    )
)]
pub async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let id = body::consent_id_from_path(&req, &state, &path)?;
    let rec = state
        .store
        .latest_consent(id)
        .await?
        .ok_or_else(|| Error::NotFound("no consent with this id (unknown or erased)".into()))?;
    let res = HttpResponse::Ok().json(state_of(&rec));
    Ok(match state.sites.get(&rec.site) {
        Some(site) => for_site(res, site),
        None => res,
    })
}

pub(crate) fn history_json(records: &[ConsentRecord]) -> Vec<serde_json::Value> {
    records
        .iter()
        .map(|r| {
            let mut v = state_json(r);
            v["policy_hash"] = serde_json::Value::from(r.policy_hash.clone());
            v["language"] = serde_json::json!(r.language);
            v["page_path"] = serde_json::json!(r.page_path);
            v
        })
        .collect()
}
