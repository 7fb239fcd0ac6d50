//! `POST /api/event`: collection, only under a consent that grants analytics (privacy invariant 2). The
//! storage writer makes the decision, against the log as of the moment the event is stored; the consent
//! cache lets this handler refuse what it already knows is refused without queueing it.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::consent_cache::{Lookup, Verdict};
use crate::domain::event::{self, Context, EventInput};
use crate::error::{Error, Result};
use crate::http::{body, for_site};
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
    body::check_origin(&req, &site)?;
    let now = crate::now();
    if let Lookup::Known(Verdict::Refused(why)) =
        state
            .consents
            .lookup(consent_id.0, &site.id, site.revision, now)
    {
        return Err(Error::Forbidden(format!("not stored: {why}")));
    }
    if !url.host_str().is_some_and(|h| site.config.allows_host(h)) {
        return Err(Error::bad("url is not on one of the site's domains"));
    }
    let ctx = Context {
        net,
        user_agent: body::user_agent(&req),
        geo: state.geo.as_ref(),
        now,
    };
    let stored = match event::enrich(&input, &url, &site.config, &ctx) {
        Some(e) => state.store.record_event(consent_id, e).await?,
        None => false,
    };
    Ok(for_site(
        HttpResponse::Accepted().json(serde_json::json!({ "stored": stored })),
        site,
    ))
}
