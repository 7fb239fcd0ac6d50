//! Request plumbing shared by the handlers: bounded body reading with clear errors, JSON decoding, the
//! client's network and the caller's origin.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::domain::network::{self, ClientNet};
use crate::error::{Error, Result};
use crate::state::{AppState, SiteEntry};

/// Largest body the ingestion endpoints take.
pub const MAX_BODY: usize = 8 * 1024;

/// How long a request body may take to arrive once its headers did; a body trickled slower than this
/// (or never sent) must not hold a connection open.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads a JSON body sent as `application/json` or `text/plain` (what `sendBeacon` sends).
pub async fn read_json<T: DeserializeOwned>(req: &HttpRequest, payload: web::Payload) -> Result<T> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !matches!(essence, "application/json" | "text/plain" | "") {
            return Err(Error::UnsupportedMediaType(essence.to_string()));
        }
    }
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        && len > MAX_BODY
    {
        return Err(Error::PayloadTooLarge(MAX_BODY));
    }
    let body = tokio::time::timeout(BODY_TIMEOUT, read_body(payload))
        .await
        .map_err(|_| Error::RequestTimeout)??;
    if body.is_empty() {
        return Err(Error::bad("request body is empty: send a JSON object"));
    }
    let text =
        std::str::from_utf8(&body).map_err(|_| Error::bad("request body is not valid UTF-8"))?;
    serde_json::from_str(text).map_err(|e| Error::bad(format!("invalid JSON body: {e}")))
}

async fn read_body(mut payload: web::Payload) -> Result<web::BytesMut> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| Error::bad(format!("could not read the request body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::PayloadTooLarge(MAX_BODY));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The network of the client behind a request (invariants 1 and 4).
pub fn client_net(req: &HttpRequest, state: &AppState) -> ClientNet {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let kind = state.settings.forwarded_header;
    let header = req.headers().get(kind.name()).and_then(|v| v.to_str().ok());
    network::client_net(peer, header, kind, &state.settings.trusted_proxies)
}

pub fn user_agent(req: &HttpRequest) -> &str {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Refuses browsers on pages that are not the site's own (see [`SiteConfig::allows_origin`]). Requests
/// without `Origin` (servers, tools) pass.
///
/// [`SiteConfig::allows_origin`]: crate::domain::site::SiteConfig::allows_origin
pub fn check_origin(req: &HttpRequest, site: &SiteEntry) -> Result<()> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin
        .to_str()
        .map_err(|_| Error::Forbidden("unreadable Origin header".into()))?;
    if site.config.allows_origin(origin) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "origin {origin} is not one of this site's pages (https on its domains)"
        )))
    }
}

pub fn parse_consent_id(raw: &str) -> Result<crate::domain::consent::ConsentId> {
    crate::domain::consent::ConsentId::parse(raw)
        .ok_or_else(|| Error::bad("bad consent id: expected 32 lower-case hex digits"))
}

pub fn rate_limit(req: &HttpRequest, state: &AppState) -> Result<ClientNet> {
    let net = client_net(req, state);
    if state.limiter.allow(net) {
        Ok(net)
    } else {
        Err(Error::RateLimited)
    }
}

/// The consent id of a `/api/.../{id}` path, after the caller's network passed the rate limit: reads and
/// erasure by id cost database work, so they are limited like ingestion.
pub fn consent_id_from_path(
    req: &HttpRequest,
    state: &AppState,
    raw: &str,
) -> Result<crate::domain::consent::ConsentId> {
    rate_limit(req, state)?;
    parse_consent_id(raw)
}
