//! What a running server counts for its operator, served at `GET /metrics` in the OpenMetrics text format
//! (Prometheus's text exposition format, version 1.0) through the `prometheus-client` crate.
//!
//! Every label value comes from a closed set: route patterns (never paths, which carry consent ids),
//! method names, status codes, refusal reasons, consent actions and kinds of record. Nothing here can hold
//! a client address or a consent id, and a client cannot make the label sets grow.
//!
//! Who may read the page is a setting ([`MetricsAccess`], and an optional bearer token): by default only
//! clients on the loopback interface, as a Prometheus beside the server scrapes it.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::storage::retention::PurgeReport;
use crate::storage::writer::ErasureReport;

/// The content type of [`Metrics::render`]'s text, for clients that ask for it (Prometheus does).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`to_classic`]'s text, for everyone else.
pub const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsAccess {
    /// Not served (404).
    Off,
    /// Clients on the loopback interface (after the trusted-proxy rules), or anyone with the token.
    #[default]
    Local,
    /// Everyone (for a private network, or a proxy that guards the path itself).
    Public,
}

impl MetricsAccess {
    pub fn parse(s: &str) -> Option<MetricsAccess> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Some(MetricsAccess::Off),
            "local" => Some(MetricsAccess::Local),
            "public" => Some(MetricsAccess::Public),
            _ => None,
        }
    }
}

/// A bearer token for `GET /metrics`. Its `Debug` form hides it, so that printed settings never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken(String);

/// Shortest token accepted: a guessable one would open the page to anyone.
pub const MIN_TOKEN_LEN: usize = 16;

impl MetricsToken {
    pub fn parse(s: &str) -> Option<MetricsToken> {
        let s = s.trim();
        (s.len() >= MIN_TOKEN_LEN && s.bytes().all(|b| b.is_ascii_graphic()))
            .then(|| MetricsToken(s.to_string()))
    }

    /// Compares in time independent of where the first difference is.
    pub fn matches(&self, sent: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), sent.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    /// The route pattern, e.g. `/api/consent/{id}`, or `(no route)`.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// What the writer thread records: how many jobs each transaction carried and how long it took. (A
/// histogram's clones share its counts: the registry holds clones.)
#[derive(Debug)]
pub struct WriterMetrics {
    batch_size: Histogram,
    commit_seconds: Histogram,
}

impl Default for WriterMetrics {
    fn default() -> WriterMetrics {
        WriterMetrics {
            // 1, 2, 4 ... 1024 jobs (the writer's largest batch).
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            // 0.5 ms ... 4 s.
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
        }
    }
}

impl WriterMetrics {
    /// A batch of `jobs` was applied and committed in `took`.
    pub fn committed(&self, jobs: usize, took: Duration) {
        self.batch_size.observe(jobs as f64);
        self.commit_seconds.observe(took.as_secs_f64());
    }
}

/// Why an event was not stored, as `assent_events_refused_total{reason}` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 403: no current analytics grant, or a page that is not the site's.
    Forbidden,
    UnknownSite,
    /// 400.
    Invalid,
    TooLarge,
    ContentType,
    RateLimited,
    Timeout,
    /// 503: the writer's queue is full or it cannot store.
    Unavailable,
    /// A bot: answered 202 with `stored: false`.
    Bot,
    /// Engaged time without an open visit: answered 202 with `stored: false`.
    NoVisit,
    /// 5xx.
    Error,
}

impl Refusal {
    const ALL: [Refusal; 11] = [
        Refusal::Forbidden,
        Refusal::UnknownSite,
        Refusal::Invalid,
        Refusal::TooLarge,
        Refusal::ContentType,
        Refusal::RateLimited,
        Refusal::Timeout,
        Refusal::Unavailable,
        Refusal::Bot,
        Refusal::NoVisit,
        Refusal::Error,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Refusal::Forbidden => "forbidden",
            Refusal::UnknownSite => "unknown_site",
            Refusal::Invalid => "invalid",
            Refusal::TooLarge => "too_large",
            Refusal::ContentType => "content_type",
            Refusal::RateLimited => "rate_limited",
            Refusal::Timeout => "timeout",
            Refusal::Unavailable => "unavailable",
            Refusal::Bot => "bot",
            Refusal::NoVisit => "no_visit",
            Refusal::Error => "error",
        }
    }

    /// The reason an event request failed with `e`.
    pub fn of(e: &crate::Error) -> Refusal {
        use crate::Error as E;
        match e {
            E::Forbidden(_) => Refusal::Forbidden,
            E::NotFound(_) => Refusal::UnknownSite,
            E::BadRequest(_) | E::Conflict(_) => Refusal::Invalid,
            E::PayloadTooLarge(_) => Refusal::TooLarge,
            E::UnsupportedMediaType(_) => Refusal::ContentType,
            E::RateLimited | E::TooManyRequests(_) => Refusal::RateLimited,
            E::RequestTimeout => Refusal::Timeout,
            E::Unavailable(_) | E::Storage(_) => Refusal::Unavailable,
            E::Unauthorized(_) | E::Database(_) | E::Internal(_) => Refusal::Error,
        }
    }
}

/// A method as a label: the standard ones by name, anything else as `other` (a client may send any token
/// as a method, and each new label value would be kept for the life of the server).
pub fn method_label(m: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method as M;
    match *m {
        M::GET => "GET",
        M::HEAD => "HEAD",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::OPTIONS => "OPTIONS",
        M::PATCH => "PATCH",
        _ => "other",
    }
}

/// The server's metrics. One per running server (the tests run several in one process).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    events_stored: Counter,
    events_refused: Family<ReasonLabel, Counter>,
    consents: Family<ActionLabel, Counter>,
    erasures: Counter,
    erased: Family<KindLabel, Counter>,
    retention_runs: Counter,
    retained_out: Family<KindLabel, Counter>,
    queue_depth: Gauge,
    database_bytes: Gauge,
    pub writer: Arc<WriterMetrics>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new(Arc::new(WriterMetrics::default()))
    }
}

impl Metrics {
    fn new(writer: Arc<WriterMetrics>) -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("assent"),
            requests: Family::default(),
            events_stored: Counter::default(),
            events_refused: Family::default(),
            consents: Family::default(),
            erasures: Counter::default(),
            erased: Family::default(),
            retention_runs: Counter::default(),
            retained_out: Family::default(),
            queue_depth: Gauge::default(),
            database_bytes: Gauge::default(),
            writer,
        };
        let r = &mut m.registry;
        r.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            m.requests.clone(),
        );
        r.register(
            "events_stored",
            "Events stored (answered 202 after the commit)",
            m.events_stored.clone(),
        );
        r.register(
            "events_refused",
            "Events not stored, by reason",
            m.events_refused.clone(),
        );
        r.register(
            "consent_decisions",
            "Consent records appended, by action",
            m.consents.clone(),
        );
        r.register(
            "erasures",
            "Erasures of a consent id that removed data",
            m.erasures.clone(),
        );
        r.register(
            "erased_records",
            "Records removed by erasures, by kind",
            m.erased.clone(),
        );
        r.register(
            "retention_runs",
            "Retention runs of this server (hourly and at start)",
            m.retention_runs.clone(),
        );
        r.register(
            "retention_deleted_records",
            "Records deleted by this server's retention runs, by kind",
            m.retained_out.clone(),
        );
        r.register(
            "writer_queue_depth",
            "Writes waiting for the writer thread",
            m.queue_depth.clone(),
        );
        r.register(
            "writer_batch_size",
            "Jobs committed per writer transaction",
            m.writer.batch_size.clone(),
        );
        r.register_with_unit(
            "writer_commit",
            "Time to apply and commit one writer transaction",
            Unit::Seconds,
            m.writer.commit_seconds.clone(),
        );
        r.register_with_unit(
            "database_size",
            "Size of the database file and its write-ahead log",
            Unit::Bytes,
            m.database_bytes.clone(),
        );
        // Every series that can exist is there from the start at zero, so that rates work at once.
        for why in Refusal::ALL {
            let _ = m.events_refused.get_or_create(&ReasonLabel {
                reason: why.as_str(),
            });
        }
        for action in crate::domain::consent::Action::ALL {
            let _ = m.consents.get_or_create(&ActionLabel {
                action: action.as_str(),
            });
        }
        for kind in ["consent_records", "visits", "events"] {
            let _ = m.erased.get_or_create(&KindLabel { kind });
            let _ = m.retained_out.get_or_create(&KindLabel { kind });
        }
        m
    }

    /// A request was answered.
    pub fn request(&self, method: &'static str, route: String, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    pub fn event_stored(&self) {
        self.events_stored.inc();
    }

    pub fn event_refused(&self, why: Refusal) {
        self.events_refused
            .get_or_create(&ReasonLabel {
                reason: why.as_str(),
            })
            .inc();
    }

    pub fn consent(&self, action: crate::domain::consent::Action) {
        self.consents
            .get_or_create(&ActionLabel {
                action: action.as_str(),
            })
            .inc();
    }

    pub fn erased(&self, r: &ErasureReport) {
        if r.is_empty() {
            return;
        }
        self.erasures.inc();
        for (kind, n) in [
            ("consent_records", r.consent_records),
            ("visits", r.visits),
            ("events", r.events),
        ] {
            self.erased
                .get_or_create(&KindLabel { kind })
                .inc_by(n as u64);
        }
    }

    pub fn retention(&self, r: &PurgeReport) {
        self.retention_runs.inc();
        for (kind, n) in [
            ("consent_records", r.consent_records),
            ("visits", r.visits),
            ("events", r.events),
        ] {
            self.retained_out
                .get_or_create(&KindLabel { kind })
                .inc_by(n as u64);
        }
    }

    /// The text of `GET /metrics`, with the gauges read now.
    pub fn render(&self, queue_depth: usize, database_bytes: u64) -> String {
        self.queue_depth.set(queue_depth as i64);
        self.database_bytes
            .set(i64::try_from(database_bytes).unwrap_or(i64::MAX));
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The OpenMetrics text of [`Metrics::render`] in Prometheus's older text format (0.0.4), for clients
/// that do not ask for OpenMetrics: counters are declared under their samples' `_total` name, and the
/// `# UNIT` and `# EOF` lines, which that format does not have, are left out.
pub fn to_classic(openmetrics: &str) -> String {
    let mut counters: Vec<&str> = Vec::new();
    for line in openmetrics.lines() {
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|l| l.strip_suffix(" counter"))
        {
            counters.push(name);
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let declared = ["# HELP ", "# TYPE "].into_iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        match declared {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_compared_whole_and_never_printed() {
        assert!(MetricsToken::parse("short").is_none());
        assert!(MetricsToken::parse("with a space in it!!").is_none());
        let t = MetricsToken::parse("0123456789abcdef-ok").unwrap();
        assert!(t.matches("0123456789abcdef-ok"));
        assert!(!t.matches("0123456789abcdef-o"));
        assert!(!t.matches("0123456789abcdef-oK"));
        assert!(!format!("{t:?}").contains("0123"));
    }

    #[test]
    fn access_modes_parse() {
        assert_eq!(MetricsAccess::parse("OFF"), Some(MetricsAccess::Off));
        assert_eq!(MetricsAccess::parse("local"), Some(MetricsAccess::Local));
        assert_eq!(MetricsAccess::parse("public"), Some(MetricsAccess::Public));
        assert_eq!(MetricsAccess::parse("on"), None);
    }

    #[test]
    fn renders_every_family_with_eof() {
        let m = Metrics::default();
        m.request("GET", "/healthz".into(), 200);
        m.event_refused(Refusal::Bot);
        m.writer.committed(3, Duration::from_millis(2));
        let text = m.render(5, 4096);
        for needle in [
            "assent_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1",
            "assent_events_refused_total{reason=\"bot\"} 1",
            "assent_writer_queue_depth 5",
            "assent_database_size_bytes 4096",
            "assent_writer_batch_size_count 1",
            "assent_writer_commit_seconds_count 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("assent_consent_decisions_total{action=\"withdraw\"} 0"));
        let classic = to_classic(&text);
        assert!(classic.contains("# TYPE assent_http_requests_total counter\n"));
        assert!(classic.contains("# HELP assent_events_stored_total Events stored"));
        assert!(classic.contains("# TYPE assent_writer_batch_size histogram\n"));
        assert!(!classic.contains("# EOF") && !classic.contains("# UNIT"));
    }
}
