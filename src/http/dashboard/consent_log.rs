//! `/sites/{site}/consents`: a site's consent log, the proof of each visitor's choice (GDPR art. 7(1)):
//! searched by consent id (exact), date range (the site's days) and action, paged, newest first; each
//! record with its time, action, choices, language, page, policy revision and the hash of the texts
//! shown. `/sites/{site}/consents.csv` exports a range; `/sites/{site}/consents/revisions/{n}` shows
//! what visitors were shown at revision `n`, as stored when it began, and checks it against the hash.
//!
//! Consent ids are personal data: these pages show them to the site's users only, and the request log
//! records route patterns, never paths or query strings (see [`crate::http::middleware`]).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::context;
use minijinja::value::Serde;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::Date;

use super::auth::require;
use super::pages::{chrome, readable};
use super::{Fail, Page, query_pairs, render, respond};
use crate::domain::consent::{Action, ConsentId, ConsentRecord};
use crate::domain::stats::period::{Zone, format_date};
use crate::error::Error;
use crate::state::AppState;
use crate::storage::consents::LogFilter;

/// Records on a page of the log.
const PAGE_SIZE: usize = 50;
/// Most records one CSV export holds; a larger range is refused with a message to narrow it.
const MAX_EXPORT: u64 = 1_000_000;

/// The actions, with their labels.
const ACTIONS: [(&str, &str); 5] = [
    ("accept_all", "Accept all"),
    ("reject_all", "Reject all"),
    ("custom", "Custom"),
    ("withdraw", "Withdraw"),
    ("gpc", "GPC signal"),
];

/// The search of a request, as the form shows it and as the store asks it.
struct Search {
    id: String,
    from: String,
    to: String,
    action: String,
    page: usize,
    filter: LogFilter,
}

fn parse_date(field: &str, s: &str) -> Result<Option<Date>, Fail> {
    if s.is_empty() {
        return Ok(None);
    }
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map(Some)
        .map_err(|_| Fail::Error(Error::bad(format!("{field}: expected a date YYYY-MM-DD"))))
}

/// The search of the query string; bad values are a 400 naming the field.
fn search_of(req: &HttpRequest, zone: Zone) -> Result<Search, Fail> {
    let pairs = query_pairs(req);
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(x, _)| x == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let (id, from, to, action) = (get("id"), get("from"), get("to"), get("action"));
    let mut filter = LogFilter::default();
    if !id.is_empty() {
        let parsed = ConsentId::parse(&id.to_ascii_lowercase()).ok_or_else(|| {
            Fail::Error(Error::bad(
                "id: a consent id is 32 hexadecimal digits (shown in the banner's preferences)",
            ))
        })?;
        filter.consent_id = Some(parsed);
    }
    let (a, b) = (parse_date("from", &from)?, parse_date("to", &to)?);
    if let (Some(a), Some(b)) = (a, b)
        && a > b
    {
        return Err(Fail::Error(Error::bad("from: must not be after to")));
    }
    filter.from = a.map(|d| zone.start_of(d));
    filter.to = b.map(|d| d.next_day().map(|n| zone.start_of(n)).unwrap_or(i64::MAX));
    if !action.is_empty() {
        filter.action = Some(Action::parse(&action).ok_or_else(|| {
            Fail::Error(Error::bad(format!(
                "action: unknown action {action:?} (accept_all, reject_all, custom, withdraw or gpc)"
            )))
        })?);
    }
    let page = match get("page").as_str() {
        "" => 1,
        p => p
            .parse::<usize>()
            .ok()
            .filter(|p| (1..=100_000).contains(p))
            .ok_or_else(|| Fail::Error(Error::bad("page: a number from 1")))?,
    };
    Ok(Search {
        id,
        from,
        to,
        action,
        page,
        filter,
    })
}

impl Search {
    /// The query string of this search (without `?`), with `page` when given.
    fn query(&self, page: Option<usize>) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("id", &self.id),
            ("from", &self.from),
            ("to", &self.to),
            ("action", &self.action),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        if let Some(p) = page {
            s.append_pair("page", &p.to_string());
        }
        s.finish()
    }
}

fn choices_text(rec: &ConsentRecord) -> String {
    rec.choices
        .iter()
        .map(|(k, v)| format!("{k}: {}", if *v { "yes" } else { "no" }))
        .collect::<Vec<_>>()
        .join(", ")
}

fn action_label(a: Action) -> &'static str {
    ACTIONS
        .iter()
        .find(|(id, _)| *id == a.as_str())
        .map(|(_, l)| *l)
        .unwrap_or("")
}

/// `GET /sites/{site}/consents`
pub async fn page(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, log_page(&req, &path, &state).await)
}

async fn log_page(req: &HttpRequest, site: &str, state: &AppState) -> Page {
    let me = require(req, state).await?;
    let entry = readable(state, &me, site)?;
    let zone = Zone::parse(&entry.config.timezone).unwrap_or_else(Zone::utc);
    let search = search_of(req, zone)?;
    let (records, total) = state
        .store
        .consent_log(
            site.to_string(),
            search.filter.clone(),
            PAGE_SIZE,
            (search.page - 1) * PAGE_SIZE,
        )
        .await?;
    let stored = state.store.stored_revisions(site.to_string()).await?;
    let rows: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "time": zone.iso(r.created_at.unix_timestamp()).replacen('T', " ", 1),
                "id": r.consent_id.to_string(),
                "id_link": format!("/sites/{site}/consents?id={}", r.consent_id),
                "action": action_label(r.action),
                "choices": choices_text(r),
                "language": r.language.clone().unwrap_or_default(),
                "page": r.page_path.clone().unwrap_or_default(),
                "revision": r.revision,
                "hash": r.policy_hash,
                "texts": stored.contains(&r.revision).then(|| format!("/sites/{site}/consents/revisions/{}", r.revision)),
                "current": r.revision == entry.revision,
            })
        })
        .collect();
    let pages = (total as usize).div_ceil(PAGE_SIZE).max(1);
    let link = |p: usize| format!("/sites/{site}/consents?{}", search.query(Some(p)));
    let actions: Vec<Value> = ACTIONS
        .iter()
        .map(|(id, l)| json!({"id": id, "label": l, "selected": search.action == *id}))
        .collect();
    render(
        "consent_log.html",
        context! {
            site_id => site,
            site_name => entry.config.name.clone(),
            revision => entry.revision,
            records => Serde(rows),
            total,
            page => search.page,
            pages,
            prev => (search.page > 1).then(|| link(search.page - 1)),
            next => (search.page < pages).then(|| link(search.page + 1)),
            export => format!("/sites/{site}/consents.csv?{}", search.query(None)),
            q_id => search.id.clone(),
            q_from => search.from.clone(),
            q_to => search.to.clone(),
            actions => Serde(actions),
            timezone => entry.config.timezone.clone(),
            ..chrome(&me, &format!("Consent log · {}", entry.config.name))
        },
    )
}

/// Rows as CSV with the escaping of every CSV Assent writes ([`crate::domain::stats::csv::cell`]).
pub fn csv_rows(header: &[&str], rows: Vec<Vec<String>>) -> String {
    crate::domain::stats::csv::rows(header, &rows)
}

/// `GET /sites/{site}/consents.csv`: the records of a search (every page), oldest first, as proof.
pub async fn export(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, export_csv(&req, &path, &state).await)
}

async fn export_csv(req: &HttpRequest, site: &str, state: &AppState) -> Page {
    let me = require(req, state).await?;
    let entry = readable(state, &me, site)?;
    let zone = Zone::parse(&entry.config.timezone).unwrap_or_else(Zone::utc);
    let search = search_of(req, zone)?;
    let (_, total) = state
        .store
        .consent_log(site.to_string(), search.filter.clone(), 1, 0)
        .await?;
    if total > MAX_EXPORT {
        return Err(Fail::Error(Error::bad(format!(
            "The range holds {total} records, more than {MAX_EXPORT} for one file: choose a shorter range."
        ))));
    }
    let (mut records, _) = state
        .store
        .consent_log(site.to_string(), search.filter.clone(), total as usize, 0)
        .await?;
    records.reverse();
    let utc = Zone::utc();
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                utc.iso(r.created_at.unix_timestamp()),
                r.consent_id.to_string(),
                r.action.as_str().to_string(),
                serde_json::to_string(&r.choices).unwrap_or_default(),
                r.language.clone().unwrap_or_default(),
                r.page_path.clone().unwrap_or_default(),
                r.revision.to_string(),
                r.policy_hash.clone(),
                utc.iso(r.expires_at.unix_timestamp()),
            ]
        })
        .collect();
    let text = csv_rows(
        &[
            "time_utc",
            "consent_id",
            "action",
            "choices",
            "language",
            "page",
            "revision",
            "policy_hash",
            "expires_at_utc",
        ],
        rows,
    );
    let range = match (search.from.as_str(), search.to.as_str()) {
        ("", "") => "all".to_string(),
        (a, b) => format!(
            "{}_{}",
            if a.is_empty() { "start" } else { a },
            if b.is_empty() { "now" } else { b }
        ),
    };
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{site}-consents-{range}.csv\""),
        ))
        .body(text))
}

/// `GET /sites/{site}/consents/revisions/{n}`: the categories and texts visitors were shown at a
/// revision, as stored when it began, with the check that they hash to the value the records carry.
pub async fn revision(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let (site, n) = path.into_inner();
    respond(&req, revision_page(&req, &site, &n, &state).await)
}

async fn revision_page(req: &HttpRequest, site: &str, n: &str, state: &AppState) -> Page {
    let me = require(req, state).await?;
    let entry = readable(state, &me, site)?;
    let n: u32 = n
        .parse()
        .map_err(|_| Fail::Error(Error::bad("revision: a number")))?;
    let stored = state
        .store
        .revision_policy(site.to_string(), n)
        .await?
        .ok_or_else(|| Fail::Error(Error::NotFound(format!("no revision {n}"))))?;
    let matches = hex::encode(Sha256::digest(stored.policy.as_bytes())) == stored.policy_hash;
    let policy: Value = serde_json::from_str(&stored.policy).unwrap_or(Value::Null);
    let pretty = serde_json::to_string_pretty(&policy).unwrap_or_default();
    let zone = Zone::parse(&entry.config.timezone).unwrap_or_else(Zone::utc);
    render(
        "consent_revision.html",
        context! {
            site_id => site,
            site_name => entry.config.name.clone(),
            revision => n,
            current => n == entry.revision,
            began => zone.iso(stored.created_at).replacen('T', " ", 1),
            began_day => format_date(zone.date(stored.created_at)),
            hash => stored.policy_hash,
            matches,
            policy => pretty,
            ..chrome(&me, &format!("Revision {n} · {}", entry.config.name))
        },
    )
}
