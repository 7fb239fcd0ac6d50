//! The pages with figures: the list of sites and a site's dashboard (full breakdowns, exports and
//! realtime are in [`super::lists`]). Handlers check the session and the site, build the view's
//! queries, run them through [`data::run_panels`] and shape the answers for the templates.

use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde_json::{Value, json};

use super::auth::{Current, require};
use super::data::{self, clock, run_panels};
use super::{Fail, Page, query_pairs, render, respond};
use crate::domain::dashboard::chart::{self, Series, format_metric};
use crate::domain::dashboard::panels::{self, Panel, Slice};
use crate::domain::dashboard::view::{self, UrlFilter, View};
use crate::domain::stats::dims::Dimension;
use crate::domain::stats::engine::Answer;
use crate::domain::stats::period::Bucket;
use crate::domain::stats::plausible;
use crate::domain::stats::query::Query;
use crate::domain::stats::results::Value as Figure;
use crate::error::Error;
use crate::state::{AppState, SiteEntry};

/// Rows of a panel on the dashboard.
const TOP: usize = 9;
/// Property panels shown at most.
const MAX_PROPS: usize = 6;

/// The site of a path, if this user may see it: otherwise 404, as if it did not exist.
pub(super) fn readable(
    state: &AppState,
    me: &Current,
    site: &str,
) -> Result<std::sync::Arc<SiteEntry>, Fail> {
    match state.sites.get(site) {
        Some(s) if me.user.may_read(site) => Ok(s),
        _ => Err(Fail::Error(Error::NotFound(format!("no site {site:?}")))),
    }
}

/// The sites this user may see.
fn visible_sites(state: &AppState, me: &Current) -> Vec<String> {
    state
        .sites
        .ids()
        .into_iter()
        .filter(|s| me.user.may_read(s))
        .collect()
}

/// What the base template needs on every page.
pub(super) fn chrome(me: &Current, title: &str) -> minijinja::Value {
    context! {
        title,
        user => me.user.email.clone(),
        admin => me.user.admin,
        csrf => me.csrf(),
    }
}

pub(super) fn figure(v: Option<&Figure>) -> Option<f64> {
    v.and_then(|x| x.as_f64())
}

/// `GET /`: the user's sites with today's visitors and the last 30 days.
pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    respond(
        &req,
        index_with(&req, &state, actix_web::http::StatusCode::OK, None).await,
    )
}

/// The list of sites; `add_form` is a refused "Add a site" form (values, field and message).
pub(super) async fn index_with(
    req: &HttpRequest,
    state: &AppState,
    status: actix_web::http::StatusCode,
    add_form: Option<Value>,
) -> Page {
    let me = require(req, state).await?;
    let removed = query_pairs(req)
        .iter()
        .any(|(k, v)| k == "done" && v == "removed");
    let sites = visible_sites(state, &me);
    let mut queries = Vec::new();
    for site in &sites {
        let c = clock(state, site).await?;
        queries.push(data::query(&panels::today_visitors(site), &c)?);
        queries.push(data::query(&panels::sparkline(site), &c)?);
    }
    let answers = run_panels(state, queries).await?;
    let rows: Vec<Value> = sites
        .iter()
        .zip(answers.chunks(2))
        .map(|(site, a)| {
            let today = a[0].table.rows.first().and_then(|r| figure(r.1.first()));
            let labels = a[1].time_labels.clone().unwrap_or_default();
            let by_label: std::collections::HashMap<&String, f64> = a[1]
                .table
                .rows
                .iter()
                .filter_map(|(d, v)| Some((d.first()?, figure(v.first())?)))
                .collect();
            let values: Vec<f64> = labels
                .iter()
                .map(|l| by_label.get(l).copied().unwrap_or(0.0))
                .collect();
            let total: f64 = values.iter().sum();
            let name = state
                .sites
                .get(site)
                .map(|s| s.config.name.clone())
                .unwrap_or_default();
            json!({
                "id": site,
                "name": name,
                "today": format_metric("visitors", today),
                "spark_svg": chart::sparkline(&values, &format!("Visitors per day, last 30 days: {}", format_metric("visitors", Some(total)))),
            })
        })
        .collect();
    super::render_status(
        "index.html",
        context! {
            sites => Serde(rows),
            add => Serde(add_form.unwrap_or_else(|| json!({}))),
            removed,
            ..chrome(&me, "Sites")
        },
        status,
    )
}

/// The view of the request, or a 400 naming what is wrong.
pub(super) fn view_of(req: &HttpRequest) -> Result<View, Fail> {
    View::parse(&query_pairs(req)).map_err(|e| Fail::Error(Error::BadRequest(e)))
}

pub(super) fn site_link(site: &str, view: &View) -> String {
    format!("/sites/{site}?{}", view.query_string())
}

pub(super) fn with_pairs(base: String, extra: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in extra {
        s.append_pair(k, v);
    }
    format!("{base}&{}", s.finish())
}

/// A flag for a two-letter country code (regional indicator symbols).
fn flag(code: &str) -> String {
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        code.chars()
            .filter_map(|c| char::from_u32(0x1F1E6 + (c as u32 - 'A' as u32)))
            .collect()
    } else {
        String::new()
    }
}

/// The rows of a panel's answer, each with the link that filters the dashboard by it and a share bar.
fn panel_rows(site: &str, view: &View, panel: &Panel, answer: &Answer, whole: f64) -> Vec<Value> {
    let filterable = !panel.dim.starts_with("event:props:") || !panel.dim.contains('|');
    answer
        .table
        .rows
        .iter()
        .map(|(dims, values)| {
            let value = dims.first().cloned().unwrap_or_default();
            let visitors = figure(values.first());
            let second = figure(values.get(1));
            let mut v = view.clone();
            if panel.id == "events" {
                v = v.with_filter(UrlFilter {
                    dim: "event:name".into(),
                    op: "is".into(),
                    value: value.clone(),
                });
            } else if filterable {
                v = v.with_filter(UrlFilter {
                    dim: panel.dim.clone(),
                    op: "is".into(),
                    value: value.clone(),
                });
            }
            // Countries are filtered by their two-letter code; "(not set)" has none.
            let link =
                (panel.dim != "visit:country" || value.len() == 2).then(|| site_link(site, &v));
            json!({
                "value": value,
                "flag": if panel.dim == "visit:country" { flag(&value) } else { String::new() },
                "link": link,
                "visitors": format_metric("visitors", visitors),
                "second": format_metric(panel.metrics[1], second),
                "bar_svg": chart::share_bar(visitors.unwrap_or(0.0), whole),
            })
        })
        .collect()
}

fn metric_label(id: &str) -> &'static str {
    match id {
        "visitors" => "Visitors",
        "visits" => "Visits",
        "pageviews" => "Pageviews",
        "events" => "Events",
        _ => "",
    }
}

/// The headline: each metric with its change against the comparison, and the link that charts it.
pub(super) fn headline(site: &str, view: &View, q: &Query, a: &Answer) -> (Vec<Value>, f64) {
    let now = a
        .table
        .rows
        .first()
        .map(|r| r.1.clone())
        .unwrap_or_default();
    let then = a
        .comparison
        .as_ref()
        .and_then(|c| c.first())
        .map(|r| r.1.clone());
    let mut visitors = 0.0;
    let items = view::METRICS
        .iter()
        .map(|(id, label)| {
            let i = q.metrics.iter().position(|m| m.name() == *id);
            let value = i.and_then(|i| figure(now.get(i)));
            if *id == "visitors" {
                visitors = value.unwrap_or(0.0);
            }
            let change = match (i, &then) {
                (Some(i), Some(then)) => plausible::change(
                    q.metrics[i],
                    now[i],
                    then.get(i).copied().unwrap_or(Figure::Null),
                )
                .as_i64(),
                _ => None,
            };
            let good = change.map(|c| if *id == "bounce_rate" { c <= 0 } else { c >= 0 });
            let unit = if *id == "bounce_rate" { " pts" } else { "%" };
            json!({
                "id": id,
                "label": label,
                "value": format_metric(id, value),
                "raw": value,
                "change": change.map(|c| format!("{}{c}{unit}", if c > 0 { "+" } else { "" })),
                "good": good,
                "then": then.as_ref().and_then(|t| i.map(|i| format_metric(id, figure(t.get(i))))),
                "link": site_link(site, &view.with_metric(id)),
                "active": view.metric == *id,
                "available": i.is_some(),
            })
        })
        .collect();
    (items, visitors)
}

/// The chart of the view's metric, the comparison's beside it.
fn chart_svg(view: &View, q: &Query, a: &Answer, now_ts: i64) -> String {
    let bucket = match q.time_dimension() {
        Some(Dimension::Hour) => Bucket::Hour,
        Some(Dimension::Week) => Bucket::Week,
        Some(Dimension::Month) => Bucket::Month,
        _ => Bucket::Day,
    };
    let current = bucket.label(now_ts, &q.period);
    let pick = |values: &[Figure]| -> Option<f64> {
        let get = |name: &str| {
            q.metrics
                .iter()
                .position(|m| m.name() == name)
                .and_then(|i| figure(values.get(i)))
        };
        if view.metric == "views_per_visit" {
            let (p, v) = (get("pageviews")?, get("visits")?);
            Some(if v > 0.0 {
                (p / v * 100.0).round() / 100.0
            } else {
                0.0
            })
        } else {
            get(&view.metric)
        }
    };
    let labels: Vec<String> = a
        .table
        .rows
        .iter()
        .map(|r| r.0.first().cloned().unwrap_or_default())
        .collect();
    let values: Vec<Option<f64>> = a
        .table
        .rows
        .iter()
        .map(|(d, v)| {
            let future = d.first().is_some_and(|l| *l > current);
            if future { None } else { pick(v) }
        })
        .collect();
    let cmp = a.comparison.as_ref().map(|rows| {
        let labels: Vec<String> = rows
            .iter()
            .map(|r| r.0.first().cloned().unwrap_or_default())
            .collect();
        let values: Vec<Option<f64>> = rows.iter().map(|r| pick(&r.1)).collect();
        (labels, values)
    });
    let label = view::METRICS
        .iter()
        .find(|(id, _)| *id == view.metric)
        .map(|(_, l)| *l)
        .unwrap_or("Visitors");
    let bucket_name = match bucket {
        Bucket::Hour => "hour",
        Bucket::Day => "day",
        Bucket::Week => "week",
        Bucket::Month => "month",
    };
    chart::timeseries(
        &view.metric,
        label,
        bucket_name,
        &Series {
            labels: &labels,
            values: &values,
        },
        cmp.as_ref()
            .map(|(l, v)| Series {
                labels: l,
                values: v,
            })
            .as_ref(),
    )
}

/// The view's form fields and chips, shared by the dashboard and the full breakdown.
pub(super) fn view_context(site: &str, view: &View) -> minijinja::Value {
    let chips: Vec<Value> = view
        .filters
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (dim, op) = f.label();
            json!({"dim": dim, "op": op, "value": f.value, "remove": site_link(site, &view.without_filter(i))})
        })
        .collect();
    let periods: Vec<Value> = view::PERIODS
        .iter()
        .map(|(id, l)| json!({"id": id, "label": l, "selected": view.period == *id}))
        .collect();
    let compares: Vec<Value> = view::COMPARISONS
        .iter()
        .map(|(id, l)| json!({"id": id, "label": l, "selected": view.compare == *id}))
        .collect();
    let dims: Vec<Value> = panels::fixed()
        .iter()
        .filter(|p| p.extra.is_empty())
        .map(|p| json!({"id": p.dim, "label": view::dimension_label(&p.dim)}))
        .chain(std::iter::once(
            json!({"id": "event:name", "label": "Event"}),
        ))
        .collect();
    let ops: Vec<Value> = view::OPERATORS
        .iter()
        .map(|(id, l)| json!({"id": id, "label": l}))
        .collect();
    let fmt = |d: Option<time::Date>| {
        d.map(crate::domain::stats::period::format_date)
            .unwrap_or_default()
    };
    context! {
        site_id => site,
        chips => Serde(chips),
        periods => Serde(periods),
        compares => Serde(compares),
        filter_dims => Serde(dims),
        operators => Serde(ops),
        period_label => view.period_label(),
        from => fmt(view.from),
        to => fmt(view.to),
        metric => view.metric.clone(),
        period => view.period.clone(),
        compare => view.compare.clone(),
        hidden_filters => view.filters.iter().map(UrlFilter::encode).collect::<Vec<_>>(),
        query => view.query_string(),
    }
}

/// `GET /sites/{site}`: the dashboard of a site.
pub async fn site(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, site_page(&req, &path, &state).await)
}

async fn site_page(req: &HttpRequest, site: &str, state: &AppState) -> Page {
    let me = require(req, state).await?;
    let entry = readable(state, &me, site)?;
    let view = view_of(req)?;
    let clock = clock(state, site).await?;
    let base = context! { site_name => entry.config.name.clone(), ..context! { ..chrome(&me, &entry.config.name), ..view_context(site, &view) } };
    if clock.first_day.is_none() {
        let snippet = crate::commands::site::snippet(&state.settings, site);
        return render("site.html", context! { empty => true, snippet, ..base });
    }
    let today = clock.today();
    let mut queries = vec![
        data::query(&panels::headline(site, &view, today), &clock)?,
        data::query(&panels::timeseries(site, &view, today), &clock)?,
    ];
    let fixed = panels::fixed();
    let top = Slice {
        limit: TOP,
        ..Slice::default()
    };
    for p in &fixed {
        queries.push(data::query(
            &panels::breakdown(site, &view, today, p, &top),
            &clock,
        )?);
    }
    let period = queries[0].period;
    let answers = run_panels(state, queries.clone()).await?;
    let keys = state
        .store
        .prop_keys(
            site.to_string(),
            period.first_day(),
            period.last_day(),
            MAX_PROPS,
        )
        .await?;
    let props: Vec<Panel> = keys
        .iter()
        .filter(|k| !k.is_empty() && k.as_str() != "url")
        .map(|k| panels::property(k))
        .filter(|p| Dimension::parse(&p.dim).is_some())
        .collect();
    let mut prop_queries = Vec::new();
    for p in &props {
        prop_queries.push(data::query(
            &panels::breakdown(site, &view, today, p, &top),
            &clock,
        )?);
    }
    let prop_answers = run_panels(state, prop_queries).await?;
    let (head, visitors) = headline(site, &view, &queries[0], &answers[0]);
    let chart = chart_svg(&view, &queries[1], &answers[1], clock.now);
    // Consent figures are not filtered by visit dimensions; the estimate stands for the unfiltered view.
    let consent = super::consent::summary(state, site, &period).await?;
    let consent_card = super::consent::card(
        &consent,
        visitors,
        format!("/sites/{site}/consent?{}", view.query_string()),
    );
    let all: Vec<(&Panel, &Answer)> = fixed
        .iter()
        .zip(&answers[2..])
        .chain(props.iter().zip(&prop_answers))
        .collect();
    let cards: Vec<Value> = panels::CARDS
        .iter()
        .map(|card| {
            let tabs: Vec<Value> = all
                .iter()
                .filter(|(p, _)| p.card == *card)
                .map(|(p, a)| panel_json(site, &view, p, a, visitors))
                .collect();
            json!({"title": card, "panels": tabs})
        })
        .filter(|c| c["panels"].as_array().is_some_and(|p| !p.is_empty()))
        .collect();
    render(
        "site.html",
        context! {
            empty => false,
            headline => Serde(head),
            chart_svg => chart,
            comparing => view.compare != "none",
            export_all => format!("/sites/{site}/export.zip?{}", view.query_string()),
            export_series => with_pairs(format!("/sites/{site}/export?{}", view.query_string()), &[("panel", "timeseries")]),
            cards => Serde(cards),
            consent => Serde(consent_card),
            filtered => !view.filters.is_empty(),
            ..base
        },
    )
}

pub(super) fn panel_json(site: &str, view: &View, p: &Panel, a: &Answer, whole: f64) -> Value {
    let extra = [("panel", p.id.as_str())];
    json!({
        "id": p.id,
        "title": p.title,
        "dim": view::dimension_label(&p.dim),
        "second": metric_label(p.metrics[1]),
        "rows": panel_rows(site, view, p, a, whole),
        "more": a.table.total_rows > TOP,
        "details": with_pairs(format!("/sites/{site}/breakdown?{}", view.query_string()), &extra),
        "export": with_pairs(format!("/sites/{site}/export?{}", view.query_string()), &extra),
    })
}
