//! The server's log: plain text for a terminal or a journal, or JSON lines for log collectors, filtered by
//! `RUST_LOG` (default `info`). Broken requests that the HTTP layer rejects before Assent sees them
//! (malformed request lines or headers, connections cut mid-request) are logged by actix at ERROR, one line
//! each: anyone could flood an operator's alerts with them. They are counted instead and summarised at
//! WARN at most once a minute, without their content ([`summarise_refused_requests`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, filter_fn};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// How the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Events of the HTTP layer about requests it refused or connections that broke.
fn is_connection_noise(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::ERROR && meta.target().starts_with("actix_http::h1")
}

/// The PostgreSQL client's own debug events, which print every statement's parameters: consent ids,
/// visitor keys, site secrets. Never written, whatever `RUST_LOG` asks for (privacy invariant 1); its
/// warnings and errors still are.
fn is_database_parameters(meta: &Metadata<'_>) -> bool {
    *meta.level() > Level::INFO
        && (meta.target().starts_with("tokio_postgres") || meta.target().starts_with("postgres"))
}

const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Refused requests not yet summarised.
static REFUSED: AtomicU64 = AtomicU64::new(0);
static LAST_SUMMARY: Mutex<Option<Instant>> = Mutex::new(None);

/// Counts [`is_connection_noise`] events. (It only counts: emitting an event from inside another's
/// dispatch would upset the per-layer filter that hides the original.)
struct CountNoise;

impl<S: Subscriber> Layer<S> for CountNoise {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if is_connection_noise(event.metadata()) {
            REFUSED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes the summary of refused requests, if there are any and the last one is a minute old. The
/// server calls it every second.
pub fn summarise_refused_requests() {
    if REFUSED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut last = LAST_SUMMARY.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_some_and(|t| t.elapsed() < SUMMARY_EVERY) {
        return;
    }
    *last = Some(Instant::now());
    let refused = REFUSED.swap(0, Ordering::Relaxed);
    tracing::warn!(
        target: "assent::http",
        refused,
        "malformed requests or broken connections refused by the HTTP layer (one summary a minute at most)"
    );
}

/// Installs the global log subscriber (once, at start-up).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let quiet = filter_fn(|meta| !is_connection_noise(meta) && !is_database_parameters(meta));
    let registry = tracing_subscriber::registry().with(filter).with(CountNoise);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi)
                    .with_filter(quiet),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_filter(quiet),
            )
            .init(),
    }
}
