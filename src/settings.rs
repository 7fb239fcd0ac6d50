//! Operator settings: one serde struct, loaded by a pure function from built-in defaults, an optional TOML
//! file, `ASSENT_*` environment variables and command-line flags, in that rising order of precedence.
//! Loading reads nothing but what it is handed (the file's text, the environment as a map), so it can be
//! tested without touching the process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

pub use crate::domain::network::ForwardedHeader;
pub use crate::logs::LogFormat;
pub use crate::metrics::{MetricsAccess, MetricsToken};

/// The most months personal data may be kept or a consent choice may last (CNIL and EDPB guidance).
pub const MAX_MONTHS: u32 = 13;

/// Default events per second a single client network may send before it gets 429. A real visitor sends a
/// handful per page; a whole office behind one NAT stays far below this.
pub const DEFAULT_RATE_LIMIT: u32 = 50;

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub geoip: Option<PathBuf>,
    pub trusted_proxies: Vec<IpNet>,
    /// The one forwarding header the trusted proxies write.
    pub forwarded_header: ForwardedHeader,
    pub public_url: String,
    pub rate_limit: u32,
    pub retention_months: u32,
    /// At most `retention_months`: a consent record must outlive the choice it proves.
    pub consent_months: u32,
    pub log_format: LogFormat,
    /// Who may read `GET /metrics`.
    pub metrics: MetricsAccess,
    /// A bearer token that opens `GET /metrics` to any client (file or environment only: a flag would
    /// show it in the process list).
    pub metrics_token: Option<MetricsToken>,
    /// PostgreSQL to store in; `None` is the embedded SQLite file in the data directory.
    pub database_url: Option<DatabaseUrl>,
}

/// A `postgres://` URL. It may hold a password: its `Debug` form hides it.
#[derive(Clone, PartialEq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::storage::sql::redact_url(&self.0))
    }
}

fn parse_database_url(src: &str, v: &str) -> Result<DatabaseUrl, SettingsError> {
    let shown = crate::storage::sql::redact_url(v);
    if !crate::storage::postgres::is_postgres_url(v) {
        return Err(invalid(
            src,
            "database URL",
            &shown,
            "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (leave it unset for the embedded SQLite file)",
        ));
    }
    v.parse::<postgres::Config>()
        .map_err(|e| invalid(src, "database URL", &shown, e))?;
    Ok(DatabaseUrl(v.to_string()))
}

/// What the TOML file may hold. Unknown keys are refused by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub geoip: Option<PathBuf>,
    pub trusted_proxies: Option<Vec<String>>,
    pub forwarded_header: Option<String>,
    pub public_url: Option<String>,
    pub rate_limit: Option<u32>,
    pub retention_months: Option<u32>,
    pub consent_months: Option<u32>,
    pub log_format: Option<String>,
    pub metrics: Option<String>,
    pub metrics_token: Option<String>,
    pub database_url: Option<String>,
}

/// Values given as command-line flags; `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct FlagSettings {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub geoip: Option<PathBuf>,
    pub trusted_proxies: Vec<String>,
    pub forwarded_header: Option<String>,
    pub public_url: Option<String>,
    pub rate_limit: Option<u32>,
    pub log_format: Option<String>,
    pub metrics: Option<String>,
    pub database_url: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("config file: {0}")]
    File(String),
    #[error("{source_name}: invalid {what} {value:?}: {reason}")]
    Invalid {
        source_name: String,
        what: &'static str,
        value: String,
        reason: String,
    },
}

fn invalid(
    source_name: &str,
    what: &'static str,
    value: &str,
    reason: impl ToString,
) -> SettingsError {
    SettingsError::Invalid {
        source_name: source_name.to_string(),
        what,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_listen(src: &str, v: &str) -> Result<SocketAddr, SettingsError> {
    v.parse().map_err(|e| {
        invalid(
            src,
            "listen address",
            v,
            format!("{e} (expected e.g. 127.0.0.1:8080)"),
        )
    })
}

fn parse_cidrs<'a>(
    src: &str,
    items: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<IpNet>, SettingsError> {
    let mut out = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        // A bare address means that one host.
        let net = item
            .parse::<IpNet>()
            .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| {
                invalid(
                    src,
                    "trusted proxy",
                    item,
                    "expected a CIDR such as 10.0.0.0/8 or an address",
                )
            })?;
        out.push(net);
    }
    Ok(out)
}

fn parse_forwarded_header(src: &str, v: &str) -> Result<ForwardedHeader, SettingsError> {
    ForwardedHeader::parse(v).ok_or_else(|| {
        invalid(
            src,
            "forwarding header",
            v,
            "expected X-Forwarded-For or Forwarded",
        )
    })
}

fn parse_log_format(src: &str, v: &str) -> Result<LogFormat, SettingsError> {
    LogFormat::parse(v).ok_or_else(|| invalid(src, "log format", v, "expected text or json"))
}

fn parse_metrics(src: &str, v: &str) -> Result<MetricsAccess, SettingsError> {
    MetricsAccess::parse(v)
        .ok_or_else(|| invalid(src, "metrics access", v, "expected off, local or public"))
}

fn parse_token(src: &str, v: &str) -> Result<MetricsToken, SettingsError> {
    MetricsToken::parse(v).ok_or_else(|| {
        // The value is a secret: the message does not repeat it.
        invalid(
            src,
            "metrics token",
            "(hidden)",
            format!(
                "expected at least {} visible ASCII characters without spaces",
                crate::metrics::MIN_TOKEN_LEN
            ),
        )
    })
}

fn parse_u32(src: &str, what: &'static str, v: &str) -> Result<u32, SettingsError> {
    v.trim()
        .parse()
        .map_err(|_| invalid(src, what, v, "expected a whole number"))
}

fn check_months(src: &str, what: &'static str, v: u32) -> Result<u32, SettingsError> {
    if (1..=MAX_MONTHS).contains(&v) {
        Ok(v)
    } else {
        Err(invalid(
            src,
            what,
            &v.to_string(),
            format!("must be between 1 and {MAX_MONTHS} months (GDPR guidance caps it at 13)"),
        ))
    }
}

impl Settings {
    /// Built-in defaults.
    pub fn defaults() -> Settings {
        let listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
        Settings {
            listen,
            data_dir: PathBuf::from("./data"),
            geoip: None,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            public_url: String::new(),
            rate_limit: DEFAULT_RATE_LIMIT,
            retention_months: MAX_MONTHS,
            consent_months: MAX_MONTHS,
            log_format: LogFormat::Text,
            metrics: MetricsAccess::Local,
            metrics_token: None,
            database_url: None,
        }
    }

    /// Merges the layers. `file` is the TOML text of `--config`, if one was given; `env` the process
    /// environment (only `ASSENT_*` keys are looked at).
    pub fn load(
        file: Option<&str>,
        env: &HashMap<String, String>,
        flags: &FlagSettings,
    ) -> Result<Settings, SettingsError> {
        let mut s = Settings::defaults();
        let mut public_url: Option<String> = None;
        // Unless given, the validity of a choice follows the retention period (it may not exceed it).
        let mut consent_months: Option<(String, u32)> = None;

        if let Some(text) = file {
            let f: FileSettings =
                toml::from_str(text).map_err(|e| SettingsError::File(e.to_string()))?;
            let src = "config file";
            if let Some(v) = f.listen {
                s.listen = parse_listen(src, &v)?;
            }
            if let Some(v) = f.data_dir {
                s.data_dir = v;
            }
            if f.geoip.is_some() {
                s.geoip = f.geoip;
            }
            if let Some(v) = f.trusted_proxies {
                s.trusted_proxies = parse_cidrs(src, v.iter().map(String::as_str))?;
            }
            if let Some(v) = f.forwarded_header {
                s.forwarded_header = parse_forwarded_header(src, &v)?;
            }
            if f.public_url.is_some() {
                public_url = f.public_url;
            }
            if let Some(v) = f.rate_limit {
                s.rate_limit = v;
            }
            if let Some(v) = f.retention_months {
                s.retention_months = check_months(src, "retention_months", v)?;
            }
            if let Some(v) = f.log_format {
                s.log_format = parse_log_format(src, &v)?;
            }
            if let Some(v) = f.metrics {
                s.metrics = parse_metrics(src, &v)?;
            }
            if let Some(v) = f.metrics_token {
                s.metrics_token = Some(parse_token(src, &v)?);
            }
            if let Some(v) = f.database_url {
                s.database_url = Some(parse_database_url(src, &v)?);
            }
            if let Some(v) = f.consent_months {
                consent_months = Some((src.into(), check_months(src, "consent_months", v)?));
            }
        }

        let get = |k: &str| env.get(k).filter(|v| !v.is_empty());
        if let Some(v) = get("ASSENT_LISTEN") {
            s.listen = parse_listen("ASSENT_LISTEN", v)?;
        }
        if let Some(v) = get("ASSENT_DATA_DIR") {
            s.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("ASSENT_GEOIP") {
            s.geoip = Some(PathBuf::from(v));
        }
        if let Some(v) = get("ASSENT_TRUSTED_PROXIES") {
            s.trusted_proxies = parse_cidrs("ASSENT_TRUSTED_PROXIES", v.split(','))?;
        }
        if let Some(v) = get("ASSENT_FORWARDED_HEADER") {
            s.forwarded_header = parse_forwarded_header("ASSENT_FORWARDED_HEADER", v)?;
        }
        if let Some(v) = get("ASSENT_PUBLIC_URL") {
            public_url = Some(v.clone());
        }
        if let Some(v) = get("ASSENT_RATE_LIMIT") {
            s.rate_limit = parse_u32("ASSENT_RATE_LIMIT", "rate limit", v)?;
        }
        if let Some(v) = get("ASSENT_RETENTION_MONTHS") {
            let n = parse_u32("ASSENT_RETENTION_MONTHS", "retention_months", v)?;
            s.retention_months = check_months("ASSENT_RETENTION_MONTHS", "retention_months", n)?;
        }
        if let Some(v) = get("ASSENT_LOG_FORMAT") {
            s.log_format = parse_log_format("ASSENT_LOG_FORMAT", v)?;
        }
        if let Some(v) = get("ASSENT_METRICS") {
            s.metrics = parse_metrics("ASSENT_METRICS", v)?;
        }
        if let Some(v) = get("ASSENT_METRICS_TOKEN") {
            s.metrics_token = Some(parse_token("ASSENT_METRICS_TOKEN", v)?);
        }
        if let Some(v) = get("ASSENT_DATABASE_URL") {
            s.database_url = Some(parse_database_url("ASSENT_DATABASE_URL", v)?);
        }
        if let Some(v) = get("ASSENT_CONSENT_MONTHS") {
            let n = parse_u32("ASSENT_CONSENT_MONTHS", "consent_months", v)?;
            let n = check_months("ASSENT_CONSENT_MONTHS", "consent_months", n)?;
            consent_months = Some(("ASSENT_CONSENT_MONTHS".into(), n));
        }

        if let Some(v) = &flags.database_url {
            s.database_url = Some(parse_database_url("--database-url", v)?);
        }
        if let Some(v) = &flags.listen {
            s.listen = parse_listen("--listen", v)?;
        }
        if let Some(v) = &flags.data_dir {
            s.data_dir = v.clone();
        }
        if let Some(v) = &flags.geoip {
            s.geoip = Some(v.clone());
        }
        if !flags.trusted_proxies.is_empty() {
            s.trusted_proxies = parse_cidrs(
                "--trusted-proxy",
                flags.trusted_proxies.iter().map(String::as_str),
            )?;
        }
        if let Some(v) = &flags.forwarded_header {
            s.forwarded_header = parse_forwarded_header("--forwarded-header", v)?;
        }
        if let Some(v) = &flags.public_url {
            public_url = Some(v.clone());
        }
        if let Some(v) = flags.rate_limit {
            s.rate_limit = v;
        }
        if let Some(v) = &flags.log_format {
            s.log_format = parse_log_format("--log-format", v)?;
        }
        if let Some(v) = &flags.metrics {
            s.metrics = parse_metrics("--metrics", v)?;
        }

        s.consent_months = match consent_months {
            None => s.retention_months,
            Some((src, n)) if n > s.retention_months => {
                return Err(invalid(
                    &src,
                    "consent_months",
                    &n.to_string(),
                    format!(
                        "must not exceed retention_months ({}): the consent record that proves a choice is \
                         deleted with the other personal data, so a choice cannot last longer",
                        s.retention_months
                    ),
                ));
            }
            Some((_, n)) => n,
        };
        s.public_url = match public_url {
            Some(u) => {
                let parsed =
                    url::Url::parse(&u).map_err(|e| invalid("public URL", "URL", &u, e))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid(
                        "public URL",
                        "URL",
                        &u,
                        "must start with http:// or https://",
                    ));
                }
                u.trim_end_matches('/').to_string()
            }
            None => format!("http://{}", s.listen),
        };
        Ok(s)
    }

    /// The public URL, with the actually bound address when the public URL was derived from a listen
    /// address with port 0.
    pub fn with_bound_address(mut self, bound: SocketAddr) -> Settings {
        if self.public_url == format!("http://{}", self.listen) {
            self.public_url = format!("http://{bound}");
        }
        self.listen = bound;
        self
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("assent.db")
    }

    /// Where the data is stored: PostgreSQL if a database URL is set, else the SQLite file.
    pub fn location(&self) -> crate::storage::engine::Location {
        use crate::storage::engine::Location;
        match &self.database_url {
            Some(url) => Location::Postgres(url.as_str().to_string()),
            None => Location::Sqlite(self.db_path()),
        }
    }

    /// The store as messages name it (no password).
    pub fn store_name(&self) -> String {
        match &self.database_url {
            Some(url) => format!("{url:?}"),
            None => self.db_path().display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
