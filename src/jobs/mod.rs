//! Background work of a replica, with one owner. [`start`] starts every job
//! as a task of its own, all watching one cancellation token; [`Jobs::shutdown`]
//! cancels it and awaits every task. Nothing else in the service spawns
//! long-running work (request handlers and the engine's per-refresh tasks
//! aside, which the engine job waits for).
//!
//! - the refresh loop ([`refresh`]), and the two listeners that follow
//!   PostgreSQL notifications through one LISTEN helper with reconnect
//!   ([`listen`]): token changes ([`token_changes`]) and key revocations
//!   ([`key_revocations`]);
//! - the periodic jobs, on one timer mechanism ([`periodic::every`]): the
//!   heartbeat, refresh-log and budget pruning, the keys' last-use and
//!   token-read flushes, session and throttle pruning, and the mail outbox
//!   ([`mail`]). Each interval is a
//!   setting ([`crate::config::JobIntervals`]).
//!
//! Why not `tokio-cron-scheduler` for the periodic jobs: its shutdown stops
//! its ticker but neither waits for a job that is running nor ends the tasks
//! it spawns for itself, so "every task awaited on shutdown" cannot hold; and
//! it quantises every interval to its own half-second poll. A
//! `tokio::time::interval` per job, inside a task this module owns, does
//! both, in a few lines.

mod alert_delivery;
mod audit_flush;
mod heartbeat;
mod key_revocations;
mod key_use;
mod listen;
mod log_prune;
mod mail;
mod periodic;
mod refresh;
mod session_prune;
mod throttle_prune;
mod token_changes;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// The running background jobs of one replica. Dropping it cancels them
/// (and aborts their tasks); [`Jobs::shutdown`] lets them finish first.
pub struct Jobs {
    stop: CancellationToken,
    tasks: JoinSet<&'static str>,
    names: HashMap<Id, &'static str>,
    /// How long [`Jobs::shutdown`] waits before it aborts what is left.
    grace: Duration,
}

/// How the jobs ended on shutdown.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Jobs that ended by themselves once cancelled.
    pub finished: Vec<&'static str>,
    /// Jobs that failed (panicked) or were aborted after the grace period.
    pub failed: Vec<&'static str>,
}

/// Stop a replica as SIGTERM does: first its background jobs (so the
/// refreshes in flight are stored while the HTTP workers still run: their
/// runtimes opened some of the engine's connections, which die with them),
/// then the server, which finishes the requests in flight. How the jobs ended.
pub async fn stop_replica(jobs: Jobs, server: &actix_web::dev::ServerHandle) -> Stopped {
    let stopped = jobs.shutdown().await;
    server.stop(true).await;
    stopped
}

/// Start every background job of the replica whose state is `state`.
pub fn start(state: &Arc<AppState>) -> Jobs {
    // An in-flight refresh may take an upstream timeout; its transaction
    // then commits. Anything slower than that and a margin is aborted.
    let grace = Duration::from_secs(state.settings.upstream_timeout) + Duration::from_secs(10);
    let mut jobs = Jobs::new(grace);
    jobs.start(state, refresh::NAME, refresh::run);
    jobs.start(state, token_changes::NAME, token_changes::run);
    jobs.start(state, key_revocations::NAME, key_revocations::run);
    jobs.start(state, heartbeat::NAME, heartbeat::run);
    jobs.start(state, log_prune::NAME, log_prune::run);
    jobs.start(state, key_use::NAME, key_use::run);
    jobs.start(state, audit_flush::NAME, audit_flush::run);
    jobs.start(state, session_prune::NAME, session_prune::run);
    jobs.start(state, throttle_prune::NAME, throttle_prune::run);
    jobs.start(state, alert_delivery::NAME, alert_delivery::run);
    jobs.start(state, mail::NAME, mail::run);
    tracing::debug!(jobs = ?jobs.names(), "background jobs started");
    jobs
}

impl Jobs {
    fn new(grace: Duration) -> Self {
        Self {
            stop: CancellationToken::new(),
            tasks: JoinSet::new(),
            names: HashMap::new(),
            grace,
        }
    }

    /// Start job `name`: `run` with the replica's state and the token it
    /// must watch, in a task of its own.
    fn start<F, Fut>(&mut self, state: &Arc<AppState>, name: &'static str, run: F)
    where
        F: FnOnce(Arc<AppState>, CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let job = run(Arc::clone(state), self.stop.clone());
        let handle = self.tasks.spawn(async move {
            job.await;
            name
        });
        self.names.insert(handle.id(), name);
    }

    /// The jobs still running, by name.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.names.values().copied().collect();
        names.sort_unstable();
        names
    }

    /// Wait until a job ends before shutdown (none should: each runs until
    /// cancelled); its name. Pending for ever when no job runs.
    pub async fn stopped(&mut self) -> &'static str {
        match self.tasks.join_next_with_id().await {
            Some(Ok((id, name))) => {
                self.names.remove(&id);
                name
            }
            Some(Err(e)) => self.names.remove(&e.id()).unwrap_or("a background job"),
            None => std::future::pending().await,
        }
    }

    /// Cancel every job and wait for each to end (at most the grace period,
    /// then the rest is aborted).
    pub async fn shutdown(mut self) -> Stopped {
        self.stop.cancel();
        let mut stopped = Stopped::default();
        let grace = self.grace;
        let in_time = tokio::time::timeout(grace, async {
            while let Some(next) = self.tasks.join_next_with_id().await {
                self.record(next, &mut stopped);
            }
        })
        .await;
        if in_time.is_err() {
            tracing::warn!(jobs = ?self.names(), "background jobs still running after {grace:?}: aborting them");
            self.tasks.abort_all();
            while let Some(next) = self.tasks.join_next_with_id().await {
                self.record(next, &mut stopped);
            }
        }
        tracing::info!(finished = ?stopped.finished, failed = ?stopped.failed, "background jobs stopped");
        stopped
    }

    fn record(
        &mut self,
        ended: Result<(Id, &'static str), tokio::task::JoinError>,
        stopped: &mut Stopped,
    ) {
        match ended {
            Ok((id, name)) => {
                self.names.remove(&id);
                stopped.finished.push(name);
            }
            Err(e) => {
                let name = self.names.remove(&e.id()).unwrap_or("a background job");
                if e.is_panic() {
                    tracing::error!(job = name, "background job panicked");
                }
                stopped.failed.push(name);
            }
        }
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        // The tasks are aborted with the set; the token tells work they
        // spawned (none today) to stop too.
        self.stop.cancel();
    }
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("running", &self.names())
            .finish_non_exhaustive()
    }
}
