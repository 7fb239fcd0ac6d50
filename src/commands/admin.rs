//! `assent user add`, `assent key create`, `assent purge`, `assent backup` and `assent consents export`.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::consent::sub_months;
use crate::settings::Settings;
use crate::storage::{PurgeStep, users};

pub fn user_add(
    settings: &Settings,
    email: &str,
    admin: bool,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let db = super::open(settings)?;
    let (password, generated) = if password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the password from standard input")?;
        (s.trim_end_matches(['\r', '\n']).to_string(), false)
    } else {
        (users::generate_password()?, true)
    };
    db.add_user(email, &password, admin, crate::now())?;
    if generated {
        println!("Added user {email} with password: {password}");
    } else {
        println!("Added user {email}.");
    }
    Ok(())
}

pub fn key_create(settings: &Settings, email: &str, name: &str) -> anyhow::Result<()> {
    let db = super::open(settings)?;
    let key = db.create_key(email, name, crate::now())?;
    println!("{key}");
    eprintln!("This key is shown once; store it now. Use it as: Authorization: Bearer <key>");
    Ok(())
}

pub fn purge(settings: &Settings, as_of: Option<&str>, dry_run: bool) -> anyhow::Result<()> {
    let now = match as_of {
        Some(t) => OffsetDateTime::parse(t, &Rfc3339).with_context(|| {
            format!("invalid --as-of {t:?}: expected RFC 3339, e.g. 2027-01-31T00:00:00Z")
        })?,
        None => OffsetDateTime::now_utc(),
    };
    let cutoff = sub_months(now, settings.retention_months);
    let mut db = super::open(settings)?;
    let mut progress = super::progress::Progress::new("purge", "records", None);
    let report = db.purge_with(cutoff.unix_timestamp(), dry_run, &mut |step| match step {
        PurgeStep::Slice(so_far) => progress.set(
            (so_far.events + so_far.visits + so_far.consent_records) as u64,
            None,
        ),
        PurgeStep::Scrubbing => progress.note("zeroing the unused space of pages"),
    })?;
    progress.finish();
    let verb = if dry_run { "Would delete" } else { "Deleted" };
    println!(
        "{verb} data older than {} ({} months):",
        cutoff.format(&Rfc3339).unwrap_or_default(),
        settings.retention_months
    );
    println!("  events: {}", report.events);
    println!("  visits: {}", report.visits);
    println!("  consent records: {}", report.consent_records);
    if !dry_run {
        println!(
            "Stored as a retention receipt{}.",
            if report.events + report.visits + report.consent_records > 0 {
                "; the database file was rewritten and its write-ahead log emptied, so no copy remains"
            } else {
                ""
            }
        );
    }
    Ok(())
}

pub fn backup(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    if file.exists() {
        bail!("{} exists already; choose a new file name", file.display());
    }
    let db = super::open(settings)?;
    let mut progress = super::progress::Progress::new("backup", "pages", None);
    db.backup_with(file, &mut |copied, total| progress.set(copied, Some(total)))?;
    progress.finish();
    println!(
        "Backed up {} to {}",
        settings.db_path().display(),
        file.display()
    );
    Ok(())
}

/// `assent migrate-to URL`: copies the data directory's SQLite database into an empty PostgreSQL
/// database, then prints the rows of each table on both sides (equal, or nothing is kept).
pub fn migrate_to(settings: &Settings, url: &str) -> anyhow::Result<()> {
    use crate::storage::sql::{Conn, redact_url};
    use crate::storage::{db, migrate, postgres};
    if !postgres::is_postgres_url(url) {
        bail!(
            "{:?} is not a PostgreSQL URL: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
            redact_url(url)
        );
    }
    let path = settings.db_path();
    if !path.exists() {
        bail!("there is no database at {} to migrate", path.display());
    }
    // No server may write the file meanwhile.
    let _lock = super::serve::lock_data_dir(settings)?;
    let mut sqlite = db::open_and_migrate(&path)?;
    let clean: String = Conn::Lite(&mut sqlite)
        .value("SELECT value FROM meta WHERE key = 'clean_shutdown'", &[])?;
    if clean != "1" {
        bail!(
            "the last server on {} did not stop cleanly: start it and stop it once (it mends the visit rows), then migrate",
            path.display()
        );
    }
    let mut target = postgres::open_and_migrate(url, crate::now())
        .with_context(|| format!("cannot open {}", redact_url(url)))?;
    let mut source = Conn::Lite(&mut sqlite);
    let total = migrate::rows_to_copy(&mut source)?;
    let mut progress = super::progress::Progress::new("migrate-to", "rows", Some(total));
    let counts = migrate::copy(&mut source, &mut target, &mut |done| {
        progress.set(done, None)
    })?;
    progress.finish();
    println!("Copied {} into {}:", path.display(), redact_url(url));
    for c in counts {
        println!(
            "  {:<18} {:>12} rows (SQLite {})",
            c.table, c.target, c.source
        );
    }
    println!(
        "Every table holds as many rows on both sides. Point the servers at it with --database-url."
    );
    Ok(())
}

/// `--from` / `--to`: a day (UTC; `--to` includes it) or an RFC 3339 instant.
fn bound(value: &str, flag: &str, end_of_day: bool) -> anyhow::Result<i64> {
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(value, &format).with_context(|| {
        format!("invalid {flag} {value:?}: expected a day (2026-01-31) or RFC 3339")
    })?;
    let day = if end_of_day {
        day.next_day().context("date out of range")?
    } else {
        day
    };
    Ok(day.midnight().assume_utc().unix_timestamp())
}

fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// `assent consents export`: the consent log of a site as proof of consent (GDPR art. 7(1)), each record
/// with its policy revision and the hash of the texts shown, to standard output.
pub fn consents_export(
    settings: &Settings,
    site: &str,
    from: Option<&str>,
    to: Option<&str>,
    format: &str,
) -> anyhow::Result<()> {
    use std::io::Write;
    if !matches!(format, "csv" | "jsonl") {
        bail!("invalid --format {format:?}: use csv or jsonl");
    }
    let from = from.map(|f| bound(f, "--from", false)).transpose()?;
    let to = to.map(|t| bound(t, "--to", true)).transpose()?;
    let db = super::open(settings)?;
    if db.site(site)?.is_none() {
        bail!("unknown site {site:?}");
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if format == "csv" {
        writeln!(
            out,
            "record,consent_id,created_at,site,revision,policy_hash,action,choices,language,page_path,expires_at"
        )?;
    }
    let io = |e: std::io::Error| crate::error::Error::Internal(format!("cannot write: {e}"));
    db.consent_log(
        site,
        from.unwrap_or(i64::MIN),
        to.unwrap_or(i64::MAX),
        |r| {
            if format == "csv" {
                let cells = [
                    r.record.to_string(),
                    r.consent_id.clone(),
                    rfc3339(r.created_at),
                    site.to_string(),
                    r.revision.to_string(),
                    r.policy_hash.clone(),
                    r.action.clone(),
                    r.choices.clone(),
                    r.language.clone().unwrap_or_default(),
                    r.page_path.clone().unwrap_or_default(),
                    rfc3339(r.expires_at),
                ];
                let line: Vec<String> = cells.iter().map(|c| crate::domain::stats::csv::cell(c)).collect();
                writeln!(out, "{}", line.join(",")).map_err(io)
            } else {
                let choices: serde_json::Value =
                    serde_json::from_str(&r.choices).unwrap_or_default();
                let v = serde_json::json!({
                    "record": r.record, "consent_id": r.consent_id, "created_at": rfc3339(r.created_at),
                    "site": site, "revision": r.revision, "policy_hash": r.policy_hash,
                    "action": r.action, "choices": choices, "language": r.language,
                    "page_path": r.page_path, "expires_at": rfc3339(r.expires_at),
                });
                writeln!(out, "{v}").map_err(io)
            }
        },
    )?;
    out.flush()?;
    Ok(())
}
