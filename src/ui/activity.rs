//! Charts of many attempts at once, as geometry for inline SVG: the
//! dashboard's 24-hour sparkline per app, and the service's refreshes per
//! minute by outcome and WeChat's latency percentiles (the service health
//! and operator pages). Pure functions over aggregates, each bounded by
//! its number of buckets.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::pages::when;
use crate::db::history::{AppHour, LatencyHour, ServiceBucket};
use crate::domain::{AppUuid, RefreshOutcome};

/// Outcomes from the worst: the colour of a bucket with several.
const WORST_FIRST: [RefreshOutcome; 4] = [
    RefreshOutcome::Failure,
    RefreshOutcome::Skipped,
    RefreshOutcome::Success,
    RefreshOutcome::Unchanged,
];

fn index(outcome: RefreshOutcome) -> usize {
    WORST_FIRST.iter().position(|o| *o == outcome).unwrap_or(0)
}

/// One hour of a sparkline.
#[derive(Debug, Serialize, PartialEq)]
pub struct SparkBar {
    x: u32,
    y: u32,
    height: u32,
    outcome: RefreshOutcome,
}

/// An app's last 24 hours, an hour a bar, coloured by its worst outcome.
#[derive(Debug, Serialize, PartialEq, Default)]
pub struct Sparkline {
    bars: Vec<SparkBar>,
    attempts: i64,
    failures: i64,
}

/// Hours a sparkline draws.
const SPARK_HOURS: usize = 24;
/// A sparkline's bar width and height in SVG units.
const SPARK_SLOT: u32 = 4;
const SPARK_HEIGHT: u32 = 20;

/// The sparkline of each app in `rows` (hours aligned on `since`).
#[must_use]
pub fn sparklines(since: DateTime<Utc>, rows: &[AppHour]) -> HashMap<AppUuid, Sparkline> {
    let mut counts: HashMap<AppUuid, [[i64; 4]; SPARK_HOURS]> = HashMap::new();
    for r in rows {
        let Ok(hour) = usize::try_from((r.hour - since).num_hours()) else {
            continue;
        };
        if hour < SPARK_HOURS {
            counts.entry(r.app_id).or_insert([[0; 4]; SPARK_HOURS])[hour][index(r.outcome)] +=
                r.attempts;
        }
    }
    counts
        .into_iter()
        .map(|(app, hours)| {
            let total = |h: &[i64; 4]| h.iter().sum::<i64>();
            let max = hours.iter().map(total).max().unwrap_or(0).max(1);
            let bars = hours
                .iter()
                .zip(0u32..)
                .filter(|(h, _)| total(h) > 0)
                .map(|(h, i)| {
                    let height = u32::try_from(total(h) * i64::from(SPARK_HEIGHT) / max)
                        .unwrap_or(SPARK_HEIGHT)
                        .max(3);
                    let worst = h.iter().position(|n| *n > 0).unwrap_or(0);
                    SparkBar {
                        x: i * SPARK_SLOT,
                        y: SPARK_HEIGHT - height,
                        height,
                        outcome: WORST_FIRST[worst],
                    }
                })
                .collect();
            let line = Sparkline {
                bars,
                attempts: hours.iter().map(total).sum(),
                failures: hours.iter().map(|h| h[0]).sum(),
            };
            (app, line)
        })
        .collect()
}

/// Width and height of the service charts in SVG units.
const WIDTH: u32 = 720;
const HEIGHT: u32 = 120;

/// One outcome's share of a column.
#[derive(Debug, Serialize, PartialEq)]
pub struct Segment {
    y: u32,
    height: u32,
    outcome: RefreshOutcome,
    attempts: i64,
}

/// One bucket of the service's refreshes.
#[derive(Debug, Serialize, PartialEq)]
pub struct Column {
    x: u32,
    width: u32,
    from: String,
    /// Refreshes per minute over the bucket, one decimal.
    per_minute: String,
    segments: Vec<Segment>,
}

/// The service's refreshes per minute, a stacked column per bucket.
#[derive(Debug, Serialize)]
pub struct RateChart {
    width: u32,
    height: u32,
    columns: Vec<Column>,
    /// The highest rate drawn, per minute, one decimal.
    peak_per_minute: String,
    /// Attempts per outcome over the window, worst first.
    totals: Vec<(RefreshOutcome, i64)>,
}

/// Refreshes per minute of `buckets` (of `stride` each, aligned on `since`).
#[must_use]
pub fn rate(since: DateTime<Utc>, stride: Duration, buckets: &[ServiceBucket]) -> RateChart {
    let slots = (Duration::hours(24).num_seconds() / stride.num_seconds().max(1)).max(1);
    let slot = WIDTH / u32::try_from(slots).unwrap_or(WIDTH).max(1);
    let mut columns: Vec<(i64, [i64; 4])> = Vec::new();
    for b in buckets {
        let i = (b.start - since).num_seconds() / stride.num_seconds().max(1);
        if !(0..slots).contains(&i) {
            continue;
        }
        match columns.last_mut() {
            Some((at, counts)) if *at == i => counts[index(b.outcome)] += b.attempts,
            _ => {
                let mut counts = [0; 4];
                counts[index(b.outcome)] = b.attempts;
                columns.push((i, counts));
            }
        }
    }
    let peak = columns
        .iter()
        .map(|(_, c)| c.iter().sum::<i64>())
        .max()
        .unwrap_or(0);
    let minutes = stride.num_minutes().max(1);
    let per_minute = |n: i64| format!("{}.{}", n / minutes, n * 10 / minutes % 10);
    let mut totals = [0i64; 4];
    let columns = columns
        .into_iter()
        .map(|(i, counts)| {
            let mut top = HEIGHT;
            let mut segments = Vec::new();
            // Drawn from the bottom: unchanged, success, skipped, failure on top.
            for k in (0..4).rev() {
                totals[k] += counts[k];
                if counts[k] == 0 {
                    continue;
                }
                let height = u32::try_from(counts[k] * i64::from(HEIGHT) / peak.max(1))
                    .unwrap_or(HEIGHT)
                    .max(1);
                top = top.saturating_sub(height);
                segments.push(Segment {
                    y: top,
                    height,
                    outcome: WORST_FIRST[k],
                    attempts: counts[k],
                });
            }
            let x = u32::try_from(i).unwrap_or(0) * slot;
            Column {
                x,
                width: slot.saturating_sub(1).max(1),
                from: when(since + stride * i32::try_from(i).unwrap_or(0)),
                per_minute: per_minute(counts.iter().sum()),
                segments,
            }
        })
        .collect();
    RateChart {
        width: WIDTH,
        height: HEIGHT,
        columns,
        peak_per_minute: per_minute(peak),
        totals: WORST_FIRST.iter().copied().zip(totals).collect(),
    }
}

/// One hour of the latency chart.
#[derive(Debug, Serialize, PartialEq)]
pub struct LatencyPoint {
    x: u32,
    /// Where each percentile's dot sits (a lone hour shows as dots).
    y: [i64; 3],
    from: String,
    calls: i64,
    p50: i64,
    p90: i64,
    p99: i64,
}

/// WeChat's latency percentiles per hour, three lines.
#[derive(Debug, Serialize)]
pub struct PercentileChart {
    width: u32,
    height: u32,
    /// `points` attributes of the three polylines.
    p50: String,
    p90: String,
    p99: String,
    points: Vec<LatencyPoint>,
    max_ms: i64,
}

/// The latency percentiles of `hours` (aligned on `since`).
#[must_use]
#[allow(clippy::cast_possible_truncation)]
pub fn percentiles(since: DateTime<Utc>, hours: &[LatencyHour]) -> PercentileChart {
    let slot = WIDTH / 24;
    let points: Vec<LatencyPoint> = hours
        .iter()
        .filter_map(|h| {
            let i = u32::try_from((h.hour - since).num_hours())
                .ok()
                .filter(|i| *i < 24)?;
            Some(LatencyPoint {
                x: i * slot + slot / 2,
                y: [0; 3],
                from: when(h.hour),
                calls: h.calls,
                p50: h.p50.round() as i64,
                p90: h.p90.round() as i64,
                p99: h.p99.round() as i64,
            })
        })
        .collect();
    let max_ms = points.iter().map(|p| p.p99).max().unwrap_or(0);
    let y_of = |ms: i64| i64::from(HEIGHT) - ms * i64::from(HEIGHT - 4) / max_ms.max(1);
    let mut points = points;
    for p in &mut points {
        p.y = [y_of(p.p50), y_of(p.p90), y_of(p.p99)];
    }
    let line = |pick: fn(&LatencyPoint) -> i64| {
        points
            .iter()
            .map(|p| format!("{},{}", p.x, y_of(pick(p))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    PercentileChart {
        width: WIDTH,
        height: HEIGHT,
        p50: line(|p| p.p50),
        p90: line(|p| p.p90),
        p99: line(|p| p.p99),
        max_ms,
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    #[test]
    fn a_sparkline_per_app_coloured_by_the_worst_outcome() {
        let a = AppUuid::from(uuid::Uuid::from_u128(1));
        let b = AppUuid::from(uuid::Uuid::from_u128(2));
        let row = |app, hour: i64, outcome, attempts| AppHour {
            app_id: app,
            hour: at(hour * 60),
            outcome,
            attempts,
        };
        let lines = sparklines(
            at(0),
            &[
                row(a, 0, RefreshOutcome::Success, 3),
                row(a, 0, RefreshOutcome::Failure, 1),
                row(a, 23, RefreshOutcome::Unchanged, 2),
                row(a, 24, RefreshOutcome::Failure, 9),
                row(b, 5, RefreshOutcome::Skipped, 1),
            ],
        );
        let la = &lines[&a];
        assert_eq!((la.attempts, la.failures), (6, 1));
        assert_eq!(la.bars.len(), 2);
        assert_eq!(la.bars[0].outcome, RefreshOutcome::Failure);
        assert_eq!((la.bars[0].y, la.bars[0].height), (0, SPARK_HEIGHT));
        assert_eq!(la.bars[1].outcome, RefreshOutcome::Unchanged);
        assert_eq!(la.bars[1].x, 23 * SPARK_SLOT);
        assert_eq!(la.bars[1].height, 10);
        assert_eq!(lines[&b].bars[0].outcome, RefreshOutcome::Skipped);
    }

    #[test]
    fn refreshes_per_minute_stack_by_outcome() {
        let bucket = |minutes, outcome, attempts| ServiceBucket {
            start: at(minutes),
            outcome,
            attempts,
        };
        let chart = rate(
            at(0),
            Duration::minutes(10),
            &[
                bucket(0, RefreshOutcome::Failure, 5),
                bucket(0, RefreshOutcome::Success, 15),
                bucket(1430, RefreshOutcome::Success, 4),
                bucket(1440, RefreshOutcome::Success, 4),
            ],
        );
        assert_eq!(chart.columns.len(), 2);
        assert_eq!(chart.peak_per_minute, "2.0");
        let first = &chart.columns[0];
        assert_eq!(first.per_minute, "2.0");
        assert_eq!(first.segments.len(), 2);
        assert_eq!(first.segments[0].outcome, RefreshOutcome::Success);
        assert_eq!(first.segments[1].outcome, RefreshOutcome::Failure);
        assert_eq!(first.segments[1].y, 0);
        assert_eq!(chart.columns[1].per_minute, "0.4");
        assert!(chart.columns.iter().all(|c| c.x + c.width <= WIDTH));
        assert_eq!(chart.totals[0], (RefreshOutcome::Failure, 5));
        assert_eq!(chart.totals[2], (RefreshOutcome::Success, 19));
    }

    #[test]
    fn percentile_lines_scale_to_the_slowest() {
        let hour = |h: i64, p50, p90, p99| LatencyHour {
            hour: at(h * 60),
            calls: 10,
            p50,
            p90,
            p99,
        };
        let chart = percentiles(
            at(0),
            &[hour(0, 50.0, 90.0, 200.0), hour(23, 40.0, 80.0, 100.4)],
        );
        assert_eq!(chart.max_ms, 200);
        assert_eq!(chart.points.len(), 2);
        assert_eq!(chart.p99, "15,4 705,62");
        assert_eq!(chart.points[0].y[2], 4);
        assert_eq!(chart.points[1].p99, 100);
    }
}
