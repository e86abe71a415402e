//! The one error type of the HTTP API, answered as `application/problem+json`
//! (RFC 9457) with a stable machine-readable `code`.
//!
//! Internal errors are logged with their cause chain and answered with a
//! generic message: database or upstream error text never reaches a client.

use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or a field is invalid.
    #[error("{detail}")]
    BadRequest {
        /// Stable code, e.g. `invalid_json`.
        code: &'static str,
        /// What is wrong and how to fix it.
        detail: String,
    },
    /// The resource does not exist (or belongs to another tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Unexpected failure; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } => code,
            Self::NotFound(_) => "not_found",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// The body of a problem+json answer.
#[derive(Debug, Serialize)]
pub struct Problem<'a> {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary (the status text).
    pub title: &'a str,
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'a str,
    /// Human-readable explanation.
    pub detail: String,
}

/// Build a problem+json response.
pub fn problem_response(status: StatusCode, code: &str, detail: String) -> HttpResponse {
    let body = Problem {
        kind: format!("https://tokenvault.dev/problems/{code}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        code,
        detail,
    };
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(serde_json::to_string(&body).unwrap_or_default())
}

/// Render an error and every `source()` below it on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let _ = write!(out, ": {c}");
        cause = c.source();
    }
    out
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let detail = match self {
            Self::Internal(e) => {
                tracing::error!(error = %error_chain(e.as_ref()), "internal error");
                "The server could not complete the request; it has been logged. Try again later."
                    .into()
            }
            other => other.to_string(),
        };
        problem_response(self.status_code(), self.code(), detail)
    }
}
