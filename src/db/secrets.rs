//! Queries over stored ciphertexts: key check values, which master key
//! protects how many rows, and the batches of key rotation.
//!
//! A ciphertext starts with `[version][key id length][key id]` (see
//! [`crate::crypto`]), so the key id is read and matched in SQL without
//! decrypting anything. Every statement is checked at compile time
//! (`sqlx::query!`) except [`key_usage`], which is assembled from one
//! key-id expression per encrypted column.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::crypto::FORMAT_VERSION;
use crate::domain::{AlertChannelId, AppUuid, TenantId};

/// The label `key_usage` gives to ciphertexts whose header cannot be read
/// (not a valid key id, so it never clashes with one).
pub const UNREADABLE: &str = "(unreadable)";

/// How many stored ciphertexts one master key id protects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// The key id, or [`UNREADABLE`].
    pub key_id: String,
    /// `apps.secret_ciphertext` values.
    pub app_secrets: i64,
    /// `apps.secondary_secret_ciphertext` values.
    pub secondary_secrets: i64,
    /// `token_state.access_token_ciphertext` values.
    pub tokens: i64,
    /// `alert_channels.secret_ciphertext` and `url_ciphertext` values.
    pub alert_secrets: i64,
    /// `app_tickets.ticket_ciphertext` values.
    pub tickets: i64,
    /// `mail_outbox.body_ciphertext` values (queued mails).
    pub mails: i64,
    /// `user_totp.secret_ciphertext` values (two-factor secrets).
    pub totp_secrets: i64,
}

impl KeyUsage {
    /// All rows under this key.
    pub fn total(&self) -> i64 {
        self.app_secrets
            + self.secondary_secrets
            + self.tokens
            + self.alert_secrets
            + self.tickets
            + self.mails
            + self.totp_secrets
    }
}

/// SQL for the key id of bytea column `c`. Separate `when`s because
/// PostgreSQL evaluates them in order but does not short-circuit `or`.
fn key_id_sql(c: &str) -> String {
    format!(
        "case when length({c}) < 2 then '{UNREADABLE}' \
              when get_byte({c}, 0) <> {FORMAT_VERSION} then '{UNREADABLE}' \
              when length({c}) < 2 + get_byte({c}, 1) then '{UNREADABLE}' \
              else encode(substring({c} from 3 for get_byte({c}, 1)), 'escape') end"
    )
}

/// The header every ciphertext under `key_id` starts with.
pub fn header(key_id: &str) -> Vec<u8> {
    let mut prefix = vec![
        FORMAT_VERSION,
        u8::try_from(key_id.len()).unwrap_or(u8::MAX),
    ];
    prefix.extend_from_slice(key_id.as_bytes());
    prefix
}

/// A row of [`key_usage`]'s statement: the key id and a count per column.
type UsageRow = (String, i64, i64, i64, i64, i64, i64, i64);

/// Rows per key id, over every encrypted column, in key id order.
pub async fn key_usage(pool: &PgPool) -> Result<Vec<KeyUsage>, sqlx::Error> {
    let sql = format!(
        "select key_id,
                count(*) filter (where field = 'secret'),
                count(*) filter (where field = 'secondary'),
                count(*) filter (where field = 'token'),
                count(*) filter (where field = 'alert'),
                count(*) filter (where field = 'ticket'),
                count(*) filter (where field = 'mail'),
                count(*) filter (where field = 'totp')
         from (
             select {apps} as key_id, 'secret' as field from apps
             union all
             select {secondary}, 'secondary' from apps where secondary_secret_ciphertext is not null
             union all
             select {tokens}, 'token' from token_state where access_token_ciphertext is not null
             union all
             select {alerts}, 'alert' from alert_channels where secret_ciphertext is not null
             union all
             select {alert_urls}, 'alert' from alert_channels
             union all
             select {tickets}, 'ticket' from app_tickets where ticket_ciphertext is not null
             union all
             select {mails}, 'mail' from mail_outbox where body_ciphertext is not null
             union all
             select {totp}, 'totp' from user_totp
         ) ids
         group by key_id
         order by key_id",
        apps = key_id_sql("secret_ciphertext"),
        secondary = key_id_sql("secondary_secret_ciphertext"),
        tokens = key_id_sql("access_token_ciphertext"),
        alerts = key_id_sql("secret_ciphertext"),
        alert_urls = key_id_sql("url_ciphertext"),
        tickets = key_id_sql("ticket_ciphertext"),
        mails = key_id_sql("body_ciphertext"),
        totp = key_id_sql("secret_ciphertext"),
    );
    let rows: Vec<UsageRow> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .map(
            |(
                key_id,
                app_secrets,
                secondary_secrets,
                tokens,
                alert_secrets,
                tickets,
                mails,
                totp_secrets,
            )| {
                KeyUsage {
                    key_id,
                    app_secrets,
                    secondary_secrets,
                    tokens,
                    alert_secrets,
                    tickets,
                    mails,
                    totp_secrets,
                }
            },
        )
        .collect())
}

/// Every key check value: `(key id, ciphertext)`.
pub async fn key_checks(pool: &PgPool) -> Result<Vec<(String, Vec<u8>)>, sqlx::Error> {
    let rows = sqlx::query!("select key_id, ciphertext from key_checks order by key_id")
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|r| (r.key_id, r.ciphertext)).collect())
}

/// Store the check value of `key_id` unless one exists (another replica may
/// have stored it first; the caller verifies what is stored).
pub async fn insert_key_check(
    pool: &PgPool,
    key_id: &str,
    ciphertext: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into key_checks (key_id, ciphertext) values ($1, $2) on conflict (key_id) do nothing",
        key_id,
        ciphertext,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Forget the check value of a key that protects no row any more.
pub async fn delete_key_check(pool: &PgPool, key_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("delete from key_checks where key_id = $1", key_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Rows that hold a ciphertext not under `key_id`: `(apps, token_state,
/// mail_outbox)`.
pub async fn count_not_under(pool: &PgPool, key_id: &str) -> Result<(i64, i64, i64), sqlx::Error> {
    let counts = sqlx::query!(
        r#"select
            (select count(*) from apps
              where substring(secret_ciphertext from 1 for length($1::bytea)) <> $1::bytea
                 or substring(secondary_secret_ciphertext from 1 for length($1::bytea)) <> $1::bytea) as "apps!",
            (select count(*) from token_state
              where substring(access_token_ciphertext from 1 for length($1::bytea)) <> $1::bytea) as "tokens!",
            (select count(*) from mail_outbox
              where substring(body_ciphertext from 1 for length($1::bytea)) <> $1::bytea) as "mails!""#,
        header(key_id),
    )
    .fetch_one(pool)
    .await?;
    Ok((counts.apps, counts.tokens, counts.mails))
}

/// The encrypted columns of one app.
#[derive(Debug, Clone)]
pub struct AppCiphertexts {
    /// `apps.id`.
    pub id: AppUuid,
    /// `apps.tenant_id`.
    pub tenant_id: TenantId,
    /// `apps.secret_ciphertext`.
    pub secret: Vec<u8>,
    /// `apps.secondary_secret_ciphertext`.
    pub secondary: Option<Vec<u8>>,
}

/// The encrypted column of one token row.
#[derive(Debug, Clone)]
pub struct TokenCiphertext {
    /// `token_state.app_id`.
    pub app_id: AppUuid,
    /// `token_state.tenant_id`.
    pub tenant_id: TenantId,
    /// `token_state.access_token_ciphertext`.
    pub token: Vec<u8>,
}

/// Lock and return up to `limit` apps after `after` (in id order) holding a
/// ciphertext not under `key_id`, skipping `exclude` and rows locked by
/// others (they are retried later: rotation never waits on the service).
pub async fn lock_apps_not_under(
    conn: &mut PgConnection,
    key_id: &str,
    after: Uuid,
    exclude: &[Uuid],
    limit: i64,
) -> Result<Vec<AppCiphertexts>, sqlx::Error> {
    sqlx::query_as!(
        AppCiphertexts,
        r#"select id as "id: AppUuid", tenant_id as "tenant_id: TenantId",
                secret_ciphertext as secret, secondary_secret_ciphertext as secondary
           from apps
          where id > $2 and id <> all($3)
            and (substring(secret_ciphertext from 1 for length($1::bytea)) <> $1::bytea
                 or substring(secondary_secret_ciphertext from 1 for length($1::bytea)) <> $1::bytea)
          order by id
          limit $4
          for update skip locked"#,
        header(key_id),
        after,
        exclude,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Replace an app's ciphertexts (`None` keeps a column as it is).
pub async fn update_app_ciphertexts(
    conn: &mut PgConnection,
    id: AppUuid,
    secret: Option<&[u8]>,
    secondary: Option<&[u8]>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update apps set secret_ciphertext = coalesce($2, secret_ciphertext),
                         secondary_secret_ciphertext = coalesce($3, secondary_secret_ciphertext)
          where id = $1",
        id.uuid(),
        secret,
        secondary,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Like [`lock_apps_not_under`], for `token_state`.
pub async fn lock_tokens_not_under(
    conn: &mut PgConnection,
    key_id: &str,
    after: Uuid,
    exclude: &[Uuid],
    limit: i64,
) -> Result<Vec<TokenCiphertext>, sqlx::Error> {
    sqlx::query_as!(
        TokenCiphertext,
        r#"select app_id as "app_id: AppUuid", tenant_id as "tenant_id: TenantId",
                access_token_ciphertext as "token!"
           from token_state
          where app_id > $2 and app_id <> all($3)
            and substring(access_token_ciphertext from 1 for length($1::bytea)) <> $1::bytea
          order by app_id
          limit $4
          for update skip locked"#,
        header(key_id),
        after,
        exclude,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Replace a token's ciphertext; the token itself, its fingerprint and its
/// `version` are unchanged.
pub async fn update_token_ciphertext(
    conn: &mut PgConnection,
    app_id: AppUuid,
    ciphertext: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update token_state set access_token_ciphertext = $2 where app_id = $1",
        app_id.uuid(),
        ciphertext,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The encrypted columns of one alert channel.
#[derive(Debug, Clone)]
pub struct AlertCiphertexts {
    /// `alert_channels.id`.
    pub id: AlertChannelId,
    /// `alert_channels.tenant_id`.
    pub tenant_id: TenantId,
    /// `alert_channels.url_ciphertext`.
    pub url: Vec<u8>,
    /// `alert_channels.secret_ciphertext`.
    pub secret: Option<Vec<u8>>,
}

/// Alert channels holding a ciphertext not under `key_id`.
pub async fn count_alert_secrets_not_under(
    pool: &PgPool,
    key_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "n!" from alert_channels
            where substring(url_ciphertext from 1 for length($1::bytea)) <> $1::bytea
               or substring(secret_ciphertext from 1 for length($1::bytea)) <> $1::bytea"#,
        header(key_id),
    )
    .fetch_one(pool)
    .await
}

/// Like [`lock_apps_not_under`], for the alert channels' URLs and signing secrets.
pub async fn lock_alert_secrets_not_under(
    conn: &mut PgConnection,
    key_id: &str,
    after: Uuid,
    exclude: &[Uuid],
    limit: i64,
) -> Result<Vec<AlertCiphertexts>, sqlx::Error> {
    sqlx::query_as!(
        AlertCiphertexts,
        r#"select id as "id: AlertChannelId", tenant_id as "tenant_id: TenantId",
                url_ciphertext as url, secret_ciphertext as secret
           from alert_channels
          where id > $2 and id <> all($3)
            and (substring(url_ciphertext from 1 for length($1::bytea)) <> $1::bytea
                 or substring(secret_ciphertext from 1 for length($1::bytea)) <> $1::bytea)
          order by id
          limit $4
          for update skip locked"#,
        header(key_id),
        after,
        exclude,
        limit,
    )
    .fetch_all(conn)
    .await
}

/// Replace an alert channel's ciphertexts (`None` keeps a column as it is).
pub async fn update_alert_ciphertexts(
    conn: &mut PgConnection,
    id: AlertChannelId,
    url: Option<&[u8]>,
    secret: Option<&[u8]>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update alert_channels set url_ciphertext = coalesce($2, url_ciphertext),
                                  secret_ciphertext = coalesce($3, secret_ciphertext)
          where id = $1",
        id.uuid(),
        url,
        secret,
    )
    .execute(conn)
    .await?;
    Ok(())
}
