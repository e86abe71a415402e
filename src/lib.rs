//! tokenvault: a multi-tenant token vault for WeChat mini-programs.
//!
//! The binary is a thin shell around [`cli::run`]; everything else lives here
//! so that tests can build the application on a random port.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod mail;
pub mod refresh;
pub mod report;
pub mod secret;
pub mod service;
pub mod startup;
pub mod state;
pub mod stats;
pub mod telemetry;
pub mod ui;
pub mod upstream;

/// The request bodies and forms of `api` and `ui` hold their secrets masked
/// (a test of the edge, kept at the top so no layer imports one above it).
#[cfg(test)]
mod edge_tests;
