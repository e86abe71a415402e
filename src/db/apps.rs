//! Registered apps (mini-programs, official accounts, WeCom apps) and their health (`apps` joined with `token_state`).
//!
//! Every query is checked at compile time (`sqlx::query!` and friends, with
//! the offline data in `.sqlx/`). Typed values are bound with `value as Type`,
//! sqlx's type ascription: the value is encoded by its own `sqlx::Type`.

use crate::domain::{AccountType, AppUuid, ErrorClass, Health, TenantId, TokenMode};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

/// An app with the state of its token (never the secret or the token).
#[derive(Debug, Clone)]
pub struct AppRow {
    /// Internal id.
    pub id: AppUuid,
    /// Tenant.
    pub tenant_id: TenantId,
    /// WeChat AppID.
    pub appid: String,
    /// Display name.
    pub name: String,
    /// Which WeChat endpoint keeps the token.
    pub token_mode: TokenMode,
    /// Mini-program or official account (`None` for a WeCom app).
    pub account_type: Option<AccountType>,
    /// Refreshing switched on?
    pub enabled: bool,
    /// A secondary secret is set.
    pub has_secondary_secret: bool,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Last edited.
    pub updated_at: DateTime<Utc>,
    /// Current token's fetch time.
    pub fetched_at: Option<DateTime<Utc>>,
    /// Current token's expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Next planned refresh (year 9999 while disabled).
    pub next_refresh_at: DateTime<Utc>,
    /// Failures in a row.
    pub failure_streak: i32,
    /// Last attempt.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// Last success.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Class of the last failure.
    pub last_error_class: Option<ErrorClass>,
    /// WeChat errcode of the last failure.
    pub last_errcode: Option<i32>,
    /// Message of the last failure.
    pub last_errmsg: Option<String>,
    /// Failed attempts in the last 24 hours.
    pub failures_24h: i64,
    /// Calls to WeChat today (WeChat's quota day).
    pub upstream_calls_today: i64,
    /// Stable force refreshes today.
    pub force_refreshes_today: i64,
}

impl AppRow {
    /// The token's expiry, if it is still valid at `now`.
    pub fn valid_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expires_at.filter(|e| *e > now)
    }

    /// The app's health at `now` (the rule: [`Health::derive`]).
    pub fn health(&self, now: DateTime<Utc>) -> Health {
        Health::derive(
            self.enabled,
            self.valid_until(now).is_some(),
            self.failure_streak,
            self.last_error_class,
        )
    }
}

// `get` and `list` select the same columns: `query_as!` takes one string
// literal, so the list is written out in both. Today's upstream budget
// joins in when its row is of WeChat's quota day (the date in Beijing, UTC+8).

/// What a new app stores.
#[derive(Debug)]
pub struct NewApp<'a> {
    /// Internal id (also part of the ciphertexts' binding).
    pub id: AppUuid,
    /// Tenant.
    pub tenant_id: TenantId,
    /// WeChat AppID.
    pub appid: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Which WeChat endpoint keeps the token.
    pub token_mode: TokenMode,
    /// Mini-program or official account (`None` for a WeCom app).
    pub account_type: Option<AccountType>,
    /// Encrypted primary secret.
    pub secret_ciphertext: &'a [u8],
    /// Encrypted secondary secret.
    pub secondary_secret_ciphertext: Option<&'a [u8]>,
    /// When the scheduler should first fetch (later than now when the
    /// registration itself fetches, so the two do not race).
    pub first_refresh_at: DateTime<Utc>,
}

/// Whether `e` is the unique violation of (tenant, appid).
pub fn is_duplicate_appid(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.constraint() == Some("apps_appid_per_tenant"))
}

/// Insert an app and its token row.
pub async fn insert(conn: &mut PgConnection, app: &NewApp<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into apps (id, tenant_id, appid, name, token_mode, secret_ciphertext, secondary_secret_ciphertext, account_type)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
        app.id as AppUuid,
        app.tenant_id as TenantId,
        app.appid,
        app.name,
        app.token_mode as TokenMode,
        app.secret_ciphertext,
        app.secondary_secret_ciphertext,
        app.account_type as Option<AccountType>,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "insert into token_state (app_id, tenant_id, next_refresh_at) values ($1, $2, $3)",
        app.id as AppUuid,
        app.tenant_id as TenantId,
        app.first_refresh_at,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// One app of a tenant by AppID.
pub async fn get(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    appid: &str,
) -> Result<Option<AppRow>, sqlx::Error> {
    sqlx::query_as!(
        AppRow,
        r#"select a.id as "id: AppUuid", a.tenant_id as "tenant_id: TenantId", a.appid, a.name,
                  a.token_mode as "token_mode: TokenMode",
                  a.account_type as "account_type: AccountType", a.enabled,
                  a.secondary_secret_ciphertext is not null as "has_secondary_secret!",
                  a.created_at, a.updated_at, s.fetched_at, s.expires_at, s.next_refresh_at,
                  s.failure_streak, s.last_attempt_at, s.last_success_at,
                  s.last_error_class as "last_error_class: ErrorClass", s.last_errcode, s.last_errmsg,
                  (select count(*) from refresh_log l where l.app_id = a.id and l.outcome = 'failure'
                      and l.created_at > now() - interval '24 hours') as "failures_24h!",
                  coalesce(b.calls, 0)::bigint as "upstream_calls_today!",
                  coalesce(b.forced, 0)::bigint as "force_refreshes_today!"
             from apps a join token_state s on s.app_id = a.id
             left join upstream_budget b on b.tenant_id = a.tenant_id and b.appid = a.appid
                  and b.day >= ((now() at time zone 'UTC') + interval '8 hours')::date
            where a.tenant_id = $1 and a.appid = $2"#,
        tenant_id as TenantId,
        appid,
    )
    .fetch_optional(db)
    .await
}

/// A page of a tenant's apps in AppID order, after `after`, optionally only
/// the apps in `only` (a key limited to some apps).
pub async fn list(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    only: Option<&[AppUuid]>,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<AppRow>, sqlx::Error> {
    sqlx::query_as!(
        AppRow,
        r#"select a.id as "id: AppUuid", a.tenant_id as "tenant_id: TenantId", a.appid, a.name,
                  a.token_mode as "token_mode: TokenMode",
                  a.account_type as "account_type: AccountType", a.enabled,
                  a.secondary_secret_ciphertext is not null as "has_secondary_secret!",
                  a.created_at, a.updated_at, s.fetched_at, s.expires_at, s.next_refresh_at,
                  s.failure_streak, s.last_attempt_at, s.last_success_at,
                  s.last_error_class as "last_error_class: ErrorClass", s.last_errcode, s.last_errmsg,
                  (select count(*) from refresh_log l where l.app_id = a.id and l.outcome = 'failure'
                      and l.created_at > now() - interval '24 hours') as "failures_24h!",
                  coalesce(b.calls, 0)::bigint as "upstream_calls_today!",
                  coalesce(b.forced, 0)::bigint as "force_refreshes_today!"
             from apps a join token_state s on s.app_id = a.id
             left join upstream_budget b on b.tenant_id = a.tenant_id and b.appid = a.appid
                  and b.day >= ((now() at time zone 'UTC') + interval '8 hours')::date
            where a.tenant_id = $1 and ($2::uuid[] is null or a.id = any($2))
              and ($3::text is null or a.appid > $3)
            order by a.appid limit $4"#,
        tenant_id as TenantId,
        only as Option<&[AppUuid]>,
        after,
        limit,
    )
    .fetch_all(db)
    .await
}

/// The internal id of `appid` in `tenant_id`.
pub async fn id_of(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    appid: &str,
) -> Result<Option<AppUuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select id as "id: AppUuid" from apps where tenant_id = $1 and appid = $2"#,
        tenant_id as TenantId,
        appid,
    )
    .fetch_optional(db)
    .await
}

/// The AppID of the app `id` in `tenant_id`.
pub async fn appid_of(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    id: AppUuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select appid from apps where tenant_id = $1 and id = $2",
        tenant_id as TenantId,
        id as AppUuid,
    )
    .fetch_optional(db)
    .await
}

/// The encrypted primary secret of an app.
pub async fn secret_ciphertext(
    db: impl PgExecutor<'_>,
    app_id: AppUuid,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar!(
        "select secret_ciphertext from apps where id = $1",
        app_id as AppUuid,
    )
    .fetch_optional(db)
    .await
}

/// Lock an app row for an edit; whether it is there.
pub async fn lock(
    conn: &mut PgConnection,
    tenant_id: TenantId,
    appid: &str,
) -> Result<bool, sqlx::Error> {
    let locked = sqlx::query_scalar!(
        r#"select id as "id: AppUuid" from apps where tenant_id = $1 and appid = $2 for update"#,
        tenant_id as TenantId,
        appid,
    )
    .fetch_optional(conn)
    .await?;
    Ok(locked.is_some())
}

/// An edit; `None` fields stay as they are.
#[derive(Debug, Default)]
pub struct AppEdit<'a> {
    /// New name.
    pub name: Option<&'a str>,
    /// New mode.
    pub token_mode: Option<TokenMode>,
    /// New label (mini-program or official account).
    pub account_type: Option<AccountType>,
    /// New primary secret.
    pub secret_ciphertext: Option<&'a [u8]>,
    /// New secondary secret: `Some(None)` clears it.
    pub secondary_secret_ciphertext: Option<Option<&'a [u8]>>,
    /// Switch refreshing on or off.
    pub enabled: Option<bool>,
}

/// Apply an edit; when credentials, mode or switch change, the token row is
/// made due at once (or parked while disabled).
pub async fn update(
    conn: &mut PgConnection,
    app_id: AppUuid,
    edit: &AppEdit<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update apps set
            name = coalesce($2, name),
            token_mode = coalesce($3, token_mode),
            secret_ciphertext = coalesce($4, secret_ciphertext),
            secondary_secret_ciphertext = case when $5 then $6 else secondary_secret_ciphertext end,
            enabled = coalesce($7, enabled),
            account_type = coalesce($8, account_type)
          where id = $1",
        app_id as AppUuid,
        edit.name,
        edit.token_mode as Option<TokenMode>,
        edit.secret_ciphertext,
        edit.secondary_secret_ciphertext.is_some(),
        edit.secondary_secret_ciphertext.flatten(),
        edit.enabled,
        edit.account_type as Option<AccountType>,
    )
    .execute(&mut *conn)
    .await?;
    let credentials_changed = edit.token_mode.is_some()
        || edit.secret_ciphertext.is_some()
        || edit.secondary_secret_ciphertext.is_some();
    match edit.enabled {
        Some(false) => {
            sqlx::query!(
                "update token_state set next_refresh_at = '9999-01-01 00:00:00+00' where app_id = $1",
                app_id as AppUuid,
            )
            .execute(conn)
            .await?;
        }
        Some(true) => {
            sqlx::query!(
                "update token_state set next_refresh_at = now(), failure_streak = 0 where app_id = $1",
                app_id as AppUuid,
            )
            .execute(conn)
            .await?;
        }
        None if credentials_changed => {
            // New credentials deserve a fresh attempt; a still-valid token is kept.
            sqlx::query!(
                "update token_state set next_refresh_at = least(next_refresh_at, now()) where app_id = $1
                   and next_refresh_at < '9999-01-01 00:00:00+00'",
                app_id as AppUuid,
            )
            .execute(conn)
            .await?;
        }
        None => {}
    }
    Ok(())
}

/// Delete an app (its token and log go with it).
pub async fn delete(
    db: impl PgExecutor<'_>,
    tenant_id: TenantId,
    appid: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "delete from apps where tenant_id = $1 and appid = $2",
        tenant_id as TenantId,
        appid,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
