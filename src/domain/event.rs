//! Incoming events: validation of what the script sends, and enrichment into what is stored (path
//! without query, UTM parameters, source, country, browser, OS, device). Nothing here sees a full client
//! address or stores a raw user agent.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::geo::Geo;
use crate::domain::network::ClientNet;
use crate::domain::referrer;
use crate::domain::site::SiteConfig;
use crate::domain::useragent::{self, Client};

pub const MAX_NAME: usize = 120;
pub const MAX_URL: usize = 2048;
pub const MAX_PROPS: usize = 30;
pub const MAX_PROP_KEY: usize = 300;
pub const MAX_PROP_VALUE: usize = 2000;

/// An event as the script sends it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EventInput {
    /// The site id.
    pub site: String,
    /// The consent id the server issued (32 lower-case hex digits); it must grant `analytics`.
    pub consent_id: String,
    /// `pageview`, `engagement` (engaged time), or a custom event's name.
    pub name: String,
    /// The page's URL, on one of the site's domains.
    pub url: String,
    #[serde(default)]
    pub referrer: Option<String>,
    #[serde(default)]
    pub screen_width: Option<u32>,
    /// Custom properties: strings, numbers and booleans.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub props: Option<Map<String, Value>>,
    /// Engaged time on the page, in milliseconds, for `engagement` events.
    #[serde(default)]
    pub engaged_ms: Option<u64>,
}

/// An event ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub site: String,
    pub ts: i64,
    pub name: String,
    pub path: String,
    pub referrer: Option<String>,
    pub source: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_content: Option<String>,
    pub utm_term: Option<String>,
    pub country: Option<String>,
    pub browser: String,
    pub os: String,
    pub device: String,
    /// Screen size class from the reported width (empty when unknown).
    pub screen: String,
    /// The properties as stored (a JSON object of strings, numbers and booleans).
    pub props: Option<String>,
    /// The same, as the statistics read them: every value as text.
    pub prop_pairs: Vec<(String, String)>,
    pub engaged_ms: Option<i64>,
}

/// Properties as the statistics read them: every value as text, sorted by key.
pub fn pairs_of(props: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = props
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect();
    out.sort();
    out
}

/// [`pairs_of`] for properties stored as JSON text.
pub fn stored_pairs(json: Option<&str>) -> Vec<(String, String)> {
    json.and_then(|j| serde_json::from_str::<Map<String, Value>>(j).ok())
        .map(|m| pairs_of(&m))
        .unwrap_or_default()
}

/// Checks the fields that need no site. Messages say what is wrong.
pub fn validate(input: &EventInput) -> Result<url::Url, String> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(format!("name must be 1-{MAX_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters".into());
    }
    if input.url.len() > MAX_URL {
        return Err(format!("url is longer than {MAX_URL} bytes"));
    }
    let url =
        url::Url::parse(&input.url).map_err(|e| format!("url is not a valid absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("url must be an http(s) URL with a host".into());
    }
    if let Some(r) = &input.referrer
        && r.len() > MAX_URL
    {
        return Err(format!("referrer is longer than {MAX_URL} bytes"));
    }
    if let Some(w) = input.screen_width
        && !(1..=100_000).contains(&w)
    {
        return Err("screen_width must be between 1 and 100000".into());
    }
    if let Some(ms) = input.engaged_ms
        && ms > 24 * 3600 * 1000
    {
        return Err("engaged_ms must be at most one day".into());
    }
    if let Some(props) = &input.props {
        if props.len() > MAX_PROPS {
            return Err(format!("props may hold at most {MAX_PROPS} entries"));
        }
        for (k, v) in props {
            if k.is_empty() || k.len() > MAX_PROP_KEY {
                return Err(format!("props keys must be 1-{MAX_PROP_KEY} bytes"));
            }
            if k.chars().any(char::is_control) {
                return Err("props keys must not contain control characters".into());
            }
            match v {
                Value::String(s) if s.chars().any(char::is_control) => {
                    return Err(format!("props.{k} must not contain control characters"));
                }
                Value::String(s) if s.len() <= MAX_PROP_VALUE => {}
                Value::Number(_) | Value::Bool(_) => {}
                Value::String(_) => {
                    return Err(format!("props.{k} is longer than {MAX_PROP_VALUE} bytes"));
                }
                _ => return Err(format!("props.{k} must be a string, number or boolean")),
            }
        }
    }
    Ok(url)
}

/// At most `max` characters of `s`, trimmed, without control characters (query values arrive
/// percent-decoded, so they can carry any).
fn clip(s: &str, max: usize) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect()
}

/// Everything the request gives besides the body.
pub struct Context<'a> {
    pub net: ClientNet,
    pub user_agent: &'a str,
    pub geo: Option<&'a Geo>,
    pub now: i64,
}

/// The query parameters kept from a page's address (campaign tags); every other parameter is dropped.
pub const UTM_KEYS: [&str; 5] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
];

/// Turns a validated event into the row to store, or None when it comes from a bot.
pub fn enrich(
    input: &EventInput,
    url: &url::Url,
    site: &SiteConfig,
    ctx: &Context,
) -> Option<NewEvent> {
    let Client {
        browser,
        os,
        device,
    } = useragent::classify(ctx.user_agent)?;
    let device = input
        .screen_width
        .map(useragent::device_by_width)
        .unwrap_or(device);

    let mut utm = [None, None, None, None, None];
    for (k, v) in url.query_pairs() {
        if let Some(i) = UTM_KEYS.iter().position(|u| *u == k) {
            let v = clip(&v, 200);
            if !v.is_empty() {
                utm[i] = Some(v);
            }
        }
    }
    let [utm_source, utm_medium, utm_campaign, utm_content, utm_term] = utm;
    let mut path = url.path().to_string();
    if path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    // A hash router's route (`#/inbox`, `#!/inbox`) is part of the page, as the tracker counts it; any
    // other fragment (an anchor on the page) is not.
    if let Some(route) = url
        .fragment()
        .filter(|f| f.starts_with('/') || f.starts_with("!/"))
    {
        path = clip(&format!("{path}#{route}"), 1000);
    }
    let referrer = input
        .referrer
        .as_deref()
        .and_then(|r| referrer::referrer_host(r, |h| site.allows_host(h)));
    let source = match (&utm_source, &referrer) {
        (Some(u), _) => Some(referrer::source_of_utm(u)),
        (None, Some(h)) => Some(referrer::source_of_host(h)),
        _ => None,
    };
    let props = input
        .props
        .as_ref()
        .filter(|p| !p.is_empty())
        .map(|p| Value::Object(p.clone()).to_string());
    let prop_pairs = input.props.as_ref().map(pairs_of).unwrap_or_default();
    Some(NewEvent {
        site: input.site.clone(),
        ts: ctx.now,
        name: input.name.trim().to_string(),
        path: clip(&path, 1024),
        referrer,
        source,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        country: ctx.geo.and_then(|g| g.country(ctx.net)),
        browser,
        os,
        device: device.to_string(),
        screen: crate::domain::stats::dims::screen_class(input.screen_width).to_string(),
        props,
        prop_pairs,
        engaged_ms: input.engaged_ms.map(|m| m as i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

    fn input(url: &str, referrer: Option<&str>) -> EventInput {
        EventInput {
            site: "s".into(),
            consent_id: "0".repeat(32),
            name: "pageview".into(),
            url: url.into(),
            referrer: referrer.map(String::from),
            screen_width: Some(1280),
            props: None,
            engaged_ms: None,
        }
    }

    #[test]
    fn reduces_url_and_referrer() {
        let site = SiteConfig::new_default("s", vec!["example.com".into()]);
        let i = input(
            "https://example.com/pricing/?utm_source=fb&utm_campaign=spring&secret=1#frag",
            Some("https://www.google.fr/"),
        );
        let url = validate(&i).unwrap();
        let ctx = Context {
            net: ClientNet::from_addr("192.0.2.9".parse().unwrap()),
            user_agent: UA,
            geo: None,
            now: 1,
        };
        let e = enrich(&i, &url, &site, &ctx).unwrap();
        assert_eq!(e.path, "/pricing");
        assert_eq!(e.utm_source.as_deref(), Some("fb"));
        assert_eq!(e.utm_campaign.as_deref(), Some("spring"));
        assert_eq!(e.source.as_deref(), Some("Facebook"));
        assert_eq!(e.referrer.as_deref(), Some("google.fr"));
        assert_eq!(e.device, "Laptop");
        assert_eq!(e.browser, "Chrome");
        // a hash router's route counts, an anchor does not
        for (url, path) in [
            ("https://example.com/app#/inbox/3", "/app#/inbox/3"),
            ("https://example.com/app/#!/inbox", "/app#!/inbox"),
            ("https://example.com/doc#section-2", "/doc"),
        ] {
            let i = input(url, None);
            let e = enrich(&i, &validate(&i).unwrap(), &site, &ctx).unwrap();
            assert_eq!(e.path, path);
        }
        let own = input("https://example.com/", Some("https://example.com/a"));
        let e = enrich(&own, &validate(&own).unwrap(), &site, &ctx).unwrap();
        assert_eq!(e.source, None);
        let bot = Context {
            user_agent: "Googlebot/2.1",
            ..ctx
        };
        assert!(enrich(&own, &validate(&own).unwrap(), &site, &bot).is_none());
    }

    #[test]
    fn rejects_bad_fields() {
        let mut i = input("ftp://example.com/", None);
        assert!(validate(&i).is_err());
        i.url = "https://example.com/".into();
        i.name = " ".into();
        assert!(validate(&i).is_err());
        i.name = "x".repeat(121);
        assert!(validate(&i).is_err());
        i.name = "ok".into();
        i.props = Some(serde_json::from_str(r#"{"a": {"nested": 1}}"#).unwrap());
        assert!(validate(&i).is_err());
        i.props = Some(serde_json::from_str(r#"{"a": "b", "n": 1}"#).unwrap());
        assert!(validate(&i).is_ok());
        for dirty in [
            r#"{"a": "b\u0000"}"#,
            r#"{"a": "x\r\nSet-Cookie: y"}"#,
            r#"{"a\n": "b"}"#,
        ] {
            i.props = Some(serde_json::from_str(dirty).unwrap());
            assert!(validate(&i).is_err(), "{dirty}");
        }
    }
}
