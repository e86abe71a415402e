//! Background work of a replica, each job registered here in one place:
//! the refresh loop, the notification listener that wakes it, and the
//! periodic jobs on `tokio-cron-scheduler` (tick, log pruning, heartbeat).

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio_cron_scheduler::{Job, JobScheduler};

use super::engine::RefreshEngine;
use crate::db;

/// Channel announcing token rows that changed or became due earlier.
pub const TOKENS_CHANNEL: &str = "tokenvault_tokens";

/// Start the refresh loop, the listener and the periodic jobs.
pub fn spawn(engine: Arc<RefreshEngine>, pool: PgPool, log_days: u32) {
    tokio::spawn(Arc::clone(&engine).run());
    tokio::spawn(listen(Arc::clone(&engine), pool.clone()));
    tokio::spawn(async move {
        if let Err(e) = start_jobs(engine, pool, log_days).await {
            tracing::error!(error = %e, "cannot start the periodic jobs");
        }
    });
}

/// LISTEN for token changes: wake the refresh loop and drop cached copies
/// (all of them when notifications may have been missed).
async fn listen(engine: Arc<RefreshEngine>, pool: PgPool) {
    let on_change = |app_id| engine.cache.forget(app_id);
    loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if let Err(e) = listener.listen(TOKENS_CHANNEL).await {
                    tracing::warn!(error = %e, "cannot listen for token changes; retrying");
                } else {
                    on_change(None);
                    engine.wake();
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(n)) => {
                                on_change(n.payload().parse().ok());
                                engine.wake();
                            }
                            Ok(None) => {
                                // Reconnected: what was announced meanwhile is unknown.
                                on_change(None);
                                engine.wake();
                            }
                            Err(e) => {
                                if pool.is_closed() {
                                    // The service is stopping: nothing to report.
                                    return;
                                }
                                tracing::warn!(error = %e, "token change listener failed; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect the token change listener; retrying");
            }
        }
        if pool.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn start_jobs(engine: Arc<RefreshEngine>, pool: PgPool, log_days: u32) -> anyhow::Result<()> {
    // Seen from the start: the service health page would otherwise count
    // a replica that just started as missing until its first tick.
    if let Err(e) = heartbeat(&pool, engine.replica_id()).await {
        tracing::warn!(error = %e, "first replica heartbeat failed; the tick retries it");
    }
    let scheduler = JobScheduler::new().await?;

    let tick = engine.config().tick;
    let ticked = Arc::clone(&engine);
    let heartbeat_pool = pool.clone();
    scheduler
        .add(Job::new_repeated_async(tick, move |_, _| {
            let engine = Arc::clone(&ticked);
            let pool = heartbeat_pool.clone();
            Box::pin(async move {
                engine.wake();
                if let Err(e) = heartbeat(&pool, engine.replica_id()).await {
                    tracing::debug!(error = %e, "replica heartbeat failed");
                }
            })
        })?)
        .await?;

    let prune_pool = pool.clone();
    scheduler
        .add(Job::new_repeated_async(Duration::from_secs(600), move |_, _| {
            let pool = prune_pool.clone();
            Box::pin(async move {
                let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(log_days));
                let yesterday = super::policy::quota_day(chrono::Utc::now()) - chrono::Days::new(1);
                if let Err(e) = db::budget::prune(&pool, yesterday).await {
                    tracing::warn!(error = %e, "cannot prune past upstream budgets; will retry");
                }
                loop {
                    match db::tokens::prune_log(&pool, cutoff, 5_000).await {
                        Ok(n) if n > 0 => tracing::info!(deleted = n, "pruned old refresh log entries"),
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot prune the refresh log; will retry");
                            break;
                        }
                    }
                }
            })
        })?)
        .await?;

    scheduler.start().await?;
    // The scheduler runs its jobs for as long as it is alive: keep it so
    // until the pool (and so the service) is closed.
    while !pool.is_closed() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The engine's own pool goes with the service's.
    engine.pool().close().await;
    let mut scheduler = scheduler;
    scheduler.shutdown().await?;
    Ok(())
}

async fn heartbeat(pool: &PgPool, replica: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into replicas (id, hostname, version) values ($1, $2, $3)
         on conflict (id) do update set last_seen_at = now()",
    )
    .bind(replica)
    .bind(hostname())
    .bind(env!("CARGO_PKG_VERSION"))
    .execute(pool)
    .await?;
    Ok(())
}

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "unknown".into(), |h| h.trim().to_string())
}

/// A replica id: the configured one, or host name, process id and a random suffix.
pub fn replica_id(configured: Option<&str>) -> String {
    configured.map_or_else(
        || {
            let suffix: u16 = rand::random();
            format!("{}-{}-{suffix:04x}", hostname(), std::process::id())
        },
        str::to_string,
    )
}
