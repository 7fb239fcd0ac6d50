//! The dashboard's logic without HTTP: what its URLs mean (period, comparison, metric, filters), the Stats
//! API v2 requests its panels make (so that every figure on a page is the engine's, equal to the API's),
//! the figures' formats, the charts' geometry, and the login arithmetic.

pub mod auth;
pub mod chart;
pub mod consent;
pub mod panels;
pub mod site_form;
pub mod view;
