//! Where the dashboard's figures come from: Stats API v2 requests (see
//! [`crate::domain::dashboard::panels`]) parsed by the Stats API's own parser, answered by the engine.

use serde_json::Value;

use crate::domain::stats::engine::Answer;
use crate::domain::stats::period::{Clock, Zone};
use crate::domain::stats::plausible;
use crate::domain::stats::query::Query;
use crate::error::{Error, Result};
use crate::state::AppState;

/// "Now" and "today" for a site: its time zone and the start of its data (as the Stats API's).
pub async fn clock(state: &AppState, site: &str) -> Result<Clock> {
    let entry = state.sites.site(site)?;
    let zone = Zone::parse(&entry.config.timezone).unwrap_or_else(Zone::utc);
    let first = state.store.first_visit(site.to_string()).await?;
    Ok(Clock {
        now: crate::now(),
        zone,
        first_day: first.map(|t| zone.day(t)),
    })
}

/// A v2 request body as the engine's query; a request the engine refuses is a 400 naming why.
pub fn query(body: &Value, clock: &Clock) -> Result<Query> {
    plausible::parse(body, clock)
        .map(|r| r.query)
        .map_err(Error::BadRequest)
}

/// Every engine call of the dashboard goes through here: the answers, in the order of the queries. The
/// set is answered as one batch, so the rows of each period are read once for all the panels.
pub async fn run_panels(state: &AppState, queries: Vec<Query>) -> Result<Vec<Answer>> {
    state
        .store
        .stats_batch(queries)
        .await?
        .into_iter()
        .collect()
}
