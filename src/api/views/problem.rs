//! The body of every error answer: RFC 9457 problem details, written by
//! `crate::error` and described by the same type.

pub use crate::domain::FieldError;
pub use crate::error::{Problem, TokenProblem};
