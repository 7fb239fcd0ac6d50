//! Command-line interface: global flags (the settings layer above the environment) and subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::FlagSettings;

#[derive(Debug, Parser)]
#[command(
    name = "assent",
    version,
    about = "Self-hosted cookie consent and opt-in first-party analytics"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Default)]
pub struct GlobalArgs {
    /// TOML settings file
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Data directory (SQLite database at DIR/assent.db) [default: ./data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// GeoIP database (.mmdb) for countries
    #[arg(long, global = true, value_name = "FILE")]
    pub geoip: Option<PathBuf>,
    /// Proxy network whose forwarding header is believed (repeatable)
    #[arg(long = "trusted-proxy", global = true, value_name = "CIDR")]
    pub trusted_proxies: Vec<String>,
    /// The forwarding header the trusted proxies write: X-Forwarded-For or Forwarded [default: X-Forwarded-For]
    #[arg(long, global = true, value_name = "NAME")]
    pub forwarded_header: Option<String>,
    /// Public URL of this server, used in snippets and links [default: http://{listen}]
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// Events per second allowed per client network (0 = off)
    #[arg(long, global = true, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// Log format: text or json [default: text]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Who may read GET /metrics: off, local (loopback clients, or the ASSENT_METRICS_TOKEN bearer) or
    /// public [default: local]
    #[arg(long, global = true, value_name = "ACCESS")]
    pub metrics: Option<String>,
    /// PostgreSQL to store in (postgres://USER[:PASSWORD]@HOST[:PORT]/DB) [default: the SQLite file in the
    /// data directory]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
}

impl GlobalArgs {
    pub fn flags(&self) -> FlagSettings {
        FlagSettings {
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            geoip: self.geoip.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            forwarded_header: self.forwarded_header.clone(),
            public_url: self.public_url.clone(),
            rate_limit: self.rate_limit,
            log_format: self.log_format.clone(),
            metrics: self.metrics.clone(),
            database_url: self.database_url.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database, then serve (the default)
    Serve,
    /// Manage sites
    #[command(subcommand)]
    Site(SiteCommand),
    /// Manage dashboard users
    #[command(subcommand)]
    User(UserCommand),
    /// Manage Stats API keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Delete personal data older than the retention period
    Purge {
        /// Apply retention as if now were this time (RFC 3339)
        #[arg(long, value_name = "TIME")]
        as_of: Option<String>,
        /// Only print what would be deleted
        #[arg(long)]
        dry_run: bool,
    },
    /// Fill a site with realistic synthetic traffic
    Seed {
        site: String,
        /// Number of events to create
        #[arg(long)]
        events: u64,
        /// Spread them over this many days up to now
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Write a consistent copy of the database (safe while the server runs)
    Backup { file: PathBuf },
    /// Copy this data directory's SQLite database into an empty PostgreSQL database (the server stopped)
    MigrateTo {
        /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE
        url: String,
    },
    /// The consent log as proof
    #[command(subcommand)]
    Consents(ConsentsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConsentsCommand {
    /// Print a site's consent records (oldest first), each with its policy revision and the hash of the
    /// texts shown
    Export {
        site: String,
        /// First day (YYYY-MM-DD, UTC) or instant (RFC 3339) to include
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// Last day (YYYY-MM-DD, UTC, included) or instant (RFC 3339, excluded)
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// csv or jsonl
        #[arg(long, default_value = "csv")]
        format: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SiteCommand {
    /// Add a site and print its embed snippet
    Add {
        id: String,
        /// A domain the banner may run on (repeatable; subdomains included)
        #[arg(long = "domain", required = true)]
        domains: Vec<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// List sites
    List,
    /// Remove a site and everything collected for it
    Remove { id: String },
    /// Print a site's settings as TOML
    Show { id: String },
    /// Print the site's record of processing activities (GDPR article 30)
    Register {
        id: String,
        /// md or json
        #[arg(long, default_value = "md")]
        format: String,
    },
    /// Apply an edited copy of `site show`
    Update {
        id: String,
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// Ask every visitor again even if nothing they are asked changed
        #[arg(long)]
        bump_revision: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a dashboard user
    Add {
        email: String,
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input instead of generating one
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a Stats API key for a user (printed once)
    Create {
        email: String,
        #[arg(long, default_value = "default")]
        name: String,
    },
}
