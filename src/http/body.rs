//! Request plumbing shared by the handlers: bounded body reading with clear errors, JSON decoding, the
//! client's network and the caller's origin.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::domain::network::{self, ClientNet};
use crate::error::{Error, Result};
use crate::state::AppState;

/// Largest body the ingestion endpoints take.
pub const MAX_BODY: usize = 8 * 1024;

/// Reads a JSON body sent as `application/json` or `text/plain` (what `sendBeacon` sends).
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<T> {
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
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| Error::bad(format!("could not read the request body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(Error::PayloadTooLarge(MAX_BODY));
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Err(Error::bad("request body is empty: send a JSON object"));
    }
    let text =
        std::str::from_utf8(&body).map_err(|_| Error::bad("request body is not valid UTF-8"))?;
    serde_json::from_str(text).map_err(|e| Error::bad(format!("invalid JSON body: {e}")))
}

/// The network of the client behind a request (invariants 1 and 4).
pub fn client_net(req: &HttpRequest, state: &AppState) -> ClientNet {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let h = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    network::client_net(
        peer,
        h("forwarded"),
        h("x-forwarded-for"),
        &state.settings.trusted_proxies,
    )
}

/// The host named by an `Origin` header value, lower case, without brackets.
pub fn host_of_origin(origin: &header::HeaderValue) -> Option<String> {
    let url = url::Url::parse(origin.to_str().ok()?).ok()?;
    url.host_str()
        .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
}

/// The host of the `Origin` header, if the request has one.
pub fn origin_host(req: &HttpRequest) -> Option<Result<String>> {
    let origin = req.headers().get(header::ORIGIN)?;
    Some(host_of_origin(origin).ok_or_else(|| Error::Forbidden("unreadable Origin header".into())))
}

pub fn user_agent(req: &HttpRequest) -> &str {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Refuses browsers on pages outside the site's domains. Requests without `Origin` (servers, tools) pass.
pub fn check_origin(req: &HttpRequest, allowed: impl Fn(&str) -> bool) -> Result<()> {
    match origin_host(req) {
        None => Ok(()),
        Some(Ok(host)) if allowed(&host) => Ok(()),
        Some(Ok(host)) => Err(Error::Forbidden(format!(
            "origin {host} is not one of this site's domains"
        ))),
        Some(Err(e)) => Err(e),
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
