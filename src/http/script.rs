//! The embeddable script `/s/{site}/assent.js` (the site's settings inlined into the minified source
//! from `web/`) and its stylesheet `/s/assent.css`. Both are built into the binary.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::state::AppState;
use crate::storage::sites::SiteRow;

const SCRIPT: &str = include_str!(concat!(env!("OUT_DIR"), "/assent.min.js"));
const RIGHTS_SCRIPT: &str = include_str!(concat!(env!("OUT_DIR"), "/rights.min.js"));
const RIGHTS_TOKEN: &str = "__ASSENT_RIGHTS__";
const STYLES: &str = include_str!(concat!(env!("OUT_DIR"), "/assent.min.css"));
const CONFIG_TOKEN: &str = "__ASSENT_CONFIG__";
/// Marks the flag that a `Sec-GPC: 1` request header turns on in the served copy.
const GPC_OFF: &str = "\"gpc\":false";
const GPC_ON: &str = "\"gpc\":true ";

/// A short lifetime, so a policy change reaches visitors within minutes; the ETag makes rechecks cheap.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The served script of a site and its ETag.
pub fn render(public_url: &str, row: &SiteRow) -> (String, String) {
    let c = &row.config;
    let privacy_url = if c.options.privacy_url.is_empty() {
        format!("{public_url}/s/{}/privacy", row.id)
    } else {
        c.options.privacy_url.clone()
    };
    let mut options = serde_json::to_value(&c.options).unwrap_or_default();
    options["privacy_url"] = serde_json::Value::from(privacy_url);
    let config = serde_json::json!({
        "site": row.id,
        "api": public_url,
        "revision": row.revision,
        "domains": c.domains,
        "categories": c.categories,
        "texts": c.merged_texts(),
        "default_language": c.default_language,
        "options": options,
    });
    // The GPC flag goes last and by hand so a request with Sec-GPC can flip it without re-rendering.
    let mut json = config.to_string();
    json.pop();
    json.push_str(",\"gpc\":false}");
    let script = SCRIPT.replacen(CONFIG_TOKEN, &json, 1);
    let etag = etag_of(script.as_bytes());
    (script, etag)
}

fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..20])
}

/// A public, cacheable asset: 304 when the client's copy carries `etag`, else the body `make` gives.
fn cached(
    req: &HttpRequest,
    etag: &str,
    cache_control: &str,
    vary: Option<&str>,
    content_type: &str,
    make: impl FnOnce() -> String,
) -> HttpResponse {
    let current = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if current {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::ETAG, etag))
        .insert_header(("Access-Control-Allow-Origin", "*"));
    if let Some(v) = vary {
        res.insert_header((header::VARY, v));
    }
    if current {
        res.finish()
    } else {
        res.content_type(content_type).body(make())
    }
}

/// The dialog's "Your data" part (`web/rights.js`) with one language's texts: what
/// `/s/{site}/assent.js?rights=LANG` serves, loaded by the banner when the dialog opens.
pub fn render_rights(public_url: &str, site: &str, lang: &str) -> String {
    let params = serde_json::json!({
        "api": public_url,
        "site": site,
        "texts": crate::domain::i18n::rights_texts(lang),
    });
    RIGHTS_SCRIPT.replacen(RIGHTS_TOKEN, &params.to_string(), 1)
}

/// The banner script with the site's settings and texts inlined, or with `?rights=LANG` the preferences
/// dialog's "Your data" part.
#[utoipa::path(
    get,
    path = "/s/{site}/assent.js",
    tag = "website",
    summary = "The site's banner script (also HEAD)",
    description = "Carries the site's categories, services, cookies and texts; has an ETag and a five-minute \
        cache lifetime. `Sec-GPC: 1` gets the copy that honours Global Privacy Control.",
    params(
        ("site" = String, Path, description = "The site id"),
        ("rights" = Option<String>, Query, description = "A language: the dialog's \"Your data\" part instead of the banner"),
    ),
    responses(
        (status = 200, description = "The script", content_type = "text/javascript", body = String),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, description = "Unknown site", body = crate::error::ErrorBody),
    )
)]
pub async fn script(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let site = state.sites.site(&path)?;
    // `?rights=LANG`: the dialog's "Your data" part in that language, instead of the script. Any other
    // query (a cache buster) is ignored, as it always was.
    let rights = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "rights")
        .map(|(_, v)| v.into_owned());
    if let Some(lang) = rights {
        let body = render_rights(&state.settings.public_url, &site.id, &lang);
        let etag = etag_of(body.as_bytes());
        return Ok(cached(
            &req,
            &etag,
            CACHE_CONTROL,
            Some("Accept-Encoding"),
            "text/javascript; charset=utf-8",
            || body,
        ));
    }
    // Sec-GPC asks for refusal; that copy differs, so it gets its own ETag.
    let gpc = req
        .headers()
        .get("sec-gpc")
        .is_some_and(|v| v.as_bytes() == b"1");
    let etag = if gpc {
        format!("{}-gpc\"", site.etag.trim_end_matches('"'))
    } else {
        site.etag.clone()
    };
    Ok(cached(
        &req,
        &etag,
        CACHE_CONTROL,
        Some("Sec-GPC, Accept-Encoding"),
        "text/javascript; charset=utf-8",
        || {
            if gpc {
                site.script.replacen(GPC_OFF, GPC_ON, 1)
            } else {
                site.script.clone()
            }
        },
    ))
}

/// The banner's styles, shared by every site.
#[utoipa::path(
    get,
    path = "/s/assent.css",
    tag = "website",
    summary = "The banner's styles (also HEAD)",
    responses(
        (status = 200, description = "The stylesheet", content_type = "text/css", body = String),
        (status = 304, description = "Not modified (If-None-Match)"),
    )
)]
pub async fn styles(req: HttpRequest) -> HttpResponse {
    static ETAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let etag = ETAG.get_or_init(|| etag_of(STYLES.as_bytes()));
    cached(
        &req,
        etag,
        "public, max-age=3600",
        None,
        "text/css; charset=utf-8",
        || STYLES.to_string(),
    )
}
