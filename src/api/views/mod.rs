//! The bodies the API answers: structs deriving `Serialize` and `ToSchema`,
//! built from the use cases' results, serialised by the handlers and listed
//! in the OpenAPI document (`super::openapi`) as they are. Never a database
//! row on the wire, never a body built by hand.

pub mod account;
pub mod alerts;
pub mod apps;
pub mod ops;
pub mod people;
pub mod problem;
pub mod tickets;
pub mod tokens;
pub mod two_factor;
