//! The app page's refresh timeline and budget chart, as geometry for
//! inline SVG (drawn by `web/templates/app_charts.html`): one mark per
//! outcome and time bucket in its outcome's lane, the token's validity as
//! a band below (valid, under [`NEAR_EXPIRY`] left, expired), and WeChat
//! calls today per hour against the daily budget. Pure functions over a
//! use case's aggregates, each bounded: at most one mark per bucket and
//! outcome, at most one band piece per validity change read.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::pages::when;
use crate::db::history::{Bucket, Validity};
use crate::domain::{RefreshOutcome, Trigger};
use crate::service::apps::AppHistory;

/// The drawing's width in SVG units (it scales to the card's width).
const WIDTH: f64 = 720.0;
/// Room left and right of the axis, so a mark at either end shows whole.
const PAD: f64 = 8.0;
/// Its height: a readout line, four lanes, the band and the axis.
const HEIGHT: u32 = 150;
/// A token with less than this left is drawn as near its expiry.
pub const NEAR_EXPIRY: Duration = Duration::minutes(5);
/// The band's top and height.
const BAND_Y: u32 = 112;
const BAND_HEIGHT: u32 = 12;

/// The lanes, top to bottom.
const LANES: [RefreshOutcome; 4] = [
    RefreshOutcome::Success,
    RefreshOutcome::Unchanged,
    RefreshOutcome::Failure,
    RefreshOutcome::Skipped,
];

/// Attempts of one outcome in one bucket.
#[derive(Debug, Serialize, PartialEq)]
pub struct Mark {
    x: f64,
    y: u32,
    r: u32,
    /// Where the readout text is anchored (`start` or `end`).
    anchor: &'static str,
    outcome: RefreshOutcome,
    trigger: Trigger,
    errcode: Option<i32>,
    attempts: i64,
    from: String,
    to: String,
}

/// What a piece of the validity band says.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A token valid with more than [`NEAR_EXPIRY`] left.
    Valid,
    /// A valid token with less left.
    Near,
    /// The token had expired and no new one was stored.
    Expired,
}

/// One piece of the validity band.
#[derive(Debug, Serialize, PartialEq)]
pub struct Piece {
    x: f64,
    width: f64,
    kind: Kind,
    from: String,
    to: String,
}

/// A tick of the time axis.
#[derive(Debug, Serialize, PartialEq)]
pub struct Tick {
    x: f64,
    /// Hours (24-hour span) or days (7-day span) before now.
    ago: i64,
    anchor: &'static str,
}

/// The timeline of one window.
#[derive(Debug, Serialize)]
pub struct Timeline {
    width: f64,
    pad: f64,
    height: u32,
    span: &'static str,
    lanes: Vec<(u32, RefreshOutcome)>,
    band_y: u32,
    band_height: u32,
    marks: Vec<Mark>,
    band: Vec<Piece>,
    ticks: Vec<Tick>,
    attempts: i64,
    failures: i64,
    /// Times the token expired with no new one (band pieces of `expired`).
    gaps: usize,
    /// Times the token came within [`NEAR_EXPIRY`] of its expiry.
    near: usize,
    /// Share of the window with a valid token, in percent.
    valid_pct: i64,
    /// The newest failure's time and errcode.
    last_failure: Option<(String, Option<i32>)>,
}

/// Where `t` falls on the axis of `since..now` (to a tenth of a unit).
#[allow(clippy::cast_precision_loss)]
fn x_of(t: DateTime<Utc>, since: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    let total = (now - since).num_milliseconds().max(1) as f64;
    let at = (t - since).num_milliseconds() as f64;
    (((at / total).clamp(0.0, 1.0) * (WIDTH - 2.0 * PAD) + PAD) * 10.0).round() / 10.0
}

fn lane_y(outcome: RefreshOutcome) -> u32 {
    let i = LANES.iter().position(|o| *o == outcome).unwrap_or(0);
    30 + 22 * u32::try_from(i).unwrap_or(0)
}

/// One mark per bucket and outcome (the buckets as read: bounded).
fn marks(
    buckets: &[Bucket],
    stride: Duration,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<Mark> {
    buckets
        .iter()
        .map(|b| {
            let end = (b.start + stride).min(now);
            let x = x_of(b.start + (end - b.start) / 2, since, now);
            Mark {
                x,
                y: lane_y(b.outcome),
                r: match b.attempts {
                    1 => 4,
                    2..=4 => 5,
                    _ => 6,
                },
                anchor: if x < WIDTH / 2.0 { "start" } else { "end" },
                outcome: b.outcome,
                trigger: b.trigger,
                errcode: b.errcode,
                attempts: b.attempts,
                from: when(b.start.max(since)),
                to: when(end),
            }
        })
        .collect()
}

/// The validity band over `since..now` from the changes (oldest first; the
/// first may be before `since`): after each change, the token it left is
/// valid until its `valid_until` or the next change, near its expiry in
/// the last [`NEAR_EXPIRY`], and expired from then to the next change. A
/// change with no token leaves that stretch without a band.
#[must_use]
pub fn band(changes: &[Validity], since: DateTime<Utc>, now: DateTime<Utc>) -> Vec<Piece> {
    let mut raw: Vec<(DateTime<Utc>, DateTime<Utc>, Kind)> = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        let start = c.at.max(since);
        let end = changes.get(i + 1).map_or(now, |n| n.at).min(now);
        let Some(until) = c.valid_until else { continue };
        if end <= start {
            continue;
        }
        let near_from = (until - NEAR_EXPIRY).clamp(start, end);
        let expired_from = until.clamp(start, end);
        raw.push((start, near_from, Kind::Valid));
        raw.push((near_from, expired_from, Kind::Near));
        raw.push((expired_from, end, Kind::Expired));
    }
    // Adjacent stretches of one kind become one piece.
    let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>, Kind)> = Vec::new();
    for (from, to, kind) in raw.into_iter().filter(|(f, t, _)| t > f) {
        match merged.last_mut() {
            Some(last) if last.2 == kind && last.1 == from => last.1 = to,
            _ => merged.push((from, to, kind)),
        }
    }
    merged
        .into_iter()
        .map(|(from, to, kind)| {
            let x = x_of(from, since, now);
            Piece {
                x,
                width: (x_of(to, since, now) - x).max(0.5),
                kind,
                from: when(from),
                to: when(to),
            }
        })
        .collect()
}

fn ticks(history: &AppHistory) -> Vec<Tick> {
    let (count, unit) = match history.span {
        crate::service::apps::Span::Day => (24, Duration::hours(1)),
        crate::service::apps::Span::Week => (7, Duration::days(1)),
    };
    let step = if count == 24 { 6 } else { 1 };
    (0..=count)
        .rev()
        .step_by(step)
        .map(|ago| Tick {
            x: x_of(
                history.now - unit * i32::try_from(ago).unwrap_or(0),
                history.since,
                history.now,
            ),
            ago,
            anchor: match ago {
                0 => "end",
                a if a == count => "start",
                _ => "middle",
            },
        })
        .collect()
}

/// The timeline of `history`.
#[must_use]
pub fn timeline(history: &AppHistory) -> Timeline {
    let (since, now) = (history.since, history.now);
    let marks = marks(&history.buckets, history.span.stride(), since, now);
    let band = band(&history.validity, since, now);
    let total = (now - since).num_milliseconds().max(1);
    let valid_ms: i64 = band_ms(&history.validity, since, now);
    let newest_failure = history
        .buckets
        .iter()
        .rev()
        .find(|b| b.outcome == RefreshOutcome::Failure);
    Timeline {
        width: WIDTH,
        pad: PAD,
        height: HEIGHT,
        span: history.span.as_str(),
        lanes: LANES.iter().map(|o| (lane_y(*o), *o)).collect(),
        band_y: BAND_Y,
        band_height: BAND_HEIGHT,
        attempts: history.buckets.iter().map(|b| b.attempts).sum(),
        failures: history
            .buckets
            .iter()
            .filter(|b| b.outcome == RefreshOutcome::Failure)
            .map(|b| b.attempts)
            .sum(),
        gaps: band.iter().filter(|p| p.kind == Kind::Expired).count(),
        near: band.iter().filter(|p| p.kind == Kind::Near).count(),
        valid_pct: valid_ms * 100 / total,
        last_failure: newest_failure.map(|b| {
            let end = (b.start + history.span.stride()).min(now);
            (when(end), b.errcode)
        }),
        ticks: ticks(history),
        marks,
        band,
    }
}

/// Milliseconds of `since..now` with a valid token (valid or near).
fn band_ms(changes: &[Validity], since: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    changes
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let start = c.at.max(since);
            let end = changes.get(i + 1).map_or(now, |n| n.at).min(now);
            let until = c.valid_until?.min(end);
            (until > start).then(|| (until - start).num_milliseconds())
        })
        .sum()
}

/// One hour of today's WeChat calls.
#[derive(Debug, Serialize, PartialEq)]
pub struct HourBar {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    calls: i64,
    from: String,
}

/// WeChat calls today against the daily budget: a bar per hour of the
/// quota day (the refresh log's attempts that called WeChat) above a
/// meter of the day's count (the budget's own, which also counts
/// tickets and second tries with the secondary secret).
#[derive(Debug, Serialize)]
pub struct BudgetChart {
    width: u32,
    height: u32,
    hours: Vec<HourBar>,
    max_hour: i64,
    used: i64,
    daily: i64,
    reserve: i64,
    used_width: u32,
    reserve_x: u32,
    /// `ok`, `reserve` (into the scheduler's reserve) or `spent`.
    level: &'static str,
    percent: i64,
}

const BUDGET_WIDTH: u32 = 600;
const HOURS_HEIGHT: u32 = 60;

/// The budget chart of today's `calls_per_hour`, `used` calls of `daily`
/// with the last `reserve` kept for the scheduler.
#[must_use]
pub fn budget(history: &AppHistory, used: i64, daily: i64, reserve: i64) -> BudgetChart {
    let slot = BUDGET_WIDTH / 24;
    let max_hour = history
        .calls_per_hour
        .iter()
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0);
    let hours = history
        .calls_per_hour
        .iter()
        .filter_map(|(hour, calls)| {
            let i = u32::try_from((*hour - history.quota_day_start).num_hours()).ok()?;
            let height = u32::try_from(calls * i64::from(HOURS_HEIGHT) / max_hour.max(1))
                .unwrap_or(HOURS_HEIGHT)
                .max(2);
            (i < 24).then(|| HourBar {
                x: i * slot,
                y: HOURS_HEIGHT - height,
                width: slot - 2,
                height,
                calls: *calls,
                from: when(*hour),
            })
        })
        .collect();
    let daily = daily.max(1);
    let scale =
        |n: i64| u32::try_from(n.clamp(0, daily) * i64::from(BUDGET_WIDTH) / daily).unwrap_or(0);
    BudgetChart {
        width: BUDGET_WIDTH,
        height: HOURS_HEIGHT + 34,
        hours,
        max_hour,
        used,
        daily,
        reserve,
        used_width: scale(used),
        reserve_x: scale(daily - reserve),
        level: if used >= daily {
            "spent"
        } else if used >= daily - reserve {
            "reserve"
        } else {
            "ok"
        },
        percent: used * 100 / daily,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::apps::Span;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    fn change(minutes: i64, valid_for: Option<i64>) -> Validity {
        Validity {
            at: at(minutes),
            valid_until: valid_for.map(|v| at(minutes + v)),
        }
    }

    fn history(buckets: Vec<Bucket>, validity: Vec<Validity>) -> AppHistory {
        AppHistory {
            span: Span::Day,
            since: at(0),
            now: at(24 * 60),
            buckets,
            validity,
            quota_day_start: at(0),
            calls_per_hour: vec![(at(0), 4), (at(60), 2), (at(23 * 60), 1)],
        }
    }

    #[test]
    fn the_band_shows_validity_near_expiries_and_gaps() {
        // A token from before the window, refreshed 3 min before its
        // expiry; the next one expires 30 min before a failure-ridden
        // stretch ends with a new token; then a change with no token.
        let changes = [
            change(-100, Some(120 + 20)),
            change(37, Some(120)),
            change(187, Some(100)),
            change(300, None),
        ];
        let pieces = band(&changes, at(0), at(24 * 60));
        let kinds: Vec<Kind> = pieces.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Valid,
                Kind::Near,
                Kind::Valid,
                Kind::Near,
                Kind::Expired,
                Kind::Valid,
                Kind::Near,
                Kind::Expired
            ]
        );
        // The first piece starts at the window's edge; pieces never overlap.
        assert!((pieces[0].x - PAD).abs() < f64::EPSILON);
        for pair in pieces.windows(2) {
            assert!(pair[0].x + pair[0].width <= pair[1].x + 0.11);
        }
        assert!(pieces.iter().all(|p| p.x + p.width <= WIDTH - PAD + 0.11));
        assert_eq!(pieces[4].from, when(at(157)));
        assert_eq!(pieces[4].to, when(at(187)));
        // 157 + 100 min valid out of the day (the rest is a gap or no token).
        let ms = band_ms(&changes, at(0), at(24 * 60));
        assert_eq!(ms, Duration::minutes(157 + 100).num_milliseconds());
    }

    #[test]
    fn marks_sit_in_their_lane_and_the_summary_counts() {
        let bucket = |minutes: i64, outcome, attempts, errcode| Bucket {
            start: at(minutes),
            outcome,
            attempts,
            trigger: Trigger::Schedule,
            errcode,
        };
        let h = history(
            vec![
                bucket(0, RefreshOutcome::Success, 1, None),
                bucket(600, RefreshOutcome::Failure, 7, Some(40001)),
                bucket(1435, RefreshOutcome::Failure, 2, Some(-1)),
            ],
            vec![change(0, Some(120))],
        );
        let t = timeline(&h);
        assert_eq!((t.attempts, t.failures), (10, 9));
        assert_eq!(t.marks.len(), 3);
        assert!(t.marks[0].y < t.marks[1].y);
        assert_eq!(t.marks[1].r, 6);
        assert_eq!((t.marks[0].anchor, t.marks[2].anchor), ("start", "end"));
        assert!(t.marks.iter().all(|m| m.x + f64::from(m.r) <= WIDTH));
        assert_eq!(t.last_failure, Some((when(at(24 * 60)), Some(-1))));
        assert_eq!(t.valid_pct, 120 * 100 / (24 * 60));
        assert_eq!((t.gaps, t.near), (1, 1));
        assert_eq!(t.ticks.len(), 5);
        assert_eq!((t.ticks[0].ago, t.ticks[4].ago), (24, 0));
    }

    #[test]
    fn the_budget_meter_and_hours() {
        let h = history(vec![], vec![]);
        let b = budget(&h, 190, 200, 20);
        assert_eq!(b.level, "reserve");
        assert_eq!((b.used_width, b.reserve_x, b.percent), (570, 540, 95));
        assert_eq!(b.hours.len(), 3);
        assert_eq!((b.hours[0].height, b.hours[1].height), (60, 30));
        assert_eq!(b.hours[2].x, 23 * 25);
        assert_eq!(budget(&h, 999, 200, 20).used_width, BUDGET_WIDTH);
        assert_eq!(budget(&h, 999, 200, 20).level, "spent");
        assert_eq!(budget(&h, 10, 200, 20).level, "ok");
    }
}
