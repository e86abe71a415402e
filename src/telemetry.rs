//! Logging with `tracing`: human-readable text by default, JSON on request.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::LogFormat;

/// Install the global subscriber. `filter` has been validated by the CLI.
/// A second call (tests start several apps in one process) is a no-op.
pub fn init(filter: &str, format: LogFormat) {
    // PostgreSQL notices ("relation already exists, skipping") are noise.
    let filter = EnvFilter::try_new(format!("sqlx::postgres::notice=warn,{filter}"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
