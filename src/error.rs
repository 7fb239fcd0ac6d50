//! The one error type of request handling and storage. 4xx variants carry a message meant for the caller;
//! 5xx variants are logged in full and answered with a generic message.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("unsupported content type {0:?}: send application/json or text/plain")]
    UnsupportedMediaType(String),
    #[error("too many requests from your network, slow down")]
    RateLimited,
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    /// The database failed (the storage layer converts its engine's errors into this).
    #[error("database error: {0}")]
    Database(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database cannot be written or read as it must (disk full, read-only, I/O error, damaged file).
    /// Answered 503 with a generic message; the cause is logged once by whoever met it first.
    #[error("{0}")]
    Storage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The body of every error answer of the API.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What is wrong and, where it helps, what to do.
    pub error: String,
}

impl Error {
    pub fn bad(msg: impl Into<String>) -> Error {
        Error::BadRequest(msg.into())
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Error::Unavailable(_) | Error::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = match self {
            // Says what is wrong and what to do; the cause was logged once where it happened.
            Error::Unavailable(_) => self.to_string(),
            Error::Storage(_) => {
                "the server cannot write its database now, retry later".to_string()
            }
            _ if status.is_server_error() => {
                tracing::error!(error = %self, "request failed");
                "internal server error, see the server log".to_string()
            }
            _ => self.to_string(),
        };
        let mut res = HttpResponse::build(status);
        if matches!(self, Error::RateLimited | Error::Unavailable(_)) {
            res.insert_header(("Retry-After", "1"));
        }
        if matches!(self, Error::Storage(_)) {
            res.insert_header(("Retry-After", "10"));
        }
        if matches!(self, Error::TooManyRequests(_)) {
            res.insert_header(("Retry-After", "60"));
        }
        if matches!(self, Error::RequestTimeout) {
            res.insert_header(("Connection", "close"));
        }
        res.json(ErrorBody { error: message })
    }
}
