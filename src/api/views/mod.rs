//! What the API answers: the bodies the handlers serialise are the structs
//! the OpenAPI document describes (`crate::api::openapi` lists them), built
//! from the use cases' results; never a database row, never `json!`.

pub mod people;
