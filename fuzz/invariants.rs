//! What Assent's parsers must keep whatever they are fed: the properties checked by the fuzz targets in
//! `fuzz/fuzz_targets/` and, on generated inputs, by the property tests in `tests/parsers_props.rs`, which
//! include this very file. Each function takes an input, runs the code a request runs on it, and panics
//! (an assertion naming the broken property) when an answer breaks a rule; refusing an input is always
//! allowed unless a rule says it must be accepted.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use assent::domain::consent::{self, Action, ConsentId, ConsentInput};
use assent::domain::dashboard::site_form;
use assent::domain::event::{self, Context, EventInput, NewEvent, UTM_KEYS};
use assent::domain::network::{self, ClientNet, ForwardedHeader};
use assent::domain::referrer;
use assent::domain::site::{self, SiteConfig};
use assent::domain::useragent;
use serde_json::Value;

/// The site the checks run against: `example.com` (and subdomains) and `localhost`.
pub fn site() -> SiteConfig {
    SiteConfig::new_default("Fuzz", vec!["example.com".into(), "localhost".into()])
}

/// User agents a case picks from (the last are bots, which enrichment must drop).
pub const AGENTS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
];

/// What the server does to a query value it keeps (mirrors `event::clip`, which is private).
fn clip(s: &str, max: usize) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}

fn no_control(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

// ---------------------------------------------------------------------------------------------------
// Consent requests

/// A `POST /api/consent` body, as the handler decodes it (UTF-8, then JSON); whether it decoded.
pub fn consent_body(body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let Ok(input) = serde_json::from_str::<ConsentInput>(text) else {
        return false;
    };
    consent_input(&input);
    true
}

/// Every field of a decoded consent request, through the functions the handler calls.
pub fn consent_input(input: &ConsentInput) {
    choices(input.action, &input.choices);
    if let Some(l) = &input.language {
        language(l);
    }
    if let Some(u) = &input.url {
        page_path(u);
    }
    if let Some(id) = &input.consent_id {
        consent_id(id);
    }
}

/// The choices recorded are exactly the site's categories; required ones are granted; the action's
/// meaning wins over nothing: a request whose choices contradict it, name an unknown category or refuse a
/// required one is refused, any other is accepted.
pub fn choices(action: Action, given: &BTreeMap<String, bool>) {
    let site = site();
    let implied = match action {
        Action::AcceptAll => Some(true),
        Action::RejectAll | Action::Withdraw | Action::Gpc => Some(false),
        Action::Custom => None,
    };
    let unknown = given.keys().any(|k| site.category(k).is_none());
    let refused_required = site
        .categories
        .iter()
        .any(|c| c.required && given.get(&c.id) == Some(&false));
    let contradicts = site.categories.iter().any(|c| {
        !c.required && matches!((implied, given.get(&c.id)), (Some(i), Some(w)) if i != *w)
    });
    let result = consent::resolve_choices(&site, action, given);
    assert_eq!(
        result.is_ok(),
        !(unknown || refused_required || contradicts),
        "{action:?} {given:?}: {result:?}"
    );
    let Ok(out) = result else { return };
    let ids: Vec<&String> = site.categories.iter().map(|c| &c.id).collect();
    assert_eq!(out.keys().collect::<Vec<_>>(), {
        let mut sorted = ids.clone();
        sorted.sort();
        sorted
    });
    for c in &site.categories {
        let v = out[&c.id];
        let want = if c.required {
            true
        } else {
            implied.unwrap_or_else(|| given.get(&c.id).copied().unwrap_or(false))
        };
        assert_eq!(v, want, "{action:?} {given:?}: {}", c.id);
    }
}

/// A language kept is a short lower-case tag; anything else is refused.
pub fn language(raw: &str) {
    let want = raw.trim().to_ascii_lowercase();
    let valid = (2..=16).contains(&want.len())
        && want
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    match consent::language_tag(raw) {
        Ok(l) => {
            assert!(valid, "{raw:?} accepted as {l:?}");
            assert_eq!(l, want);
        }
        Err(_) => assert!(!valid, "{raw:?} refused"),
    }
}

/// A page path kept in the proof log is a path on the site: it starts with one `/`, is printable ASCII
/// (the rest percent-encoded), carries no query or fragment and is at most 1024 bytes.
pub fn page_path(raw: &str) {
    let site = site();
    let Ok(p) = consent::page_path(raw, &site) else {
        return;
    };
    assert!(p.starts_with('/'), "{raw:?} -> {p:?}");
    assert!(p.len() <= 1024, "{raw:?} -> {} bytes", p.len());
    assert!(
        p.bytes().all(|b| b.is_ascii_graphic()),
        "{raw:?} -> {p:?} has spaces, controls or non-ASCII"
    );
    assert!(!p.contains(['?', '#']), "{raw:?} -> {p:?}");
    assert!(no_control(raw), "{raw:?} has control characters");
    if let Ok(u) = url::Url::parse(raw) {
        let host = u.host_str().unwrap_or("");
        assert!(site.allows_host(host), "{raw:?} is on another host");
        assert!(matches!(u.scheme(), "http" | "https"), "{raw:?}");
    }
}

/// A consent id is exactly 32 lower-case hex digits and prints back as it was given.
pub fn consent_id(raw: &str) {
    let valid = raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match ConsentId::parse(raw) {
        Some(id) => {
            assert!(valid, "{raw:?} accepted");
            assert_eq!(id.to_string(), raw);
        }
        None => assert!(!valid, "{raw:?} refused"),
    }
}

// ---------------------------------------------------------------------------------------------------
// Event requests and enrichment

/// A `POST /api/event` body as the handler decodes and validates it, enriched as if sent with `ua`; the
/// row it gives, if any.
pub fn event_body(body: &[u8], ua: &str) -> Option<NewEvent> {
    let text = std::str::from_utf8(body).ok()?;
    let input = serde_json::from_str::<EventInput>(text).ok()?;
    event_input(&input, ua)
}

/// What `event::validate` lets through, and what enrichment makes of it.
pub fn event_input(input: &EventInput, ua: &str) -> Option<NewEvent> {
    let url = event::validate(input).ok()?;
    let name = input.name.trim();
    assert!(
        (1..=event::MAX_NAME).contains(&name.chars().count()),
        "name {name:?}"
    );
    assert!(no_control(name), "name {name:?}");
    assert!(input.url.len() <= event::MAX_URL);
    assert!(matches!(url.scheme(), "http" | "https"), "{url}");
    assert!(url.host_str().is_some(), "{url}");
    if let Some(r) = &input.referrer {
        assert!(r.len() <= event::MAX_URL);
    }
    if let Some(w) = input.screen_width {
        assert!((1..=100_000).contains(&w));
    }
    if let Some(props) = &input.props {
        assert!(props.len() <= event::MAX_PROPS);
        for (k, v) in props {
            assert!(!k.is_empty() && k.len() <= event::MAX_PROP_KEY && no_control(k));
            match v {
                Value::String(s) => assert!(s.len() <= event::MAX_PROP_VALUE && no_control(s)),
                Value::Number(_) | Value::Bool(_) => {}
                other => panic!("props.{k} = {other} accepted"),
            }
        }
    }
    enriched(input, &url, ua)
}

/// The stored row: its path comes from the URL's path (and a hash route) only, its UTM fields from the
/// UTM parameters only, its referrer is a foreign host and nothing more, every text is bounded and free
/// of control characters; bots give no row.
pub fn enriched(input: &EventInput, url: &url::Url, ua: &str) -> Option<NewEvent> {
    let site = site();
    let ctx = Context {
        net: ClientNet::from_addr("192.0.2.77".parse().expect("literal address")),
        user_agent: ua,
        geo: None,
        now: 1_700_000_000,
    };
    let Some(e) = event::enrich(input, url, &site, &ctx) else {
        assert!(
            useragent::classify(ua).is_none(),
            "a browser's event dropped"
        );
        return None;
    };
    assert!(useragent::classify(ua).is_some(), "a bot's event kept");
    assert_eq!(e.site, input.site);
    assert_eq!(e.name, input.name.trim());
    assert_eq!(e.ts, ctx.now);
    // The path.
    assert!(e.path.starts_with('/'), "path {:?} of {url}", e.path);
    assert!(
        e.path.chars().count() <= 1024,
        "path of {} chars",
        e.path.chars().count()
    );
    assert!(no_control(&e.path), "path {:?}", e.path);
    let (page, route) = match e.path.split_once('#') {
        Some((p, r)) => (p, Some(r)),
        None => (e.path.as_str(), None),
    };
    assert!(
        url.path().starts_with(page),
        "path {:?} is not from the URL's path {:?}",
        e.path,
        url.path()
    );
    assert!(!page.contains('?'), "path {:?} holds a query", e.path);
    if let Some(route) = route {
        let fragment = url
            .fragment()
            .unwrap_or_else(|| panic!("route without fragment: {url}"));
        assert!(
            fragment.starts_with(route) && (route.starts_with('/') || route.starts_with("!/")),
            "route {route:?} of fragment {fragment:?}"
        );
    }
    // UTM parameters: from their own keys only, cleaned.
    let fields = [
        &e.utm_source,
        &e.utm_medium,
        &e.utm_campaign,
        &e.utm_content,
        &e.utm_term,
    ];
    for (key, field) in UTM_KEYS.iter().zip(fields) {
        let from_url: Vec<String> = url
            .query_pairs()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| clip(&v, 200))
            .filter(|v| !v.is_empty())
            .collect();
        match field {
            Some(v) => {
                assert!(
                    !v.is_empty() && v.chars().count() <= 200 && no_control(v),
                    "{key} {v:?}"
                );
                assert!(from_url.contains(v), "{key} {v:?} is not a {key} of {url}");
            }
            None => assert!(from_url.is_empty(), "{key} of {url} lost"),
        }
    }
    // The referrer: a host that is not the site's, nothing of its path or query.
    if let Some(h) = &e.referrer {
        let sent = input.referrer.as_deref().expect("a referrer from nowhere");
        assert_eq!(h, &h.to_ascii_lowercase(), "referrer {h:?}");
        let host = url::Url::parse(sent.trim())
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            })
            .unwrap_or_else(|| panic!("referrer {h:?} of {sent:?}, which has no host"));
        assert!(
            host == *h || host == format!("www.{h}"),
            "referrer {h:?} is not the host {host:?} of {sent:?} (less one \"www.\")"
        );
        assert!(!site.allows_host(h), "self-referral {h:?} kept");
        assert!(
            !h.is_empty() && !h.contains(['/', '?', '#', '@', ' ']) && no_control(h),
            "referrer {h:?} is more than a host"
        );
    }
    assert_eq!(
        e.source.is_some(),
        e.utm_source.is_some() || e.referrer.is_some(),
        "source {:?}",
        e.source
    );
    if let Some(s) = &e.source {
        assert!(no_control(s), "source {s:?}");
    }
    // The client.
    assert!(!e.browser.is_empty() && !e.os.is_empty());
    assert!(
        ["Mobile", "Tablet", "Laptop", "Desktop", "Other"].contains(&e.device.as_str()),
        "device {:?}",
        e.device
    );
    assert!(["", "Mobile", "Tablet", "Laptop", "Desktop"].contains(&e.screen.as_str()));
    assert_eq!(e.country, None, "a country without a database");
    // Properties: what was sent, as sent.
    match (&e.props, &input.props) {
        (Some(json), Some(p)) => {
            let back: serde_json::Map<String, Value> =
                serde_json::from_str(json).expect("stored props are JSON");
            assert_eq!(&back, p);
            assert_eq!(e.prop_pairs.len(), p.len());
        }
        (None, p) => assert!(p.as_ref().is_none_or(|p| p.is_empty())),
        (Some(_), None) => panic!("props invented"),
    }
    Some(e)
}

/// Marks the value of a query parameter that is not a UTM parameter; no stored field may hold it.
pub const SECRET: &str = "sEcReT9x";

/// An event URL built from parts, with one non-UTM parameter carrying [`SECRET`] (and the same in the
/// referrer's path and query). Parts that already hold the marker are left out.
#[derive(Debug, Clone)]
pub struct UrlCase {
    pub https: bool,
    /// An index into [`URL_HOSTS`].
    pub host: u8,
    pub path: Vec<String>,
    /// (key index into [`QUERY_KEYS`] or a free key when out of range, free key, value).
    pub query: Vec<(u8, String, String)>,
    pub secret_at: u8,
    pub fragment: Option<String>,
    pub referrer_host: String,
    pub referrer_path: String,
    pub ua: u8,
    pub screen_width: Option<u32>,
}

pub const URL_HOSTS: [&str; 5] = [
    "example.com",
    "www.example.com",
    "shop.example.com",
    "localhost:8080",
    "evil.example",
];

pub const QUERY_KEYS: [&str; 8] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "gclid",
    "q",
    "UTM_SOURCE",
];

fn holds_secret(s: &str) -> bool {
    let cleaned: String = s.chars().filter(|c| !c.is_control()).collect();
    cleaned
        .to_ascii_lowercase()
        .contains(&SECRET.to_ascii_lowercase())
}

/// Whether the case gave a row (its checks ran).
pub fn url_case(case: &UrlCase) -> bool {
    let mut parts: Vec<&str> = case.path.iter().map(String::as_str).collect();
    for (_, k, v) in &case.query {
        parts.extend([k.as_str(), v.as_str()]);
    }
    parts.extend(case.fragment.as_deref());
    parts.extend([case.referrer_host.as_str(), case.referrer_path.as_str()]);
    if parts.iter().any(|p| holds_secret(p)) {
        return false;
    }
    let scheme = if case.https { "https" } else { "http" };
    let host = URL_HOSTS[case.host as usize % URL_HOSTS.len()];
    let Ok(mut url) = url::Url::parse(&format!("{scheme}://{host}/")) else {
        panic!("base URL");
    };
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.extend(&case.path);
    }
    {
        let mut q = url.query_pairs_mut();
        let at = case.secret_at as usize % (case.query.len() + 1);
        for (i, (k, free, v)) in case.query.iter().enumerate() {
            if i == at {
                q.append_pair("ref_code", SECRET);
            }
            let key = QUERY_KEYS.get(*k as usize).copied().unwrap_or(free);
            q.append_pair(key, v);
        }
        if at == case.query.len() {
            q.append_pair("ref_code", SECRET);
        }
    }
    url.set_fragment(case.fragment.as_deref());
    let referrer = format!(
        "https://{}/{}?id={SECRET}&p={SECRET}",
        case.referrer_host, case.referrer_path
    );
    let input = EventInput {
        site: "fuzz".into(),
        consent_id: "0".repeat(32),
        name: "pageview".into(),
        url: url.to_string(),
        referrer: Some(referrer),
        screen_width: case.screen_width,
        props: None,
        engaged_ms: None,
    };
    let ua = AGENTS[case.ua as usize % AGENTS.len()];
    let Some(e) = event_input(&input, ua) else {
        return false;
    };
    let stored = [
        Some(&e.path),
        e.referrer.as_ref(),
        e.source.as_ref(),
        e.utm_source.as_ref(),
        e.utm_medium.as_ref(),
        e.utm_campaign.as_ref(),
        e.utm_content.as_ref(),
        e.utm_term.as_ref(),
        Some(&e.browser),
        Some(&e.os),
        e.props.as_ref(),
    ];
    for s in stored.into_iter().flatten() {
        assert!(!holds_secret(s), "{s:?} holds a non-UTM parameter of {url}");
    }
    true
}

// ---------------------------------------------------------------------------------------------------
// Request headers: user agent, forwarding headers, Origin, referrers

/// Header values as a request brings them.
#[derive(Debug, Clone)]
pub struct HeaderCase {
    pub user_agent: String,
    pub peer: IpAddr,
    pub forwarded: String,
    pub rfc7239: bool,
    /// Trusted proxies: (network address, prefix length).
    pub trusted: Vec<(IpAddr, u8)>,
    pub origin: String,
    pub referrer: String,
    pub host: String,
    pub domain: String,
}

pub fn header_case(case: &HeaderCase) {
    user_agent(&case.user_agent);
    let trusted: Vec<ipnet::IpNet> = case
        .trusted
        .iter()
        .filter_map(|(a, p)| ipnet::IpNet::new(*a, *p).ok())
        .collect();
    client_net(case.peer, &case.forwarded, case.rfc7239, &trusted);
    origin(&case.origin);
    referrer_host(&case.referrer);
    source(&case.host);
    host_match(&case.host, &case.domain);
}

/// A user agent is a bot or a client with a browser, an OS and a known device class, the same every
/// time it is asked (the answers are cached).
pub fn user_agent(ua: &str) {
    let first = useragent::classify(ua);
    assert_eq!(
        first,
        useragent::classify(ua),
        "{ua:?} classified twice differently"
    );
    if let Some(c) = first {
        assert!(ua.len() <= useragent::MAX_USER_AGENT);
        assert!(!ua.trim().is_empty());
        let lower = ua.to_ascii_lowercase();
        for marker in ["bot", "spider", "crawl", "headless", "curl/", "python-"] {
            assert!(!lower.contains(marker), "{ua:?} holds {marker:?}");
        }
        assert!(!c.browser.is_empty() && !c.os.is_empty());
        assert!(["Mobile", "Tablet", "Desktop", "Other"].contains(&c.device));
    }
}

/// The client's network has no host bits; without a trusted peer it is the peer's own, whatever the
/// header says (invariant 4).
pub fn client_net(peer: IpAddr, header: &str, rfc7239: bool, trusted: &[ipnet::IpNet]) {
    let kind = if rfc7239 {
        ForwardedHeader::Forwarded
    } else {
        ForwardedHeader::XForwardedFor
    };
    let own = ClientNet::from_addr(peer);
    let net = network::client_net(peer, Some(header), kind, trusted);
    // Addresses only: the loopback flag is not in the address once `::1` is cut to `::/48`.
    assert_eq!(
        ClientNet::from_addr(net.addr()).addr(),
        net.addr(),
        "{net} has host bits"
    );
    if net.is_loopback() {
        let loopback_net = match net.addr() {
            IpAddr::V4(a) => a.octets()[0] == 127,
            IpAddr::V6(a) => a.is_unspecified(),
        };
        assert!(loopback_net, "{net} is marked loopback");
    }
    match net.addr() {
        IpAddr::V4(a) => {
            assert_eq!(a.octets()[3], 0);
            assert!(net.to_string().ends_with("/24"));
        }
        IpAddr::V6(a) => {
            assert!(a.segments()[3..].iter().all(|s| *s == 0));
            assert!(a.to_ipv4_mapped().is_none(), "{a} is IPv4");
            assert!(net.to_string().ends_with("/48"));
        }
    }
    if !network::is_trusted_peer(peer, trusted) {
        assert_eq!(net, own, "{header:?} believed from untrusted {peer}");
    }
    assert_eq!(
        network::client_net(peer, None, kind, trusted),
        own,
        "no header, not the peer"
    );
}

/// An origin the site lets read its answers is echoed in `Access-Control-Allow-Origin`: it must be an
/// exact browser origin (scheme, host, port; no path, no CR/LF or anything else a header cannot hold) on
/// one of the site's domains.
pub fn origin(raw: &str) {
    let mut site = site();
    for allow_http in [false, true] {
        site.options.allow_http = allow_http;
        if !site.allows_origin(raw) {
            continue;
        }
        assert!(
            raw.bytes().all(|b| b.is_ascii_graphic()),
            "origin {raw:?} cannot be a header value"
        );
        let u = url::Url::parse(raw).expect("an allowed origin parses");
        assert_eq!(raw, u.origin().ascii_serialization());
        assert!(matches!(u.scheme(), "http" | "https"), "{raw:?}");
        let host = u.host_str().expect("an origin has a host");
        assert!(site.allows_host(host.trim_matches(['[', ']'])), "{raw:?}");
        if u.scheme() == "http" && !site::is_loopback_host(host) {
            assert!(allow_http, "{raw:?} over plain http");
        }
    }
}

/// A referring host is a lower-case host of an http(s) referrer, never the site's own, and nothing but
/// a host.
pub fn referrer_host(raw: &str) {
    let site = site();
    let Some(h) = referrer::referrer_host(raw, |h| site.allows_host(h)) else {
        return;
    };
    let u = url::Url::parse(raw.trim()).expect("a kept referrer parses");
    assert!(matches!(u.scheme(), "http" | "https"));
    assert_eq!(h, h.to_ascii_lowercase());
    assert!(!site.allows_host(&h), "{raw:?}: own host {h:?}");
    assert!(
        !h.contains(['/', '?', '#', '@', ' ']) && no_control(&h),
        "{h:?}"
    );
    let host = u
        .host_str()
        .unwrap_or("")
        .trim_end_matches('.')
        .to_ascii_lowercase();
    assert!(!h.is_empty() && !h.ends_with('.'), "{raw:?}: {h:?}");
    assert!(host == h || host == format!("www.{h}"), "{raw:?}: {h:?}");
    source(&h);
}

/// A source name is never empty for a non-empty host and carries no control characters.
pub fn source(host: &str) {
    let s = referrer::source_of_host(host);
    assert!(host.is_empty() || !s.is_empty(), "{host:?}");
    let u = referrer::source_of_utm(host);
    assert!(host.trim().is_empty() || !u.is_empty(), "{host:?}");
}

/// Host matching answers (never panics) for any pair of strings, and agrees with its definition.
pub fn host_match(host: &str, domain: &str) {
    let got = site::host_matches(host, domain);
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    let d = domain.to_ascii_lowercase();
    let want = h == d || h.ends_with(&format!(".{d}"));
    assert_eq!(got, want, "{host:?} in {domain:?}");
}

// ---------------------------------------------------------------------------------------------------
// Site settings (the TOML of `assent site show/update` and of the settings page)

/// A settings document the loader accepts is valid, stays valid when checked again, and survives the
/// trip through `site show` and back unchanged, fingerprint included. Whether it was accepted.
pub fn site_toml(text: &str) -> bool {
    let Ok(cfg) = SiteConfig::from_toml("demo", text) else {
        return false;
    };
    loaded_settings(&cfg);
    true
}

/// The properties of settings the loader accepted (from a document or from the settings form).
fn loaded_settings(cfg: &SiteConfig) {
    let mut again = cfg.clone();
    assert_eq!(
        again.validate(),
        Ok(()),
        "accepted settings fail validation"
    );
    assert_eq!(&again, cfg, "validation is not idempotent");
    assert!(!cfg.domains.is_empty());
    for (i, d) in cfg.domains.iter().enumerate() {
        assert_eq!(site::normalize_domain(d).as_ref(), Ok(d), "domain {d:?}");
        assert!(!cfg.domains[..i].contains(d), "domain {d:?} twice");
        assert!(cfg.allows_host(d));
    }
    assert!(cfg.category("necessary").is_some_and(|c| c.required));
    assert!(cfg.languages.contains(&cfg.default_language));
    let merged = cfg.merged_texts();
    assert_eq!(
        merged.keys().collect::<Vec<_>>(),
        cfg.languages
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    let shown = cfg.to_toml("demo", 7);
    let back = SiteConfig::from_toml("demo", &shown)
        .unwrap_or_else(|e| panic!("site show output refused: {e}\n{shown}"));
    assert_eq!(
        &back, cfg,
        "settings changed on the way through site show:\n{shown}"
    );
    assert_eq!(back.policy_hash(), cfg.policy_hash());
}

/// The dashboard's settings form: shown and posted back unchanged, it loads as the same settings; with
/// `text` posted in `field` (one of [`site_form::TEXT_FIELDS`]) it either loads settings with the
/// properties of [`site_toml`]'s, or names fields of the form (or "general"), each with a message.
/// Whether it loaded.
pub fn site_form(field: &str, text: &str) -> bool {
    let cfg = SiteConfig::new_default("Demo", vec!["example.com".into()]);
    let shown = site_form::values_of(&cfg);
    // The same for every input: checked once per process, which halves the fuzzer's time per input.
    static SHOWN_LOADS_AS_IT_WAS: std::sync::Once = std::sync::Once::new();
    SHOWN_LOADS_AS_IT_WAS.call_once(|| {
        assert_eq!(
            site_form::load("demo", &cfg, 7, &shown).as_ref(),
            Ok(&cfg),
            "the form as shown does not load as the same settings"
        )
    });
    let mut posted = shown;
    posted.insert(field.to_string(), Value::String(text.to_string()));
    match site_form::load("demo", &cfg, 7, &posted) {
        Ok(changed) => {
            loaded_settings(&changed);
            true
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "refused without a message");
            for (at, message) in &errors {
                assert!(
                    at == "general" || site_form::TEXT_FIELDS.contains(&at.as_str()),
                    "a message for {at:?}, not a field of the form"
                );
                assert!(!message.trim().is_empty(), "an empty message for {at:?}");
            }
            false
        }
    }
}
