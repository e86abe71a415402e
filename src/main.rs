//! The `tokenvault` binary: parse the command line, run, report one line on error.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = tokenvault::cli::Cli::parse();
    match tokenvault::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokenvault: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
