//! `/sites/{site}/consent`: what visitors decided over the period (per day by action, opt-in rates per
//! category, language, page and policy revision) and the audience the counted figures stand for. The
//! dashboard shows the summary ([`summary`]); visitor figures come from the engine, unfiltered.

use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde_json::{Value, json};

use super::auth::require;
use super::data::{self, clock, run_panels};
use super::pages::{chrome, figure, readable, view_of};
use super::{Page, render, respond};
use crate::domain::dashboard::chart::{self, format_metric};
use crate::domain::dashboard::consent::{self, ACTIONS, Summary, rate};
use crate::domain::dashboard::view::{self, View};
use crate::domain::stats::period::Period;
use crate::error::Result;
use crate::state::AppState;

/// The consent summary of a site over a period.
pub async fn summary(state: &AppState, site: &str, period: &Period) -> Result<Summary> {
    let groups = state
        .store
        .consent_groups(site.to_string(), period.from, period.to)
        .await?;
    Ok(consent::summarize(&groups, period))
}

fn pct(v: Option<f64>) -> String {
    v.map(|p| format!("{p}%")).unwrap_or_else(|| "–".into())
}

/// The summary as the dashboard's card shows it: decisions, opt-in rate, and the estimated audience.
pub fn card(s: &Summary, visitors: f64, link: String) -> Value {
    let estimate = consent::estimated_audience(visitors, s.opt_in());
    json!({
        "decisions": format_metric("visitors", Some(s.decisions as f64)),
        "opt_in": pct(s.opt_in()),
        "estimate": format_metric("visitors", estimate),
        "counted": format_metric("visitors", Some(visitors)),
        "link": link,
    })
}

fn rows(items: &[(String, u64, u64)], empty: &str) -> Vec<Value> {
    items
        .iter()
        .map(|(name, on, of)| {
            json!({
                "name": if name.is_empty() { empty } else { name.as_str() },
                "rate": pct(rate(*on, *of)),
                "decisions": format_metric("visitors", Some(*of as f64)),
                "bar_svg": chart::share_bar(*on as f64, *of as f64),
            })
        })
        .collect()
}

/// `GET /sites/{site}/consent`
pub async fn page(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, consent_page(&req, &path, &state).await)
}

async fn consent_page(req: &HttpRequest, site: &str, state: &AppState) -> Page {
    let me = require(req, state).await?;
    let entry = readable(state, &me, site)?;
    let view = View {
        filters: Vec::new(),
        ..view_of(req)?
    };
    let clock = clock(state, site).await?;
    let body = json!({"site_id": site, "metrics": ["visitors"], "date_range": view.date_range(clock.today())});
    let query = data::query(&body, &clock)?;
    let period = query.period;
    let answer = run_panels(state, vec![query]).await?.remove(0);
    let visitors = answer
        .table
        .rows
        .first()
        .and_then(|r| figure(r.1.first()))
        .unwrap_or(0.0);
    let s = summary(state, site, &period).await?;
    let names: [&str; 5] = ACTIONS.map(|(_, l)| l);
    let markers: Vec<(usize, String)> = s
        .revisions
        .iter()
        .filter_map(|(r, first, _, _)| {
            let i = s.days.iter().position(|(d, _)| d == first)?;
            (i > 0).then(|| (i, format!("revision {r}")))
        })
        .collect();
    let chart = chart::stacked_days(&s.days, &names, &markers);
    let totals: Vec<Value> = ACTIONS
        .iter()
        .enumerate()
        .map(|(k, (id, label))| {
            let n: u64 = s.days.iter().map(|(_, c)| c[k]).sum();
            json!({"id": id, "label": label, "class": format!("k{k}"), "count": format_metric("visitors", Some(n as f64))})
        })
        .collect();
    let revisions: Vec<Value> = s
        .revisions
        .iter()
        .map(|(r, first, on, of)| {
            json!({"name": format!("Revision {r} (from {first})"), "rate": pct(rate(*on, *of)), "decisions": of, "bar_svg": chart::share_bar(*on as f64, *of as f64)})
        })
        .collect();
    let categories: Vec<(String, u64, u64)> = s.categories.clone();
    let periods: Vec<Value> = view::PERIODS
        .iter()
        .filter(|(id, _)| *id != "custom")
        .map(|(id, l)| json!({"id": id, "label": l, "selected": view.period == *id}))
        .collect();
    render(
        "consent.html",
        context! {
            site_id => site,
            site_name => entry.config.name.clone(),
            period_label => view.period_label(),
            periods => Serde(periods),
            summary => Serde(card(&s, visitors, String::new())),
            chart_svg => chart,
            totals => Serde(totals),
            categories => Serde(rows(&categories, "(none)")),
            revisions => Serde(revisions),
            languages => Serde(rows(&s.languages, "(not given)")),
            pages => Serde(rows(&s.pages, "(not given)")),
            back => format!("/sites/{site}?{}", view.query_string()),
            ..chrome(&me, &format!("Consent · {}", entry.config.name))
        },
    )
}
