//! Hourly budgets: providers that limit calls by the hour rather than by
//! the day. WeCom's JS-SDK ticket APIs allow at most
//! [`WECOM_TICKETS_PER_COMPANY`] fetches an hour per company and
//! [`WECOM_TICKETS_PER_APP`] per app, for each of its two ticket APIs
//! (`docs/WECHAT.md`, "WeCom"). The gate counts every WeCom ticket call in
//! both rows (`hourly_budget`, locked in the ticket's transaction, the
//! company's before the app's) and refuses the call, with
//! [`RefusalReason::HourlyLimit`], before WeCom would answer 45009.

use std::time::Duration;

use chrono::{DateTime, DurationRound as _, Utc};
use sqlx::PgConnection;

use super::engine::{EngineError, RefreshEngine};
use super::gate::RefusalReason;
use super::kind::TicketKind;
use super::tickets::TicketOwner;
use super::token::{Cause, Unavailable};
use crate::db;
use crate::domain::{AppId, AppKind};

/// WeCom's hourly limit of one ticket API per company.
pub const WECOM_TICKETS_PER_COMPANY: i32 = 400;
/// WeCom's hourly limit of one ticket API per app.
pub const WECOM_TICKETS_PER_APP: i32 = 100;

/// The clock hour `now` is in.
pub fn hour_of(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(chrono::Duration::hours(1))
        .unwrap_or(now)
}

/// The start of the next clock hour.
pub fn next_hour(now: DateTime<Utc>) -> DateTime<Utc> {
    hour_of(now) + chrono::Duration::hours(1)
}

/// The hourly budgets a ticket call of `kind` for the app `appid` counts
/// in, each with its limit: none for WeChat's tickets; the company's and
/// the app's for WeCom's, per ticket API.
pub fn scopes(kind: TicketKind, appid: &str) -> Vec<(String, i32)> {
    if kind.1 != AppKind::Wecom {
        return Vec::new();
    }
    let Ok(id) = AppId::parse("appid", appid) else {
        return Vec::new();
    };
    let corpid = id.corpid().unwrap_or_default();
    let api = kind.0.as_str();
    vec![
        (format!("wecom:{corpid}:{api}"), WECOM_TICKETS_PER_COMPANY),
        (format!("app:{appid}:{api}"), WECOM_TICKETS_PER_APP),
    ]
}

impl RefreshEngine {
    /// With the ticket's row locked: count one call in each hourly budget
    /// of `kind`, or refuse (counting nothing) when one is spent this hour.
    pub(super) async fn spend_hourly(
        &self,
        tx: &mut PgConnection,
        owner: TicketOwner<'_>,
        kind: TicketKind,
    ) -> Result<Result<(), Unavailable>, EngineError> {
        let now = Utc::now();
        let hour = hour_of(now);
        let mut counted = Vec::new();
        for (scope, limit) in scopes(kind, owner.appid) {
            let calls = db::budget::lock_hourly(&mut *tx, &scope, hour).await?;
            if calls >= limit {
                self.metrics.count_refusal(RefusalReason::HourlyLimit);
                let wait = (next_hour(now) - now)
                    .to_std()
                    .unwrap_or(Duration::from_secs(60));
                return Ok(Err(Unavailable {
                    cause: Cause::Refused(RefusalReason::HourlyLimit),
                    failure: None,
                    retry_after: wait.max(Duration::from_secs(1)),
                    reason: RefusalReason::HourlyLimit.explain().into(),
                }));
            }
            counted.push((scope, calls + 1));
        }
        for (scope, calls) in counted {
            db::budget::store_hourly(&mut *tx, &scope, hour, calls).await?;
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;
    use crate::domain::TicketType;

    #[test]
    fn wecom_tickets_count_per_company_and_app_wechat_tickets_not_at_all() {
        let kind = TicketKind(TicketType::AgentConfig, AppKind::Wecom);
        let scopes = scopes(kind, "ww0123456789abcdef-1000002");
        assert_eq!(
            scopes,
            [
                ("wecom:ww0123456789abcdef:agent_config".to_string(), 400),
                (
                    "app:ww0123456789abcdef-1000002:agent_config".to_string(),
                    100
                ),
            ]
        );
        let wechat = TicketKind(TicketType::Jsapi, AppKind::Wechat);
        assert!(super::scopes(wechat, "wx0123456789abcdef").is_empty());
    }

    #[test]
    fn hours_are_clock_hours() {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 10, 59, 59).unwrap();
        assert_eq!(
            hour_of(t),
            Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
        );
        assert_eq!(
            next_hour(t),
            Utc.with_ymd_and_hms(2026, 12, 1, 11, 0, 0).unwrap()
        );
    }
}
