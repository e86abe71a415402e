//! How an error is told in a log line: its message and every cause below
//! it, so "cannot connect" says what could not be connected to and why.

use std::fmt::Write as _;

/// Render an error and every `source()` below it on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let _ = write!(out, ": {c}");
        cause = c.source();
    }
    out
}
