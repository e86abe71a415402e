//! The body of every error answer: RFC 9457 problem details, as
//! `crate::error` writes them.

use serde::Serialize;
use utoipa::ToSchema;

/// An error answer (RFC 9457 problem details).
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary (the status text).
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: String,
    /// Human-readable explanation.
    pub detail: String,
    /// Field errors, for `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldErrorView>>,
}

/// One invalid field.
#[derive(Serialize, ToSchema)]
#[schema(as = FieldError)]
pub struct FieldErrorView {
    /// The field's name.
    pub field: String,
    /// Stable code, e.g. `too_long`.
    pub code: String,
    /// What is wrong and how to fix it.
    pub message: String,
}
