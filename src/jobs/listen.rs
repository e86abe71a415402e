//! The one LISTEN helper: follow a PostgreSQL notification channel until
//! cancelled, reconnecting after a loss, and tell the caller whenever
//! notifications may have been missed (at the start and after every loss),
//! so that it can drop what it caches.
//!
//! The listening connection comes from a pool of one of its own, closed
//! before [`follow`] returns: dropping a `PgListener` hands its connection
//! back in a task of its own, which a shutdown would otherwise race (the
//! database stopping under it).

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use crate::db;

/// Pause before connecting again after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a listener hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Heard<'a> {
    /// Listening (again): anything announced before is unknown.
    MayHaveMissed,
    /// A notification, with its payload.
    Notified(&'a str),
}

/// Follow `channel` on a connection of `pool` until `stop` is cancelled,
/// handing what is heard to `on`. `what` names the channel in log lines.
pub(super) async fn follow(
    pool: &PgPool,
    channel: &str,
    what: &str,
    stop: &CancellationToken,
    on: impl FnMut(Heard<'_>),
) {
    let own = db::pool_beside(pool, 1);
    follow_on(&own, channel, what, stop, on).await;
    // Waits for the listener's connection to come back, then closes it.
    own.close().await;
}

async fn follow_on(
    pool: &PgPool,
    channel: &str,
    what: &str,
    stop: &CancellationToken,
    mut on: impl FnMut(Heard<'_>),
) {
    loop {
        let subscribed = tokio::select! {
            () = stop.cancelled() => return,
            subscribed = subscribe(pool, channel) => subscribed,
        };
        match subscribed {
            Ok(mut listener) => {
                on(Heard::MayHaveMissed);
                loop {
                    let received = tokio::select! {
                        () = stop.cancelled() => return,
                        received = listener.try_recv() => received,
                    };
                    match received {
                        Ok(Some(notification)) => on(Heard::Notified(notification.payload())),
                        // The connection was lost and sqlx connects again.
                        Ok(None) => on(Heard::MayHaveMissed),
                        Err(e) => {
                            tracing::warn!(error = %e, "the {what} listener failed; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for {what}; retrying"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RETRY_AFTER) => {}
        }
    }
}

async fn subscribe(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}
