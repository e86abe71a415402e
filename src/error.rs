//! The one error type of the HTTP API, answered as `application/problem+json`
//! (RFC 9457) with a stable machine-readable `code`.
//!
//! Internal errors are logged with their cause chain and answered with a
//! generic message: database or upstream error text never reaches a client.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::FieldError;
use crate::refresh::token::Unavailable;
use crate::upstream::ErrorClass;
use crate::upstream::errcodes::{self, Explanation};

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed.
    #[error("{detail}")]
    BadRequest {
        /// Stable code, e.g. `invalid_query`.
        code: &'static str,
        /// What is wrong and how to fix it.
        detail: String,
    },
    /// One or more fields are invalid (422, with every field's error).
    #[error("some fields are invalid: {}", .0.iter().map(|e| e.field).collect::<Vec<_>>().join(", "))]
    Validation(Vec<FieldError>),
    /// No credentials, or credentials that are not valid.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The password was right and the account signs in with two factors:
    /// send the code (401 `totp_required`).
    #[error(
        "this account signs in with two factors: send the code of its authenticator app (or a recovery code) in `totp`"
    )]
    TotpRequired,
    /// The session may only enrol in two-factor sign-in (403
    /// `totp_enrollment_required`).
    #[error(
        "two-factor sign-in is required for this account: enrol first (POST /api/v1/account/totp, then /api/v1/account/totp/confirm)"
    )]
    TotpEnrollmentRequired,
    /// A state-changing request made with a session lacked a valid CSRF token.
    #[error(
        "missing or wrong CSRF token: send the token from GET /api/v1/session in the X-CSRF-Token header"
    )]
    Csrf,
    /// The resource does not exist (or belongs to another tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request conflicts with existing data.
    #[error("{detail}")]
    Conflict {
        /// Stable code, e.g. `email_taken`.
        code: &'static str,
        /// What conflicts.
        detail: String,
    },
    /// Too many attempts; try again after this many seconds.
    #[error("too many attempts: try again in {0} seconds")]
    TooManyRequests(u64),
    /// A limit other than sign-in attempts was reached; try again after
    /// `retry_after` seconds (429 with its own stable code).
    #[error("{detail}")]
    RateLimited {
        /// Stable code, e.g. `too_many_failed_key_attempts`.
        code: &'static str,
        /// What was limited and what to do.
        detail: String,
        /// Seconds to wait (`Retry-After`).
        retry_after: u64,
    },
    /// The server is at its limit for this kind of work (503 `busy`); try
    /// again after this many seconds.
    #[error("the server is busy: try again in {0} seconds")]
    Busy(u64),
    /// No valid token can be had now (503 `token_unavailable`, with the
    /// failure behind it and `Retry-After`).
    #[error("{}", .0.reason)]
    TokenUnavailable(Unavailable),
    /// Unexpected failure; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Conflict { code, .. }
            | Self::RateLimited { code, .. } => code,
            Self::Busy(_) => "busy",
            Self::TokenUnavailable(_) => "token_unavailable",
            Self::Validation(_) => "validation_failed",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::TotpRequired => "totp_required",
            Self::TotpEnrollmentRequired => "totp_enrollment_required",
            Self::Csrf => "csrf_failed",
            Self::NotFound(_) => "not_found",
            Self::TooManyRequests(_) => "too_many_requests",
            Self::Internal(_) => "internal_error",
        }
    }

    /// One invalid field.
    pub fn field(e: FieldError) -> Self {
        Self::Validation(vec![e])
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::field(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

/// The body of every error answer (RFC 9457 problem details), as the
/// OpenAPI document describes it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// Always `about:blank`: the problem is the HTTP status, made precise
    /// by `code` (the project names no problem-type URIs of its own).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Short summary (the status text).
    pub title: &'a str,
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: &'a str,
    /// Human-readable explanation.
    pub detail: String,
    /// Field errors, for `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<&'a [FieldError]>,
    /// For `token_unavailable`: why, and the failure behind it (no fields
    /// in other answers).
    #[serde(flatten)]
    pub token: TokenProblem<'a>,
}

/// What a `token_unavailable` answer adds to the problem (every field
/// absent from other answers).
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct TokenProblem<'a> {
    /// What kept the token away: `failed`, `backoff`, `budget_spent`,
    /// `not_renewable`, `busy`, `disabled` or `too_short`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// The failure's WeChat errcode (`null` for a network failure).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>, nullable)]
    pub errcode: Option<Option<i64>>,
    /// The failure's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errmsg: Option<&'a str>,
    /// The failure's class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<ErrorClass>,
    /// What the errcode means and what to do (`null` when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Explanation>, nullable)]
    pub explanation: Option<Option<Explanation>>,
}

impl<'a> TokenProblem<'a> {
    fn of(u: &'a Unavailable) -> Self {
        let f = u.failure.as_ref();
        Self {
            reason: Some(u.cause.as_str()),
            errcode: f.map(|f| f.errcode),
            errmsg: f.map(|f| f.errmsg.as_str()),
            class: f.map(|f| f.class),
            explanation: f.map(|f| errcodes::explanation_for(f.platform, f.errcode)),
        }
    }
}

impl Serialize for FieldError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("FieldError", 3)?;
        st.serialize_field("field", self.field)?;
        st.serialize_field("code", self.code)?;
        st.serialize_field("message", &self.message)?;
        st.end()
    }
}

/// Build a problem+json response.
pub fn problem_response(status: StatusCode, code: &str, detail: String) -> HttpResponse {
    problem_with_errors(status, code, detail, None, None)
}

fn problem_with_errors(
    status: StatusCode,
    code: &str,
    detail: String,
    errors: Option<&[FieldError]>,
    token: Option<TokenProblem<'_>>,
) -> HttpResponse {
    let body = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        code,
        detail,
        errors,
        token: token.unwrap_or_default(),
    };
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(serde_json::to_string(&body).unwrap_or_default())
}

use crate::report::error_chain;

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated(_) | Self::TotpRequired => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Csrf | Self::TotpEnrollmentRequired => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::TooManyRequests(_) | Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy(_) | Self::TokenUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
        let errors = match self {
            Self::Validation(errors) => Some(errors.as_slice()),
            _ => None,
        };
        let token = match self {
            Self::TokenUnavailable(u) => Some(TokenProblem::of(u)),
            _ => None,
        };
        let mut res = problem_with_errors(self.status_code(), self.code(), detail, errors, token);
        match self {
            Self::TooManyRequests(secs)
            | Self::RateLimited {
                retry_after: secs, ..
            }
            | Self::Busy(secs) => {
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            Self::TokenUnavailable(u) => {
                res.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(u.retry_after.as_secs().max(1)),
                );
            }
            Self::Unauthenticated(_) => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tokenvault\""),
                );
            }
            _ => {}
        }
        res
    }
}
