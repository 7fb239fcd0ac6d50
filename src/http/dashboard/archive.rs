//! `GET /sites/{site}/export.zip?<view>`: the whole view as one ZIP archive: `timeseries.csv` and one CSV
//! per panel (every row, the view's period and filters), each as the panel's own export writes it.

use std::io::Write;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::auth::require;
use super::data::{self, clock, run_panels};
use super::pages::{readable, view_of};
use super::{Fail, Page, respond};
use crate::domain::dashboard::panels::{self, Panel, Slice};
use crate::domain::stats::csv;
use crate::domain::stats::query::MAX_LIMIT;
use crate::error::Error;
use crate::state::AppState;

/// Property panels in an archive at most.
const MAX_PROPS: usize = 50;

/// A file name for a panel id (`prop:plan` -> `prop-plan`).
fn file_name(id: &str) -> String {
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
    format!("{safe}.csv")
}

/// The archive's files: (name, CSV text).
pub async fn files(
    state: &AppState,
    site: &str,
    view: &crate::domain::dashboard::view::View,
) -> Result<Vec<(String, String)>, Fail> {
    let clock = clock(state, site).await?;
    let today = clock.today();
    let mut series = data::query(&panels::timeseries(site, view, today), &clock)?;
    series.comparison = None;
    let period = series.period;
    // Rollups of open visits are written first, so the property keys include the latest events'.
    state.store.flush().await?;
    let keys = state
        .store
        .prop_keys(
            site.to_string(),
            period.first_day(),
            period.last_day(),
            MAX_PROPS,
        )
        .await?;
    let mut all: Vec<Panel> = panels::fixed();
    all.extend(
        keys.iter()
            .filter(|k| !k.is_empty() && k.as_str() != "url")
            .map(|k| panels::property(k))
            .filter(|p| crate::domain::stats::dims::Dimension::parse(&p.dim).is_some()),
    );
    let every = Slice {
        limit: MAX_LIMIT,
        ..Slice::default()
    };
    let mut queries = vec![series];
    for p in &all {
        queries.push(data::query(
            &panels::breakdown(site, view, today, p, &every),
            &clock,
        )?);
    }
    let answers = run_panels(state, queries.clone()).await?;
    let names = std::iter::once("timeseries".to_string()).chain(all.iter().map(|p| p.id.clone()));
    Ok(names
        .zip(queries.iter().zip(&answers))
        .map(|(id, (q, a))| {
            (
                file_name(&id),
                csv::table(&q.dimensions, &q.metrics, &a.table.rows),
            )
        })
        .collect())
}

/// The files as a ZIP archive (deflated).
pub fn zip(files: &[(String, String)]) -> Result<Vec<u8>, Error> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let fail = |e: &dyn std::fmt::Display| Error::Internal(format!("writing the archive: {e}"));
    for (name, text) in files {
        w.start_file(name.as_str(), options).map_err(|e| fail(&e))?;
        w.write_all(text.as_bytes()).map_err(|e| fail(&e))?;
    }
    Ok(w.finish().map_err(|e| fail(&e))?.into_inner())
}

/// `GET /sites/{site}/export.zip`
pub async fn export(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    respond(&req, archive(&req, &path, &state).await)
}

async fn archive(req: &HttpRequest, site: &str, state: &AppState) -> Page {
    let me = require(req, state).await?;
    readable(state, &me, site)?;
    let view = view_of(req)?;
    let files = files(state, site, &view).await?;
    let bytes = zip(&files)?;
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{site}-{}.zip\"", view.period),
        ))
        .body(bytes))
}
