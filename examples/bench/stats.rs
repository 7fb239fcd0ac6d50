//! The `stats` scenario: a dashboard's set of Stats API queries, timed, beside the same questions asked
//! in raw SQL of the same SQLite file.

use std::time::Instant;

use crate::server::{Server, request_with};

/// The Stats API queries of a dashboard over `range`, each with a label and its raw-SQL equivalent.
fn dashboard(
    site: &str,
    range: &serde_json::Value,
    filter: &serde_json::Value,
) -> Vec<(String, serde_json::Value)> {
    use serde_json::json;
    // Plausible refuses views_per_visit beside an event:page filter (the rule is kept here).
    let page_filter = filter.to_string().contains("event:page");
    let mut headline = vec![
        "visitors",
        "visits",
        "pageviews",
        "views_per_visit",
        "bounce_rate",
        "visit_duration",
    ];
    if page_filter {
        headline.retain(|m| *m != "views_per_visit");
    }
    let mut out = vec![
        (
            "headline, with comparison".to_string(),
            json!({"site_id": site, "metrics": headline,
                   "date_range": range, "filters": filter, "include": {"comparisons": {"mode": "previous_period"}}}),
        ),
        (
            "time series".to_string(),
            json!({"site_id": site, "metrics": ["visitors", "pageviews"], "date_range": range, "filters": filter, "dimensions": ["time"]}),
        ),
    ];
    let breakdowns = [
        ("event:page", json!(["visitors", "pageviews"])),
        ("visit:entry_page", json!(["visitors", "bounce_rate"])),
        ("visit:exit_page", json!(["visitors"])),
        ("visit:source", json!(["visitors", "bounce_rate"])),
        ("visit:referrer", json!(["visitors"])),
        ("visit:utm_campaign", json!(["visitors"])),
        ("visit:country", json!(["visitors"])),
        ("visit:browser", json!(["visitors"])),
        ("visit:os", json!(["visitors"])),
        ("visit:device", json!(["visitors"])),
    ];
    for (dim, metrics) in breakdowns {
        out.push((
            dim.to_string(),
            json!({"site_id": site, "metrics": metrics, "date_range": range, "filters": filter,
                   "dimensions": [dim], "pagination": {"limit": 10}}),
        ));
    }
    out
}

/// The same questions in raw SQL over the visits and events tables (UTC days), for the baseline.
fn raw_sql(site: &str, from: i64, to: i64, filter_country: Option<&str>) -> Vec<(String, String)> {
    let cond = format!(
        "site_id = '{site}' AND started_at >= {from} AND started_at < {to}{}",
        filter_country
            .map(|c| format!(" AND country = '{c}'"))
            .unwrap_or_default()
    );
    let prev = format!(
        "site_id = '{site}' AND started_at >= {} AND started_at < {from}{}",
        2 * from - to,
        filter_country
            .map(|c| format!(" AND country = '{c}'"))
            .unwrap_or_default()
    );
    let headline = |c: &str| {
        format!(
            "SELECT COUNT(DISTINCT visitor), COUNT(*), SUM(pageviews), SUM(pageviews = 1 AND events = 1),
                    SUM(CASE WHEN engaged_ms > 0 THEN engaged_ms / 1000 ELSE last_at - started_at END) FROM visits WHERE {c}"
        )
    };
    let by = |col: &str, extra: &str| {
        format!(
            "SELECT {col}, COUNT(DISTINCT visitor){extra} FROM visits WHERE {cond} GROUP BY {col} ORDER BY 2 DESC LIMIT 10"
        )
    };
    vec![
        (
            "headline, with comparison".to_string(),
            format!("{}; {}", headline(&cond), headline(&prev)),
        ),
        (
            "time series".to_string(),
            format!(
                "SELECT started_at / 86400, COUNT(DISTINCT visitor), SUM(pageviews) FROM visits WHERE {cond} GROUP BY 1"
            ),
        ),
        (
            "event:page".to_string(),
            format!(
                "SELECT e.path, COUNT(DISTINCT v.visitor), COUNT(*) FROM visits v
                 JOIN events e ON e.id BETWEEN v.first_event AND v.last_event AND e.visit_id = v.id
                 WHERE v.{} AND e.name = 'pageview' GROUP BY e.path ORDER BY 2 DESC LIMIT 10",
                cond
            ),
        ),
        (
            "visit:entry_page".to_string(),
            by("entry_page", ", AVG(pageviews = 1 AND events = 1)"),
        ),
        ("visit:exit_page".to_string(), by("exit_page", "")),
        (
            "visit:source".to_string(),
            by("source", ", AVG(pageviews = 1 AND events = 1)"),
        ),
        ("visit:referrer".to_string(), by("referrer", "")),
        ("visit:utm_campaign".to_string(), by("utm_campaign", "")),
        ("visit:country".to_string(), by("country", "")),
        ("visit:browser".to_string(), by("browser", "")),
        ("visit:os".to_string(), by("os", "")),
        ("visit:device".to_string(), by("device", "")),
    ]
}

fn time_sql(conn: &rusqlite::Connection, sql: &str) -> f64 {
    let t = Instant::now();
    for statement in sql.split("; ") {
        let mut stmt = conn.prepare(statement).expect("raw SQL");
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).expect("raw SQL");
        while let Some(r) = rows.next().expect("raw SQL") {
            for c in 0..columns {
                let _ = r.get_ref(c);
            }
        }
    }
    t.elapsed().as_secs_f64() * 1000.0
}

fn median3(mut f: impl FnMut() -> f64) -> f64 {
    let mut v = [f(), f(), f()];
    v.sort_by(f64::total_cmp);
    v[1]
}

pub fn stats_bench(server: &Server, key: &str, site: &str, api_only: bool) {
    // On PostgreSQL (`--database-url`) only the API is timed: the raw SQL and the file are SQLite's.
    let api_only = api_only || server.state.settings.database_url.is_some();
    let conn = rusqlite::Connection::open_with_flags(
        server.dir.join("assent.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("db");
    let events: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap_or(0);
    let size = std::fs::metadata(server.dir.join("assent.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    let consents: i64 = conn
        .query_row(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name LIKE 'consents%'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    println!(
        "{events} events; database {:.0} MB: {:.0} bytes per event, {:.0} without the consent log\n",
        size as f64 / 1e6,
        size as f64 / events.max(1) as f64,
        (size as i64 - consents) as f64 / events.max(1) as f64
    );
    let now = assent::now();
    let today = now.div_euclid(86_400) * 86_400;
    let auth = format!("Authorization: Bearer {key}\r\n");
    let ask = |body: &serde_json::Value| {
        let t = Instant::now();
        let (status, answer) = request_with(
            &server.addr,
            "POST",
            "/api/v2/query",
            &body.to_string(),
            &auth,
        );
        assert_eq!(status, 200, "{body}: {answer}");
        t.elapsed().as_secs_f64() * 1000.0
    };
    let (idle, _) = server.rss_mb();
    let mut peak: f64 = 0.0;
    let empty = serde_json::json!([]);
    let country = serde_json::json!([["is", "visit:country", ["FR"]]]);
    let page = serde_json::json!([["is", "event:page", ["/pricing"]]]);
    for (label, range, days, filter, raw_country) in [
        ("30 days", serde_json::json!("30d"), 30, &empty, None),
        ("12 months", serde_json::json!("12mo"), 365, &empty, None),
        (
            "30 days, filter visit:country is FR",
            serde_json::json!("30d"),
            30,
            &country,
            Some("FR"),
        ),
        (
            "30 days, filter event:page is /pricing",
            serde_json::json!("30d"),
            30,
            &page,
            None,
        ),
    ] {
        println!("**{label}**\n");
        println!("| query | Stats API ms | raw SQL ms |");
        println!("|---|---:|---:|");
        let queries = dashboard(site, &range, filter);
        let raw = raw_sql(site, today - days * 86_400, today, raw_country);
        let (mut api_total, mut raw_total) = (0.0, 0.0);
        // The server's memory while it answers this set: the peak is reset first, and read before the
        // raw SQL (run in this process too) adds its own.
        server.reset_peak();
        let api_times: Vec<f64> = queries
            .iter()
            .map(|(_, body)| median3(|| ask(body)))
            .collect();
        // The whole set once more, as a dashboard asks it: one after another, cold from the first.
        let t = Instant::now();
        for (_, body) in &queries {
            ask(body);
        }
        let set = t.elapsed().as_secs_f64() * 1000.0;
        // And as the dashboard asks it: one batch, the rows of each period read once.
        let batch = serde_json::Value::Array(queries.iter().map(|(_, b)| b.clone()).collect());
        let one_batch = median3(|| {
            let t = Instant::now();
            let (status, answer) = request_with(
                &server.addr,
                "POST",
                "/api/v2/queries",
                &batch.to_string(),
                &auth,
            );
            assert_eq!(status, 200, "{answer}");
            t.elapsed().as_secs_f64() * 1000.0
        });
        let (_, set_peak) = server.rss_mb();
        peak = peak.max(set_peak);
        for ((name, _), api) in queries.iter().zip(api_times) {
            let sql = raw
                .iter()
                .find(|(n, _)| n == name)
                .filter(|_| {
                    !api_only
                        && (filter.as_array().is_some_and(|f| f.is_empty())
                            || raw_country.is_some())
                })
                .map(|(_, sql)| {
                    // Slow baselines run once: a minute-long query needs no median.
                    let first = time_sql(&conn, sql);
                    if first > 2000.0 {
                        first
                    } else {
                        median3(|| time_sql(&conn, sql))
                    }
                });
            api_total += api;
            raw_total += sql.unwrap_or(0.0);
            println!(
                "| {name} | {api:.1} | {} |",
                sql.map(|s| format!("{s:.1}")).unwrap_or_else(|| "—".into())
            );
        }
        println!(
            "| **whole set** (sum of medians / one pass / one batch) | {api_total:.1} / {set:.1} / **{one_batch:.1}** | {} |\n",
            if raw_total > 0.0 {
                format!("{raw_total:.1}")
            } else {
                "—".into()
            }
        );
        println!("server memory while answering this set: {set_peak:.1} MB peak\n");
    }
    let (rss, _) = server.rss_mb();
    println!(
        "server memory: {idle:.1} MB before the queries, {rss:.1} MB after; {peak:.1} MB peak while answering"
    );
}
