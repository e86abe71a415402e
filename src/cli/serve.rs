//! `tokenvault serve`: the HTTP server and the background jobs of one
//! replica, started side by side and stopped together. Whichever ends first
//! — a signal, the server, a job — is logged; then the jobs are cancelled
//! and awaited (the engine stores its in-flight refreshes while the server
//! still answers), the server stops taking requests (finishing those in
//! flight), the engine's own connections close, and the caller stops the
//! database ([`jobs::stop_replica`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use crate::config::Settings;
use crate::crypto::KeySource;
use crate::db::{self, Database};
use crate::jobs;
use crate::keys;
use crate::startup::{self, Application};

/// Run the service until SIGTERM or SIGINT.
pub(super) async fn serve(settings: Settings) -> anyhow::Result<()> {
    // Signals first: a SIGTERM that arrives while the database starts is
    // kept, and ends the service gracefully as soon as it serves.
    let signals = Signals::install()?;
    // Bind next: a taken port is reported before anything else starts.
    let listener = startup::bind(settings.bind)?;
    let database = Database::open(&settings).await?;
    let result = serve_on(settings, &database, listener, signals).await;
    let closed = database.close().await;
    result.and(closed)
}

/// What ended the serving.
enum Ended {
    /// A signal (its name).
    Signal(&'static str),
    /// The HTTP server, by itself.
    Server(Result<std::io::Result<()>, tokio::task::JoinError>),
    /// A background job, by itself (its name).
    Job(&'static str),
}

async fn serve_on(
    settings: Settings,
    database: &Database,
    listener: std::net::TcpListener,
    mut signals: Signals,
) -> anyhow::Result<()> {
    db::migrate(&database.pool).await?;
    // Before serving anything: a key ring that cannot decrypt what is stored stops here.
    let crypto = Arc::new(keys::open_key_ring(&settings, &database.pool).await?);
    let addr = listener.local_addr()?;
    let next_steps = next_steps(&settings, addr);
    let app = Application::build(settings, database.pool.clone(), crypto, listener)?;
    let state = app.state();
    let handle = app.handle();
    let mut server = tokio::spawn(app.run_until_stopped());
    let mut jobs = jobs::start(&state);
    tracing::info!("tokenvault is serving on http://{addr}");
    for line in &next_steps {
        tracing::info!("{line}");
    }
    let ended = tokio::select! {
        signal = signals.recv() => Ended::Signal(signal),
        result = &mut server => Ended::Server(result),
        job = jobs.stopped() => Ended::Job(job),
    };
    let served = match ended {
        Ended::Signal(signal) => {
            tracing::info!("{signal} received: shutting down gracefully");
            jobs::stop_replica(jobs, &handle).await;
            server
                .await
                .context("HTTP server task failed")?
                .map_err(Into::into)
        }
        Ended::Server(result) => {
            tracing::error!("HTTP server stopped unexpectedly");
            jobs.shutdown().await;
            result
                .context("HTTP server task failed")?
                .map_err(Into::into)
        }
        Ended::Job(job) => {
            tracing::error!(job, "background job stopped unexpectedly: shutting down");
            jobs::stop_replica(jobs, &handle).await;
            let _ = server.await;
            Err(anyhow::anyhow!(
                "the background job '{job}' stopped unexpectedly"
            ))
        }
    };
    // Nothing uses the engine's own connections any more.
    state.engine.pool().close().await;
    served
}

/// What someone who just started the service needs next, logged after
/// "serving on": the address to open, where the data and the master keys
/// are (absolute paths), and to keep the keys safe. Never a key itself.
fn next_steps(settings: &Settings, addr: SocketAddr) -> Vec<String> {
    let absolute = |path: &Path| {
        path.canonicalize()
            .or_else(|_| std::path::absolute(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    let mut lines = vec![format!(
        "open {} in a browser to sign up or sign in",
        browser_url(addr)
    )];
    match &settings.database_url {
        None => lines.push(format!(
            "data directory: {} (the embedded PostgreSQL and its log)",
            absolute(&settings.data_dir).display()
        )),
        Some(url) => lines.push(format!("database: DATABASE_URL ({url})")),
    }
    // The ring was loaded already: this names where it came from.
    match keys::load_configured(settings)
        .ok()
        .flatten()
        .map(|(_, source)| source)
    {
        Some(KeySource::File(path) | KeySource::DataDir(path)) => {
            let path = absolute(&path);
            lines.push(format!("master key file: {}", path.display()));
            lines.push(format!(
                "back up {} and keep it secret: without it the stored appsecrets and tokens \
                 cannot be decrypted",
                path.display()
            ));
        }
        Some(KeySource::Setting) => lines.push(
            "master keys: from TOKENVAULT_MASTER_KEYS; keep a copy of them somewhere safe: \
             without them the stored appsecrets and tokens cannot be decrypted"
                .into(),
        ),
        None => {}
    }
    lines
}
/// The address to open in a browser: a wildcard bind address is reached
/// through the loopback of its family.
fn browser_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// SIGTERM and SIGINT, listened for from the first moment of the start.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    /// The name of the next signal received (or received already).
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_url_of_a_wildcard_bind_is_the_loopback() {
        let url = |addr: &str| browser_url(addr.parse().unwrap());
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080");
        assert_eq!(url("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(url("192.0.2.7:80"), "http://192.0.2.7:80");
    }
}
