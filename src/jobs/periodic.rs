//! The one timer of the periodic jobs: a `tokio::time::interval` inside the
//! job's own task, ended by the cancellation token.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, interval_at};
use tokio_util::sync::CancellationToken;

/// When a periodic job runs first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum First {
    /// At once, then every period.
    Now,
    /// After one period.
    AfterOnePeriod,
}

/// Run `job` every `period` until `stop` is cancelled. A run in progress is
/// not interrupted (each is a few short statements; a slow one delays the
/// next run rather than overlapping it); the cancellation ends the wait
/// between runs.
pub(super) async fn every<F, Fut>(
    period: Duration,
    first: First,
    stop: &CancellationToken,
    mut job: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let start = match first {
        First::Now => Instant::now(),
        First::AfterOnePeriod => Instant::now() + period,
    };
    let mut ticks = interval_at(start, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        job().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Runs counted by a periodic job of `period` started with `first`.
    fn counted(
        period: Duration,
        first: First,
    ) -> (
        Arc<AtomicU32>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let runs = Arc::new(AtomicU32::new(0));
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (runs, stop) = (Arc::clone(&runs), stop.clone());
            async move {
                every(period, first, &stop, || {
                    runs.fetch_add(1, Ordering::Relaxed);
                    async {}
                })
                .await;
            }
        });
        (runs, stop, task)
    }

    #[tokio::test]
    async fn runs_every_period_until_cancelled() {
        let (runs, stop, task) = counted(Duration::from_millis(200), First::AfterOnePeriod);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(runs.load(Ordering::Relaxed), 0, "not before one period");
        tokio::time::sleep(Duration::from_millis(600)).await;
        let seen = runs.load(Ordering::Relaxed);
        assert!((2..=4).contains(&seen), "{seen} runs in 700 ms");
        stop.cancel();
        task.await.unwrap();
        let after = runs.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            runs.load(Ordering::Relaxed),
            after,
            "no run after the cancellation"
        );
    }

    #[tokio::test]
    async fn first_now_runs_at_once() {
        let (runs, stop, task) = counted(Duration::from_secs(3600), First::Now);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        stop.cancel();
        task.await.unwrap();
    }
}
