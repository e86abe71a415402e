//! The JSON bodies the API answers, as the OpenAPI document describes them:
//! one module per area, each type built from a use case's result.

pub mod ops;
pub mod problem;
