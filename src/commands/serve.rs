//! `assent serve`: one server per data directory (a lock file), first-run set-up (demo site, admin),
//! the HTTP server, and the background jobs (site reload, hourly retention). On SIGTERM or Ctrl-C it stops
//! accepting, finishes requests in flight, commits what is queued and exits 0.

use std::fs::File;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpServer, web};
use anyhow::{Context, bail};

use crate::domain::consent::sub_months;
use crate::settings::Settings;
use crate::state::AppState;
use crate::storage::{WriterGuard, sites, users};

const ADMIN_EMAIL: &str = "admin@assent.local";

/// Holds the data directory's lock for the life of the server.
fn lock_data_dir(settings: &Settings) -> anyhow::Result<File> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create data directory {}",
            settings.data_dir.display()
        )
    })?;
    let path = settings.data_dir.join("assent.lock");
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    if file.try_lock().is_err() {
        bail!(
            "another Assent server is already running on data directory {}",
            settings.data_dir.display()
        );
    }
    Ok(file)
}

/// Creates the demo site and an admin on a first run.
fn first_run(settings: &Settings) -> anyhow::Result<()> {
    let mut conn = super::open(settings)?;
    if sites::list(&conn)?.is_empty() {
        super::site::add(
            &mut conn,
            crate::DEMO_SITE,
            vec!["localhost".into(), "127.0.0.1".into()],
            Some("Demo".into()),
        )?;
        println!(
            "Created the demo site: open {}/demo (embed: {})",
            settings.public_url,
            super::site::snippet(settings, crate::DEMO_SITE)
        );
    }
    if users::count_users(&conn)? == 0 {
        let password = users::generate_password()?;
        users::add_user(&conn, ADMIN_EMAIL, &password, true, crate::now())?;
        println!("Created the admin login {ADMIN_EMAIL} with password {password} (shown once)");
    }
    Ok(())
}

pub fn run(settings: Settings) -> anyhow::Result<()> {
    let _lock = lock_data_dir(&settings)?;
    let listener = TcpListener::bind(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let settings = settings.with_bound_address(listener.local_addr()?);
    first_run(&settings)?;
    // Opening the store blocks (migrations, loading grants); it happens before the runtime starts.
    let (state, writer) = AppState::open(settings).context("cannot start")?;
    actix_web::rt::System::new().block_on(serve(state, writer, listener))
}

async fn serve(
    state: Arc<AppState>,
    writer: WriterGuard,
    listener: TcpListener,
) -> anyhow::Result<()> {
    let data = web::Data::from(state.clone());
    let server = HttpServer::new(move || crate::app(data.clone()))
        .listen(listener)?
        .shutdown_timeout(10)
        .run();
    println!("listening on {}", state.settings.public_url);
    tracing::info!(url = %state.settings.public_url, "listening");

    let jobs = actix_web::rt::spawn(background(state.clone()));
    server.await?;
    jobs.abort();
    writer.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Reloads sites when they change and applies retention every hour (and at start).
async fn background(state: Arc<AppState>) {
    let mut tick = actix_web::rt::time::interval(Duration::from_secs(1));
    let mut next_purge = crate::now();
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        if ticks.is_multiple_of(5)
            && let Err(e) = state.store.flush().await
        {
            tracing::warn!(error = %e, "writing open visits failed");
        }
        if let Err(e) = state.refresh_sites().await {
            tracing::warn!(error = %e, "reloading sites failed");
        }
        let now = crate::now();
        if now >= next_purge {
            next_purge = now + 3600;
            let now_dt = time::OffsetDateTime::from_unix_timestamp(now)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let cutoff = sub_months(now_dt, state.settings.retention_months).unix_timestamp();
            match state.store.purge(cutoff, now).await {
                Ok(r) => tracing::info!(
                    events = r.events,
                    visits = r.visits,
                    consent_records = r.consent_records,
                    "retention applied"
                ),
                Err(e) => tracing::error!(error = %e, "retention failed"),
            }
        }
    }
}
