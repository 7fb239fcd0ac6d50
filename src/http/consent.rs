//! `POST /api/consent` and `GET /api/consent/{id}`: recording a visitor's choice in the append-only log
//! and reading back its latest state.

use actix_web::{HttpRequest, HttpResponse, web};
use time::format_description::well_known::Rfc3339;

use crate::domain::consent::{self, ConsentId, ConsentInput, ConsentRecord};
use crate::error::{Error, Result};
use crate::http::{body, for_site};
use crate::state::AppState;

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn state_json(rec: &ConsentRecord) -> serde_json::Value {
    serde_json::json!({
        "consent_id": rec.consent_id.to_string(),
        "site": rec.site,
        "revision": rec.revision,
        "choices": rec.choices,
        "action": rec.action.as_str(),
        "created_at": rfc3339(rec.created_at),
        "expires_at": rfc3339(rec.expires_at),
    })
}

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
    let res = HttpResponse::Ok().json(serde_json::json!({
        "consent_id": rec.consent_id.to_string(),
        "revision": rec.revision,
        "choices": rec.choices,
        "expires_at": rfc3339(rec.expires_at),
    }));
    Ok(for_site(res, site))
}

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
    let res = HttpResponse::Ok().json(state_json(&rec));
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
