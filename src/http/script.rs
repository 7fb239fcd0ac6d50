//! The embeddable script `/s/{site}/assent.js` (the site's settings inlined into the minified source
//! from `web/`) and its stylesheet `/s/assent.css`. Both are built into the binary.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::state::AppState;
use crate::storage::sites::SiteRow;

const SCRIPT: &str = include_str!(concat!(env!("OUT_DIR"), "/assent.min.js"));
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
    let etag = format!(
        "\"{}\"",
        &hex::encode(Sha256::digest(script.as_bytes()))[..20]
    );
    (script, etag)
}

fn not_modified(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

pub async fn script(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let site = state.sites.site(&path)?;
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
    let mut res = if not_modified(&req, &etag) {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((header::ETAG, etag.clone()))
        .insert_header((header::VARY, "Sec-GPC, Accept-Encoding"))
        .insert_header(("Access-Control-Allow-Origin", "*"));
    if not_modified(&req, &etag) {
        return Ok(res.finish());
    }
    let body = if gpc {
        site.script.replacen(GPC_OFF, GPC_ON, 1)
    } else {
        site.script.clone()
    };
    Ok(res
        .content_type("text/javascript; charset=utf-8")
        .body(body))
}

pub async fn styles(req: HttpRequest) -> HttpResponse {
    static ETAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let etag = ETAG.get_or_init(|| {
        format!(
            "\"{}\"",
            &hex::encode(Sha256::digest(STYLES.as_bytes()))[..20]
        )
    });
    let mut res = if not_modified(&req, etag) {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::ETAG, etag.clone()))
        .insert_header(("Access-Control-Allow-Origin", "*"));
    if not_modified(&req, etag) {
        return res.finish();
    }
    res.content_type("text/css; charset=utf-8").body(STYLES)
}
