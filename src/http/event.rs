//! `POST /api/event`: collection, only under a consent that grants analytics (privacy invariant 2). The
//! check is served from the in-memory consent cache, so refusing costs no query.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::consent::Verdict;
use crate::domain::event::{self, Context, EventInput};
use crate::domain::visits;
use crate::error::{Error, Result};
use crate::http::body;
use crate::state::AppState;

pub async fn collect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let net = body::rate_limit(&req, &state)?;
    let input: EventInput = body::read_json(&req, payload).await?;
    let url = event::validate(&input).map_err(Error::BadRequest)?;
    let consent_id = body::parse_consent_id(&input.consent_id)?;
    let site = state.sites.site(&input.site)?;
    body::check_origin(&req, |h| site.config.allows_host(h))?;
    let now = crate::now();
    if let Verdict::Refused(why) = state.consents.check(consent_id, &site.id, now) {
        return Err(Error::Forbidden(format!("not stored: {why}")));
    }
    if !url.host_str().is_some_and(|h| site.config.allows_host(h)) {
        return Err(Error::bad("url is not on one of the site's domains"));
    }
    let visitor = visits::visitor_key(&site.secret, consent_id);
    let ctx = Context {
        net,
        user_agent: body::user_agent(&req),
        geo: state.geo.as_ref(),
        now,
    };
    let stored = match event::enrich(&input, &url, &site.config, visitor, &ctx) {
        Some(e) => state.store.record_event(e).await?,
        None => false,
    };
    Ok(HttpResponse::Accepted().json(serde_json::json!({ "stored": stored })))
}
