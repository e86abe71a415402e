//! Use cases, each written once and called by every adapter (the REST API,
//! the WeChat-compatible endpoints, the web UI).

pub mod token_read;
