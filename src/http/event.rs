//! `POST /api/event`: collection, only under a consent that grants analytics (privacy invariant 2). The
//! storage writer makes the decision, against the log as of the moment the event is stored; the consent
//! cache lets this handler refuse what it already knows is refused without queueing it.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::consent_cache::{Lookup, Verdict};
use crate::domain::event::{self, Context, EventInput};
use crate::error::{Error, Result};
use crate::http::{body, for_site};
use crate::metrics::Refusal;
use crate::state::{AppState, SiteEntry};
use crate::storage::sql::Engine;

/// The answer to an event.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct EventAnswer {
    /// False when it was answered but not stored: a bot, or engaged time without a visit.
    stored: bool,
}

/// `POST /api/event`
#[utoipa::path(
    post,
    path = "/api/event",
    tag = "event",
    summary = "Count an event (only under an analytics grant)",
    description = "Answered after the commit. `text/plain` is accepted too, for `navigator.sendBeacon`.",
    request_body(content(
        (EventInput = "application/json"),
        (EventInput = "text/plain"),
    )),
    responses(
        (status = 202, description = "Stored (or, with `stored: false`, answered and not stored)", body = EventAnswer),
        (status = 400, description = "Malformed", body = crate::error::ErrorBody),
        (status = 403, description = "No current analytics grant, or a page that is not the site's", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown site", body = crate::error::ErrorBody),
        (status = 408, description = "The body did not arrive within 5 s", body = crate::error::ErrorBody),
        (status = 413, description = "Body over 8 KiB", body = crate::error::ErrorBody),
        (status = 415, description = "Not JSON or text/plain", body = crate::error::ErrorBody),
        (status = 429, description = "Rate limited", body = crate::error::ErrorBody),
        (status = 503, description = "Saturated (Retry-After)", body = crate::error::ErrorBody),
    )
)]
pub async fn collect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let outcome = store(&req, payload, &state).await;
    match &outcome {
        Ok((None, _)) => state.metrics.event_stored(),
        Ok((Some(why), _)) => state.metrics.event_refused(*why),
        Err(e) => state.metrics.event_refused(Refusal::of(e)),
    }
    let (refused, site) = outcome?;
    let answer = EventAnswer {
        stored: refused.is_none(),
    };
    Ok(for_site(HttpResponse::Accepted().json(answer), site))
}

/// Stores the event; `Some` says why an event that is answered 202 was not stored.
async fn store(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(Option<Refusal>, Arc<SiteEntry>)> {
    let net = body::rate_limit(req, state)?;
    let input: EventInput = body::read_json(req, payload).await?;
    let url = event::validate(&input).map_err(Error::BadRequest)?;
    let consent_id = body::parse_consent_id(&input.consent_id)?;
    let site = state.sites.site(&input.site)?;
    body::check_origin(req, &site)?;
    let now = crate::now();
    // A refusal the cache knows is answered at once. With several instances on PostgreSQL the cache may
    // lag a grant made through another one until this instance's writer takes its turn, so there only
    // the writer decides.
    if state.store.engine() == Engine::Sqlite
        && let Lookup::Known(Verdict::Refused(why)) =
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
        user_agent: body::user_agent(req),
        geo: state.geo.as_ref(),
        now,
    };
    let refused = match event::enrich(&input, &url, &site.config, &ctx) {
        Some(e) => (!state.store.record_event(consent_id, e).await?).then_some(Refusal::NoVisit),
        None => Some(Refusal::Bot),
    };
    Ok((refused, site))
}
