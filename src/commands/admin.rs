//! `assent user add`, `assent key create`, `assent purge` and `assent backup`.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::consent::sub_months;
use crate::settings::Settings;
use crate::storage::users;

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
    let report = db.purge(cutoff.unix_timestamp(), dry_run)?;
    let verb = if dry_run { "Would delete" } else { "Deleted" };
    println!(
        "{verb} data older than {} ({} months):",
        cutoff.format(&Rfc3339).unwrap_or_default(),
        settings.retention_months
    );
    println!("  events: {}", report.events);
    println!("  visits: {}", report.visits);
    println!("  consent records: {}", report.consent_records);
    Ok(())
}

pub fn backup(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    if file.exists() {
        bail!("{} exists already; choose a new file name", file.display());
    }
    let db = super::open(settings)?;
    db.backup(file)?;
    println!(
        "Backed up {} to {}",
        settings.db_path().display(),
        file.display()
    );
    Ok(())
}
