//! Charts drawn on the server as inline SVG (no library, no canvas): this
//! module turns what a use case returned into geometry, and a template
//! draws it (auto-escaped, titled, with a text equivalent beside it).
//! Colours come from the outcome's CSS class (`chart-<outcome>` in
//! `web/static/app.css`), which pass contrast against the white card.

use serde::Serialize;

use crate::domain::{RefreshOutcome, Trigger};

/// The most attempts a latency chart draws.
pub const LATENCY_ATTEMPTS: usize = 100;
/// The drawing's size in SVG units (it scales to the card's width).
const WIDTH: u32 = 600;
const HEIGHT: u32 = 120;

/// One refresh attempt, as a chart reads it.
pub struct Attempt {
    /// Where it happened, as the page writes instants.
    pub when: String,
    /// What started it.
    pub trigger: Trigger,
    /// How it ended.
    pub outcome: RefreshOutcome,
    /// WeChat's errcode, if it answered with one.
    pub errcode: Option<i32>,
    /// How long WeChat took; `None` when it was not asked.
    pub latency_ms: Option<i32>,
}

/// One bar: an attempt's latency.
#[derive(Debug, Serialize, PartialEq)]
pub struct Bar {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    outcome: RefreshOutcome,
    trigger: Trigger,
    errcode: Option<i32>,
    latency_ms: u32,
    when: String,
}

/// The latency of the last attempts, oldest on the left.
#[derive(Debug, Serialize, PartialEq)]
pub struct LatencyChart {
    width: u32,
    height: u32,
    bars: Vec<Bar>,
    /// Attempts drawn (those that asked WeChat).
    count: usize,
    median_ms: u32,
    max_ms: u32,
    failures: usize,
}

/// A latency chart of `attempts` (newest first, as the log lists them): at
/// most [`LATENCY_ATTEMPTS`] bars, the tallest the slowest attempt.
#[must_use]
pub fn latency(attempts: &[Attempt]) -> LatencyChart {
    let timed: Vec<(&Attempt, u32)> = attempts
        .iter()
        .take(LATENCY_ATTEMPTS)
        .filter_map(|a| Some((a, u32::try_from(a.latency_ms?).ok()?)))
        .rev()
        .collect();
    let max_ms = timed.iter().map(|(_, ms)| *ms).max().unwrap_or(0);
    let mut sorted: Vec<u32> = timed.iter().map(|(_, ms)| *ms).collect();
    sorted.sort_unstable();
    let median_ms = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    let slot = WIDTH / u32::try_from(LATENCY_ATTEMPTS).unwrap_or(100);
    let bars = timed
        .iter()
        .zip(0u32..)
        .map(|((a, ms), i)| {
            // At least 2 units, so a fast attempt still shows.
            let height = (u64::from(*ms) * u64::from(HEIGHT) / u64::from(max_ms.max(1)))
                .max(2)
                .try_into()
                .unwrap_or(HEIGHT);
            Bar {
                x: i * slot,
                y: HEIGHT - height,
                width: slot - 1,
                height,
                outcome: a.outcome,
                trigger: a.trigger,
                errcode: a.errcode,
                latency_ms: *ms,
                when: a.when.clone(),
            }
        })
        .collect();
    LatencyChart {
        width: WIDTH,
        height: HEIGHT,
        count: timed.len(),
        failures: timed
            .iter()
            .filter(|(a, _)| a.outcome == RefreshOutcome::Failure)
            .count(),
        bars,
        median_ms,
        max_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(ms: Option<i32>, outcome: RefreshOutcome) -> Attempt {
        Attempt {
            when: "2026-12-01 03:00:00 UTC".into(),
            trigger: Trigger::Schedule,
            outcome,
            errcode: (outcome == RefreshOutcome::Failure).then_some(40001),
            latency_ms: ms,
        }
    }

    #[test]
    fn bars_scale_to_the_slowest_attempt_oldest_first() {
        let newest_first = [
            attempt(Some(400), RefreshOutcome::Failure),
            attempt(Some(100), RefreshOutcome::Success),
            attempt(None, RefreshOutcome::Skipped),
            attempt(Some(200), RefreshOutcome::Success),
        ];
        let chart = latency(&newest_first);
        assert_eq!(chart.count, 3);
        assert_eq!(
            (chart.max_ms, chart.median_ms, chart.failures),
            (400, 200, 1)
        );
        let heights: Vec<u32> = chart.bars.iter().map(|b| b.height).collect();
        assert_eq!(heights, [60, 30, 120]);
        assert_eq!(chart.bars[2].y, 0);
        assert_eq!(chart.bars[2].errcode, Some(40001));
        assert_eq!(chart.bars[0].x, 0);
        assert!(chart.bars[1].x > chart.bars[0].x);
        assert!(chart.bars.iter().all(|b| b.x + b.width <= WIDTH));
    }

    #[test]
    fn at_most_a_hundred_bars_and_a_fast_attempt_still_shows() {
        let many: Vec<Attempt> = (0..10_000)
            .map(|i| attempt(Some(if i == 0 { 0 } else { 5000 }), RefreshOutcome::Success))
            .collect();
        let chart = latency(&many);
        assert_eq!(chart.bars.len(), LATENCY_ATTEMPTS);
        // The newest (first) attempt is the rightmost bar.
        let last = chart.bars.last().unwrap();
        assert_eq!((last.latency_ms, last.height), (0, 2));
        assert!(last.x + last.width <= WIDTH);
    }

    #[test]
    fn no_attempts_no_bars() {
        let chart = latency(&[]);
        assert_eq!((chart.count, chart.max_ms, chart.median_ms), (0, 0, 0));
        assert!(chart.bars.is_empty());
    }
}
