//! `assent serve`: one server per data directory (a lock file), first-run set-up (demo site, admin),
//! the HTTP server, and the background jobs (site reload, hourly retention). On SIGTERM or Ctrl-C it stops
//! accepting, finishes requests in flight, commits what is queued and exits 0.

use std::fs::File;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

use actix_web::{HttpServer, web};
use anyhow::{Context, bail};

use crate::domain::consent::sub_months;
use crate::http::connections::{ConnectionLimiter, PER_NETWORK};
use crate::settings::Settings;
use crate::state::AppState;
use crate::storage::{WriterGuard, users};

const ADMIN_EMAIL: &str = "admin@assent.local";

/// Holds the data directory's lock for the life of the server.
pub(crate) fn lock_data_dir(settings: &Settings) -> anyhow::Result<File> {
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
    let mut db = super::open(settings)?;
    if db.sites()?.is_empty() {
        let added = super::site::add(
            &mut db,
            crate::DEMO_SITE,
            vec!["localhost".into(), "127.0.0.1".into()],
            Some("Demo".into()),
        );
        // Another instance on the same PostgreSQL, starting at the same moment, may have made it.
        if added.is_err() && db.site(crate::DEMO_SITE)?.is_some() {
            return Ok(());
        }
        added?;
        println!(
            "Created the demo site: open {}/demo (embed: {})",
            settings.public_url,
            super::site::snippet(settings, crate::DEMO_SITE)
        );
    }
    if db.count_users()? == 0 {
        let password = users::generate_password()?;
        let added = db.add_user(ADMIN_EMAIL, &password, true, crate::now());
        if added.is_err() && db.count_users()? > 0 {
            return Ok(());
        }
        added?;
        println!("Created the admin login {ADMIN_EMAIL} with password {password} (shown once)");
    }
    Ok(())
}

/// A server ready to serve: its data directory locked, its port bound, first-run set-up done and its
/// state opened.
pub struct Prepared {
    pub state: Arc<AppState>,
    pub writer: WriterGuard,
    pub listener: TcpListener,
    /// Held for the life of the server.
    pub lock: File,
}

pub fn prepare(settings: Settings) -> anyhow::Result<Prepared> {
    let lock = lock_data_dir(&settings)?;
    raise_open_files_limit();
    limit_malloc_arenas();
    let listener = TcpListener::bind(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let settings = settings.with_bound_address(listener.local_addr()?);
    first_run(&settings)?;
    // Opening the store blocks (migrations, mending visits); it happens before the runtime starts.
    let (state, writer) = AppState::open(settings).context("cannot start")?;
    Ok(Prepared {
        state,
        writer,
        listener,
        lock,
    })
}

pub fn run(settings: Settings) -> anyhow::Result<()> {
    let p = prepare(settings)?;
    let _lock = p.lock;
    actix_web::rt::System::new().block_on(serve(p.state, p.writer, p.listener))
}

/// glibc gives each thread that contends for the allocator an arena of its own (up to eight per core) and
/// keeps what is freed in it: the statistics reads, spread over the blocking pool's threads, left the server at
/// 255 MB after a dashboard's queries on 10M events. Two arenas keep it near what is in use (BENCHMARKS.md).
/// And glibc raises its threshold for mapping a block of its own after each large free (up to 32 MB), so the
/// visitor lists of a statistics read came from the heap, where what is freed stays until trimmed and
/// fragments it; a fixed threshold of 4 MiB maps every large list (a million numbers) and unmaps it when freed, while
/// the smaller buffers of every query (the 2 MiB bitmap of a distinct count) are reused from the heap.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets a parameter of the allocator; glibc documents it as callable at any time, and
    // arenas are created lazily, so the limit applies to every thread the server starts after this.
    let arenas = unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    // SAFETY: as above; the threshold applies to allocations made after the call.
    let threshold = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20) };
    // A fixed mapping threshold also fixes the trim threshold, at 128 KiB: the heap would be given back and
    // faulted in again on every query. Each statistics read trims once at its end instead.
    // SAFETY: as above.
    let trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20) };
    if arenas != 1 || threshold != 1 || trim != 1 {
        tracing::debug!("could not set the allocator's arenas or mapping threshold");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// Each connection holds a file descriptor; the soft limit is often 1024 while the hard one is far higher.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open files limit"),
    }
}

/// Serves until SIGTERM or Ctrl-C (then exits cleanly) or until the writer thread is gone (then exits with
/// an error, so a supervisor restarts the server rather than leave it answering 503 forever).
pub async fn serve(
    state: Arc<AppState>,
    writer: WriterGuard,
    listener: TcpListener,
) -> anyhow::Result<()> {
    let data = web::Data::from(state.clone());
    let connections = ConnectionLimiter::new(PER_NETWORK, state.settings.trusted_proxies.clone());
    let server = HttpServer::new(move || crate::app(data.clone()))
        .on_connect(connections.on_connect())
        // Headers must arrive within 5 s and an idle keep-alive connection closes after 5 s; bodies have
        // their own limit (`http::body::BODY_TIMEOUT`).
        .client_request_timeout(Duration::from_secs(5))
        .keep_alive(Duration::from_secs(5))
        .client_disconnect_timeout(Duration::from_secs(1))
        .listen(listener)?
        .shutdown_timeout(10)
        // Our own handlers, installed before "listening" is printed: a supervisor (or a test) that stops the
        // server right after that line gets a clean stop, not the default action of the signal.
        .disable_signals()
        .run();
    let handle = server.handle();
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let stopper = handle.clone();
    let signals = actix_web::rt::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        stopper.stop(true).await;
    });
    println!("listening on {}", state.settings.public_url);
    tracing::info!(url = %state.settings.public_url, "listening");

    let jobs = actix_web::rt::spawn(background(state.clone()));
    let retention_runs = actix_web::rt::spawn(retention(state.clone()));
    let watch_state = state.clone();
    let writer_gone = actix_web::rt::spawn(async move {
        watch_state.store.writer_stopped().await;
        tracing::error!(
            "the writer stopped: shutting down so that a supervisor can restart the server"
        );
        handle.stop(true).await;
    });
    server.await?;
    signals.abort();
    jobs.abort();
    retention_runs.abort();
    if !state.store.writer_alive() {
        bail!("stopped because the writer thread failed (see the log above)");
    }
    writer_gone.abort();
    writer.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Reloads sites when they change and writes open visits every few seconds.
async fn background(state: Arc<AppState>) {
    let mut tick = actix_web::rt::time::interval(Duration::from_secs(1));
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        crate::logs::summarise_refused_requests();
        if ticks.is_multiple_of(5)
            && let Err(e) = state.store.flush().await
        {
            tracing::warn!(error = %e, "writing open visits failed");
        }
        if let Err(e) = state.refresh_sites().await {
            tracing::warn!(error = %e, "reloading sites failed");
        }
    }
}

/// Applies retention at start and then every hour, in a task of its own: a run and the scrub after it take
/// seconds on a large database, and must not hold up the jobs above.
async fn retention(state: Arc<AppState>) {
    let mut tick = actix_web::rt::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let now = crate::now();
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
