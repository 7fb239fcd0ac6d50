//! Assent: a self-hosted cookie-consent and opt-in first-party analytics server. The library holds the
//! whole application so that tests build it in-process with the same route configuration `main` serves.
//!
//! Layout: `http` (handlers, no SQL) calls `domain` (consent rules, enrichment, visits; no actix types)
//! and `storage` (SQL, migrations, the writer thread). `commands` implements the CLI.

pub mod allocator;
pub mod cli;
pub mod commands;
pub mod domain;
pub mod error;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod settings;
pub mod state;
pub mod storage;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, web};

pub use error::{Error, Result};
pub use settings::Settings;
pub use state::AppState;

/// The site created on a first run, embedded by the `/demo` page.
pub const DEMO_SITE: &str = "demo";

/// Now, in UTC Unix seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The application: state, routes and middleware.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .configure(http::configure)
        .wrap(from_fn(http::middleware))
        .wrap(Compress::default())
}
