//! The statistics engine: the query model, periods in the site's time zone, the two ways of answering
//! (daily rollups, or the rows themselves), the metrics computed from what either sums, and the Stats
//! API's request and response formats (Plausible's v2 and v1, and CSV). Plain Rust: the storage
//! implements [`engine::Source`], the HTTP layer parses and shapes.
//!
//! Definitions (README "Statistics"): a visitor is a distinct pseudonymous visitor key in the period; a
//! visit is a visitor's events with no gap over 30 minutes; a bounce is a visit with one page view and no
//! custom event; visit duration is the engaged time the tracker reported, else last minus first event.
//! Every figure of a visit counts at the visit's start, in the site's time zone.

pub mod contribution;
pub mod csv;
pub mod dims;
pub mod engine;
pub mod facts;
pub mod parallel;
pub mod period;
pub mod plausible;
pub mod plausible_v1;
pub mod query;
pub mod request;
pub mod results;
pub mod rollups;
pub mod visitors;
