//! Server-rendered pages: the demo page, each site's privacy notice, and the health check.

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use minijinja::{Environment, context};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::state::AppState;

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // The templates are compiled into the binary and parsed by the tests, so adding them cannot fail.
        env.add_template("privacy.html", include_str!("../../assets/privacy.html"))
            .expect("assets/privacy.html parses (tested)");
        env.add_template("demo.html", include_str!("../../assets/demo.html"))
            .expect("assets/demo.html parses (tested)");
        env
    })
}

fn render(name: &str, ctx: minijinja::Value) -> Result<HttpResponse> {
    let html = templates()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| Error::Internal(format!("template {name}: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// 200 while the server can store; 503 once its writer is gone (the process then exits, for a supervisor
/// to restart it).
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    if state.store.writer_alive() {
        HttpResponse::Ok().content_type("text/plain").body("ok")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("unavailable: the writer stopped, nothing can be stored")
    }
}

pub async fn demo(state: web::Data<AppState>) -> Result<HttpResponse> {
    if state.sites.get(crate::DEMO_SITE).is_none() {
        return Err(Error::NotFound("the demo site was removed".into()));
    }
    render(
        "demo.html",
        context! { public_url => state.settings.public_url.clone(), site => crate::DEMO_SITE },
    )
}

pub async fn demo_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("../../assets/demo-page.js"))
}

#[derive(Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

pub async fn privacy(
    path: web::Path<String>,
    query: web::Query<LangQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let site = state.sites.site(&path)?;
    let cfg = &site.config;
    let texts = cfg.merged_texts();
    let lang = query
        .lang
        .as_deref()
        .map(str::to_ascii_lowercase)
        .filter(|l| texts.contains_key(l))
        .unwrap_or_else(|| cfg.default_language.clone());
    let t = texts.get(&lang).cloned().unwrap_or_default();
    let text = |k: &str| t.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let categories: Vec<minijinja::Value> = cfg
        .categories
        .iter()
        .map(|c| {
            let ct = &t["categories"][&c.id];
            context! {
                title => ct["title"].as_str().unwrap_or(&c.id),
                description => ct["description"].as_str().unwrap_or(""),
                required => c.required,
                services => minijinja::Value::from(minijinja::value::Serde(&c.services)),
            }
        })
        .collect();
    render(
        "privacy.html",
        context! {
            lang => lang,
            dir => text("dir"),
            title => text("privacy_policy"),
            description => text("description"),
            site_name => cfg.name.clone(),
            domains => cfg.domains.clone(),
            revision => site.revision,
            categories => categories,
            always_on => text("always_on"),
            services_label => text("services"),
            cookies_label => text("cookies"),
            none_label => text("none"),
            consent_months => state.settings.consent_months,
            retention_months => state.settings.retention_months,
            api => state.settings.public_url.clone(),
        },
    )
}
