//! A breakdown in full (search, order, pages), the CSV exports, and realtime.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde_json::{Value, json};

use super::auth::require;
use super::data::{self, clock, run_panels};
use super::pages::{
    chrome, figure, headline, panel_json, readable, site_link, view_context, view_of, with_pairs,
};
use super::{Fail, Page, query_pairs, render, respond};
use crate::domain::dashboard::chart::format_metric;
use crate::domain::dashboard::panels::{self, Slice};
use crate::domain::stats::csv;
use crate::error::Error;
use crate::state::AppState;

/// Rows of a page of the full view.
const PAGE_SIZE: usize = 50;

fn slice_of(req: &HttpRequest, limit: usize) -> (Slice, usize) {
    let pairs = query_pairs(req);
    let get = |k: &str| pairs.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    let page = get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, 10_000);
    let sort = get("sort").filter(|s| panels::SORTS.iter().any(|(id, _)| id == s));
    let search = get("q")
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty() && q.len() <= 500);
    (
        Slice {
            limit,
            offset: (page - 1) * limit,
            search,
            sort,
        },
        page,
    )
}

fn panel_of(req: &HttpRequest) -> Result<String, Fail> {
    query_pairs(req)
        .into_iter()
        .find(|(k, _)| k == "panel")
        .map(|(_, v)| v)
        .ok_or_else(|| Fail::Error(Error::bad("panel: missing (which breakdown)")))
}

/// `GET /sites/{site}/breakdown?panel=...`: one breakdown in full, with search, order and pages.
pub async fn breakdown(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, breakdown_page(&req, &path, &state).await)
}

async fn breakdown_page(req: &HttpRequest, site: &str, state: &AppState) -> Page {
    let me = require(req, state).await?;
    let entry = readable(state, &me, site)?;
    let view = view_of(req)?;
    let id = panel_of(req)?;
    let panel = panels::by_id(&id)
        .ok_or_else(|| Fail::Error(Error::NotFound(format!("no panel {id:?}"))))?;
    let (slice, page) = slice_of(req, PAGE_SIZE);
    let clock = clock(state, site).await?;
    let today = clock.today();
    let queries = vec![
        data::query(&panels::headline(site, &view, today), &clock)?,
        data::query(
            &panels::breakdown(site, &view, today, &panel, &slice),
            &clock,
        )?,
    ];
    let answers = run_panels(state, queries.clone()).await?;
    let (_, visitors) = headline(site, &view, &queries[0], &answers[0]);
    let total = answers[1].table.total_rows;
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let here = |page: usize, sort: Option<&str>| {
        let mut extra: Vec<(&str, String)> = vec![("panel", id.clone())];
        if let Some(q) = &slice.search {
            extra.push(("q", q.clone()));
        }
        if let Some(s) = sort {
            extra.push(("sort", s.to_string()));
        }
        if page > 1 {
            extra.push(("page", page.to_string()));
        }
        let pairs: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
        with_pairs(
            format!("/sites/{site}/breakdown?{}", view.query_string()),
            &pairs,
        )
    };
    let sorts: Vec<Value> = panels::SORTS
        .iter()
        .map(|(s, l)| json!({"id": s, "label": l, "selected": slice.sort.as_deref() == Some(*s)}))
        .collect();
    let sort = slice.sort.as_deref();
    let mut export_pairs = vec![("panel", id.as_str())];
    if let Some(q) = slice.search.as_deref() {
        export_pairs.push(("q", q));
    }
    if let Some(s) = sort {
        export_pairs.push(("sort", s));
    }
    render(
        "breakdown.html",
        context! {
            site_name => entry.config.name.clone(),
            panel => Serde(panel_json(site, &view, &panel, &answers[1], visitors)),
            panel_id => id.clone(),
            search => slice.search.clone().unwrap_or_default(),
            sorts => Serde(sorts),
            page,
            pages,
            total,
            prev => (page > 1).then(|| here(page - 1, sort)),
            next => (page < pages).then(|| here(page + 1, sort)),
            export => with_pairs(format!("/sites/{site}/export?{}", view.query_string()), &export_pairs),
            back => site_link(site, &view),
            ..context! {
                ..chrome(&me, &format!("{} · {}", panel.title, entry.config.name)),
                ..view_context(site, &view)
            }
        },
    )
}

/// `GET /sites/{site}/export?panel=...`: a panel (or `timeseries`) as CSV, every row, values that came
/// from websites written as text.
pub async fn export(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, export_csv(&req, &path, &state).await)
}

async fn export_csv(req: &HttpRequest, site: &str, state: &AppState) -> Page {
    let me = require(req, state).await?;
    readable(state, &me, site)?;
    let view = view_of(req)?;
    let id = panel_of(req)?;
    let clock = clock(state, site).await?;
    let today = clock.today();
    let body = if id == "timeseries" {
        panels::timeseries(site, &view, today)
    } else {
        let panel = panels::by_id(&id)
            .ok_or_else(|| Fail::Error(Error::NotFound(format!("no panel {id:?}"))))?;
        let (slice, _) = slice_of(req, crate::domain::stats::query::MAX_LIMIT);
        let slice = Slice { offset: 0, ..slice };
        panels::breakdown(site, &view, today, &panel, &slice)
    };
    let mut query = data::query(&body, &clock)?;
    if id == "timeseries" {
        // The export lists the period's own buckets; the comparison is an export of its own period.
        query.comparison = None;
    }
    let answer = run_panels(state, vec![query.clone()]).await?.remove(0);
    let text = csv::table(&query.dimensions, &query.metrics, &answer.table.rows);
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{site}-{safe}-{}.csv\"", view.period),
        ))
        .body(text))
}

/// `GET /sites/{site}/realtime`: visitors of the last five minutes and the pages of visits started in the
/// last half hour. `?format=json` for the page's script, which refreshes it.
pub async fn realtime(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, realtime_page(&req, &path, &state).await)
}

async fn realtime_page(req: &HttpRequest, site: &str, state: &AppState) -> Page {
    let me = require(req, state).await?;
    let entry = readable(state, &me, site)?;
    let now = crate::now();
    let active = state
        .store
        .active_visitors(site.to_string(), now - 5 * 60)
        .await?;
    let clock = clock(state, site).await?;
    let iso = |ts: i64| clock.zone.iso(ts);
    let body = json!({
        "site_id": site,
        "metrics": ["visitors", "pageviews"],
        "date_range": [iso(now - 30 * 60), iso(now)],
        "dimensions": ["event:page"],
        "pagination": {"limit": 20},
    });
    let query = data::query(&body, &clock)?;
    let answer = run_panels(state, vec![query]).await?.remove(0);
    let pages: Vec<Value> = answer
        .table
        .rows
        .iter()
        .map(|(d, v)| json!({"page": d.first(), "visitors": format_metric("visitors", figure(v.first())), "pageviews": format_metric("pageviews", figure(v.get(1)))}))
        .collect();
    let wants_json = query_pairs(req)
        .iter()
        .any(|(k, v)| k == "format" && v == "json");
    if wants_json {
        return Ok(HttpResponse::Ok().json(json!({"visitors": active, "pages": pages})));
    }
    render(
        "realtime.html",
        context! {
            site_id => site,
            site_name => entry.config.name.clone(),
            visitors => active,
            pages => Serde(pages),
            ..chrome(&me, &format!("Realtime · {}", entry.config.name))
        },
    )
}
