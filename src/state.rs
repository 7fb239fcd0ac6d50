//! The state a running server shares between requests: settings, the store, the in-memory site registry
//! (reloaded when the sites table changes, e.g. by `assent site update` from another process), the consent
//! cache, the GeoIP reader and the rate limiter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use crate::domain::consent_cache::ConsentCache;
use crate::domain::dashboard::auth::{LOGIN_RATE_PER_ACCOUNT, LOGIN_RATE_PER_NET};
use crate::domain::geo::Geo;
use crate::domain::ratelimit::RateLimiter;
use crate::domain::site::SiteConfig;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::storage::{Store, WriterGuard, sites};

/// New consent ids one client network may be issued per second, against the events it may send: a visitor
/// needs one id, and every id costs memory in the consent cache until it is evicted.
pub fn new_id_rate(event_rate: u32) -> u32 {
    if event_rate == 0 {
        0
    } else {
        (event_rate / 25).max(1)
    }
}

/// A site as the server serves it, with what is derived from its settings computed once.
pub struct SiteEntry {
    pub id: String,
    pub config: SiteConfig,
    pub revision: u32,
    pub secret: Vec<u8>,
    pub policy_hash: String,
    /// The served script (config inlined) and its ETag.
    pub script: String,
    pub etag: String,
}

#[derive(Default)]
pub struct Registry {
    sites: RwLock<HashMap<String, Arc<SiteEntry>>>,
    generation: AtomicI64,
}

impl Registry {
    pub fn get(&self, id: &str) -> Option<Arc<SiteEntry>> {
        self.sites
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    /// A site by id, or the 404 a request for an unknown one gets.
    pub fn site(&self, id: &str) -> crate::error::Result<Arc<SiteEntry>> {
        self.get(id)
            .ok_or_else(|| crate::error::Error::NotFound(format!("unknown site {id:?}")))
    }

    /// Whether any site's pages may use the API from `origin` (for CORS preflights, which name no site).
    pub fn any_allows_origin(&self, origin: &str) -> bool {
        self.sites
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .any(|s| s.config.allows_origin(origin))
    }

    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .sites
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    fn replace(&self, entries: Vec<SiteEntry>, generation: i64) {
        let map = entries
            .into_iter()
            .map(|e| (e.id.clone(), Arc::new(e)))
            .collect();
        *self.sites.write().unwrap_or_else(|p| p.into_inner()) = map;
        self.generation.store(generation, Ordering::SeqCst);
    }
}

pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub sites: Registry,
    pub consents: Arc<ConsentCache>,
    pub geo: Option<Geo>,
    /// Events (and reads by consent id) per client network.
    pub limiter: RateLimiter,
    /// New consent ids per client network.
    pub new_ids: RateLimiter,
    /// Stats API requests per key: 600 an hour.
    pub stats_keys: RateLimiter<i64>,
    /// Dashboard login attempts per client network, and per account (a digest of the e-mail address).
    pub login_nets: RateLimiter,
    pub login_accounts: RateLimiter<u64>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Opens the store and loads sites, consent grants and the GeoIP database. Blocking (start-up only).
    pub fn open(settings: Settings) -> Result<(Arc<AppState>, WriterGuard)> {
        let consents = Arc::new(ConsentCache::default());
        let metrics = Arc::new(Metrics::default());
        let (store, guard) = Store::start(&settings.location(), consents.clone(), metrics.clone())?;
        let geo = settings
            .geoip
            .as_ref()
            .and_then(|path| match Geo::open(path) {
                Ok(g) => Some(g),
                Err(reason) => {
                    tracing::warn!("GeoIP disabled, countries will be unknown: {reason}");
                    None
                }
            });
        let state = Arc::new(AppState {
            limiter: RateLimiter::new(settings.rate_limit),
            new_ids: RateLimiter::new(new_id_rate(settings.rate_limit)),
            stats_keys: RateLimiter::with(600.0 / 3600.0, 600.0),
            login_nets: RateLimiter::with(LOGIN_RATE_PER_NET.0, LOGIN_RATE_PER_NET.1),
            login_accounts: RateLimiter::with(LOGIN_RATE_PER_ACCOUNT.0, LOGIN_RATE_PER_ACCOUNT.1),
            settings,
            store,
            sites: Registry::default(),
            consents,
            geo,
            metrics,
        });
        let (generation, rows) = state.store.sites_blocking()?;
        state.sites.replace(
            rows.into_iter().map(|r| state.entry(r)).collect(),
            generation,
        );
        Ok((state, guard))
    }

    fn entry(&self, row: sites::SiteRow) -> SiteEntry {
        let (script, etag) = crate::http::script::render(&self.settings.public_url, &row);
        SiteEntry {
            policy_hash: row.config.policy_hash(),
            id: row.id,
            config: row.config,
            revision: row.revision,
            secret: row.secret,
            script,
            etag,
        }
    }

    /// Reloads the registry if the sites table changed since the last load.
    pub async fn refresh_sites(&self) -> Result<bool> {
        let known = self.sites.generation.load(Ordering::SeqCst);
        let changed = self.store.sites_if_changed(known).await?;
        match changed {
            None => Ok(false),
            Some((generation, rows)) => {
                self.sites.replace(
                    rows.into_iter().map(|r| self.entry(r)).collect(),
                    generation,
                );
                tracing::info!(sites = self.sites.ids().len(), "sites reloaded");
                Ok(true)
            }
        }
    }
}
