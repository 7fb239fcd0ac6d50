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
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operator",
    summary = "Liveness (also HEAD)",
    responses(
        (status = 200, description = "The server can store", content_type = "text/plain", body = String, example = "ok"),
        (status = 503, description = "The writer stopped; the process exits for a supervisor to restart it", content_type = "text/plain", body = String),
    )
)]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoticeQuery {
    /// The language wanted (its primary subtag counts too); the site's default language otherwise.
    lang: Option<String>,
    /// `fragment`: the notice alone, to embed in the site's own policy page.
    format: Option<String>,
}

/// `{name}` placeholders of a notice text replaced.
fn fill(text: &str, values: &[(&str, String)]) -> String {
    values.iter().fold(text.to_string(), |t, (k, v)| {
        t.replace(&format!("{{{k}}}"), v)
    })
}

/// The language a notice is written in: the requested one when the site offers it and a notice is
/// shipped for it, else the site's default language, else English. Never a mix.
fn notice_language(requested: Option<&str>, cfg: &crate::domain::site::SiteConfig) -> String {
    use crate::domain::i18n::notice_texts;
    let requested = requested.map(|l| l.trim().to_ascii_lowercase());
    let candidates = requested
        .iter()
        .flat_map(|l| [l.clone(), l.split('-').next().unwrap_or(l).to_string()])
        .filter(|l| cfg.languages.contains(l));
    candidates
        .chain([cfg.default_language.clone()])
        .find(|l| notice_texts(l).is_some())
        .unwrap_or_else(|| "en".to_string())
}

/// The site's privacy and cookie notice (GDPR arts. 12-13), generated from its settings, wholly in one
/// language; `format=fragment` gives it without the page around it.
#[utoipa::path(
    get,
    path = "/s/{site}/privacy",
    tag = "website",
    summary = "The site's privacy and cookie notice (also HEAD)",
    params(("site" = String, Path, description = "The site id"), NoticeQuery),
    responses(
        (status = 200, description = "The notice, wholly in one language", content_type = "text/html", body = String),
        (status = 400, description = "Unknown format", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown site", body = crate::error::ErrorBody),
    )
)]
pub async fn privacy(
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse> {
    let site = state.sites.site(&path)?;
    let cfg = &site.config;
    let fragment = match query.format.as_deref() {
        None | Some("html") => false,
        Some("fragment") => true,
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "unknown format {other:?}: use fragment or leave it out"
            )));
        }
    };
    let lang = notice_language(query.lang.as_deref(), cfg);
    let n = crate::domain::i18n::notice_texts(&lang)
        .cloned()
        .unwrap_or_default();
    let banner = crate::domain::i18n::merged(
        &lang,
        &cfg.default_language,
        cfg.texts.get(&lang),
        &cfg.categories,
    );
    let t = |k: &str| n.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let settings = &state.settings;
    let controller = &cfg.controller;
    let site_name = if controller.name.is_empty() {
        cfg.name.clone()
    } else {
        controller.name.clone()
    };
    let months = |m: u32| fill(&t("months"), &[("n", m.to_string())]);
    let title_of = |id: &str| {
        banner["categories"][id]["title"]
            .as_str()
            .unwrap_or(id)
            .to_string()
    };
    // What is collected and why: the choice itself, then each optional category.
    let mut purposes = vec![context! {
        purpose => t("p_choice"), data => t("d_choice"), basis => t("b_choice"),
        kept => months(settings.retention_months),
    }];
    for c in cfg.categories.iter().filter(|c| !c.required) {
        purposes.push(if c.id == "analytics" {
            context! {
                purpose => t("p_analytics"), data => t("d_analytics"), basis => t("b_consent"),
                kept => months(settings.retention_months),
            }
        } else {
            context! {
                purpose => fill(&t("p_other"), &[("category", title_of(&c.id))]),
                data => t("d_other"), basis => t("b_consent"), kept => t("lifetime_service"),
            }
        });
    }
    let mut cookies = Vec::new();
    let categories: Vec<minijinja::Value> = cfg
        .categories
        .iter()
        .map(|c| {
            for s in &c.services {
                for k in &s.cookies {
                    let (purpose, lifetime) = if k == "assent_consent" {
                        (
                            t("consent_cookie"),
                            fill(
                                &t("lifetime_consent"),
                                &[("n", settings.consent_months.to_string())],
                            ),
                        )
                    } else {
                        (
                            fill(&t("service_cookie"), &[("service", s.name.clone())]),
                            t("lifetime_service"),
                        )
                    };
                    cookies.push(context! {
                        name => k, category => title_of(&c.id), service => s.name.clone(),
                        purpose => purpose, lifetime => lifetime,
                    });
                }
            }
            context! {
                title => title_of(&c.id),
                description => banner["categories"][&c.id]["description"].as_str().unwrap_or(""),
                required => c.required,
                services => minijinja::Value::from(minijinja::value::Serde(&c.services)),
            }
        })
        .collect();
    let since = state
        .store
        .revision_started(site.id.clone(), site.revision)
        .await?
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .map(|d| d.date().to_string())
        .unwrap_or_default();
    let rights: Vec<String> = [
        "r_access",
        "r_rectification",
        "r_erasure",
        "r_portability",
        "r_objection",
        "r_withdrawal",
    ]
    .iter()
    .map(|k| t(k))
    .collect();
    let text = |k: &str| banner[k].as_str().unwrap_or("").to_string();
    render(
        "privacy.html",
        context! {
            fragment => fragment,
            lang => lang,
            dir => text("dir"),
            title => t("title"),
            intro => fill(&t("intro"), &[("site", site_name.clone())]),
            t => minijinja::Value::from(minijinja::value::Serde(&n)),
            site_name => site_name.clone(),
            controller => minijinja::Value::from(minijinja::value::Serde(controller)),
            address_lines => controller.address.lines().map(str::to_string).collect::<Vec<_>>(),
            purposes => purposes,
            recipients => fill(&t("recipients_p"), &[("site", site_name.clone())]),
            retention => fill(&t("retention_p"), &[
                ("retention", settings.retention_months.to_string()),
                ("consent", settings.consent_months.to_string()),
            ]),
            cookies => cookies,
            categories => categories,
            always_on => text("always_on"),
            services_label => text("services"),
            cookies_label => text("cookies"),
            none_label => text("none"),
            rights => rights,
            // The sentence around the contact address, which the template links.
            write => (!controller.email.is_empty()).then(|| {
                let w = t("write_p");
                let (before, after) = w.split_once("{email}").unwrap_or((&w, ""));
                vec![before.to_string(), after.to_string()]
            }),
            authority => if controller.supervisory_authority.is_empty() {
                t("complaint_default")
            } else {
                controller.supervisory_authority.clone()
            },
            revision => fill(&t("revision_p"), &[
                ("revision", site.revision.to_string()),
                ("date", since),
            ]),
        },
    )
}
