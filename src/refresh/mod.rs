//! The refresh engine: keeps every app's token valid, asks WeChat exactly as
//! often as needed and never twice at once across replicas.

pub mod alerts;
pub mod attempt;
pub mod cache;
pub mod engine;
pub mod gate;
pub mod hourly;
pub mod kind;
pub mod metrics;
pub mod policy;
pub mod reads;
pub mod slots;
pub mod tickets;
pub mod token;
