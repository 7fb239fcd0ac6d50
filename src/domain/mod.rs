//! The domain: consent rules, sites, enrichment of events, visits. Plain Rust, no HTTP or SQL types.

pub mod consent;
pub mod consent_cache;
pub mod dashboard;
pub mod event;
pub mod geo;
pub mod i18n;
pub mod network;
pub mod ratelimit;
pub mod referrer;
pub mod site;
pub mod stats;
pub mod useragent;
pub mod visits;
