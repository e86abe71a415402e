//! Key rotation: every ciphertext not under the active key re-encrypted
//! under it, table by table, in batches of locked rows, while the service
//! keeps running. A new encrypted column joins [`Table`] (its batch, its
//! count of rows left) and nothing else.

use std::ops::ControlFlow;
use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::alert_secrets;
use super::totp_secrets;
use super::{RotationProgress, RotationReport, RowFailure};
use crate::crypto::{self, Binding, CryptoError, KeyRing};
use crate::db::{secrets, tickets, totp};

/// The tables holding ciphertexts, in the order a rotation takes them.
#[derive(Clone, Copy)]
enum Table {
    Apps,
    Tokens,
    Tickets,
    Mails,
    AlertChannels,
    TwoFactor,
}

impl Table {
    const ALL: [Self; 6] = [
        Self::Apps,
        Self::Tokens,
        Self::Tickets,
        Self::Mails,
        Self::AlertChannels,
        Self::TwoFactor,
    ];

    /// What its rows are, for messages.
    fn rows(self) -> &'static str {
        match self {
            Self::Apps => "apps",
            Self::Tokens => "tokens",
            Self::Tickets => "tickets",
            Self::Mails => "queued mails",
            Self::AlertChannels => "alert channels",
            Self::TwoFactor => "two-factor secrets",
        }
    }
}

/// Give up on rows other transactions keep locked after this many passes.
const MAX_PASSES: u32 = 100;

/// Re-encrypt every stored ciphertext that is not under the active key, in
/// transactions of `batch_size` rows. Rows locked by the running service are
/// skipped and retried; rows that do not decrypt are reported and left as
/// they are. `progress` is called after each batch; `Break` stops there
/// (everything done so far is committed, and a rerun continues).
pub async fn rotate(
    pool: &PgPool,
    ring: &KeyRing,
    batch_size: u32,
    mut progress: impl FnMut(&RotationProgress) -> ControlFlow<()>,
) -> anyhow::Result<RotationReport> {
    let active = ring.active_id();
    let mut state = RotationProgress {
        done: 0,
        total: 0,
        apps: 0,
        tokens: 0,
        tickets: 0,
        mails: 0,
        failed: 0,
    };
    for table in Table::ALL {
        state.total += u64::try_from(left_in(pool, active, table).await?).unwrap_or(0);
    }
    let mut report = RotationReport::default();
    let limit = i64::from(batch_size);
    for table in Table::ALL {
        if !rotate_table(
            pool,
            ring,
            table,
            limit,
            (&mut state, &mut report),
            &mut progress,
        )
        .await?
        {
            report.interrupted = true;
            return Ok(report);
        }
    }
    if report.failures.is_empty() {
        report.released = release_unused_checks(pool, active).await?;
    }
    Ok(report)
}

/// Every row of `table` not under the active key, `limit` per transaction,
/// counted into the rotation's progress and report; rows locked by the
/// service are retried in later passes. Whether it finished (`false`:
/// `progress` said stop).
async fn rotate_table(
    pool: &PgPool,
    ring: &KeyRing,
    table: Table,
    limit: i64,
    (state, report): (&mut RotationProgress, &mut RotationReport),
    progress: &mut impl FnMut(&RotationProgress) -> ControlFlow<()>,
) -> anyhow::Result<bool> {
    let active = ring.active_id();
    let mut failed_ids: Vec<Uuid> = Vec::new();
    for pass in 1..=MAX_PASSES {
        let mut cursor = Uuid::nil();
        loop {
            let mut tx = pool.begin().await?;
            let (rows, last, failures) =
                rotate_batch(&mut tx, table, ring, cursor, &failed_ids, limit).await?;
            tx.commit().await?;
            let Some(last) = last else { break };
            cursor = last;
            let rotated = rows - failures.len() as u64;
            failed_ids.extend(failures.iter().map(|f| f.id));
            state.failed += failures.len() as u64;
            report.failures.extend(failures);
            state.done += rotated;
            match table {
                Table::Apps => state.apps += rotated,
                Table::Tokens => state.tokens += rotated,
                Table::Tickets => state.tickets += rotated,
                Table::Mails => state.mails += rotated,
                Table::AlertChannels | Table::TwoFactor => {}
            }
            state.total = state.total.max(state.done + state.failed);
            report.progress = Some(*state);
            if progress(state).is_break() {
                return Ok(false);
            }
        }
        let left = left_in(pool, active, table).await?;
        // Failed rows stay under their old key; anything else was locked.
        let locked = u64::try_from(left)
            .unwrap_or(0)
            .saturating_sub(failed_ids.len() as u64);
        if locked == 0 {
            return Ok(true);
        }
        if pass == MAX_PASSES {
            anyhow::bail!(
                "{locked} {} stayed locked by other transactions; run `tokenvault keys rotate` \
                 again to finish (everything else is rotated)",
                table.rows()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(true)
}

/// Forget the check values of keys other than `active` that protect no
/// row any more; their ids.
async fn release_unused_checks(pool: &PgPool, active: &str) -> Result<Vec<String>, sqlx::Error> {
    let usage = secrets::key_usage(pool).await?;
    let mut released = Vec::new();
    for (key_id, _) in secrets::key_checks(pool).await? {
        let used = usage.iter().any(|u| u.key_id == key_id && u.total() > 0);
        if key_id != active && !used {
            secrets::delete_key_check(pool, &key_id).await?;
            released.push(key_id);
        }
    }
    Ok(released)
}

pub(super) type BatchOutcome = (u64, Option<Uuid>, Vec<RowFailure>);

/// One batch of `table`'s rows after `after`.
async fn rotate_batch(
    conn: &mut sqlx::PgConnection,
    table: Table,
    ring: &KeyRing,
    after: Uuid,
    exclude: &[Uuid],
    limit: i64,
) -> Result<BatchOutcome, sqlx::Error> {
    match table {
        Table::Apps => rotate_apps_batch(conn, ring, after, exclude, limit).await,
        Table::Tokens => rotate_tokens_batch(conn, ring, after, exclude, limit).await,
        Table::Tickets => rotate_tickets_batch(conn, ring, after, exclude, limit).await,
        Table::Mails => rotate_mails_batch(conn, ring, after, exclude, limit).await,
        Table::AlertChannels => {
            alert_secrets::rotate_batch(conn, ring, after, exclude, limit).await
        }
        Table::TwoFactor => totp_secrets::rotate_batch(conn, ring, after, exclude, limit).await,
    }
}

/// Re-encrypt `ciphertext` under the active key if it is under another one.
pub(super) fn reencrypt(
    ring: &KeyRing,
    ciphertext: &[u8],
    binding: &Binding,
) -> Result<Option<Vec<u8>>, CryptoError> {
    if crypto::key_id_of(ciphertext).is_ok_and(|id| id == ring.active_id()) {
        return Ok(None);
    }
    let plaintext = ring.decrypt(ciphertext, binding)?;
    ring.encrypt(&plaintext, binding).map(Some)
}

/// Where a ciphertext sits: table, row id, column.
pub(super) type Cell = (&'static str, Uuid, &'static str);

/// [`reencrypt`], a failure recorded in `failures` (at `cell`): the new
/// ciphertext to store, if there is one.
pub(super) fn reencrypt_or_record(
    ring: &KeyRing,
    ciphertext: &[u8],
    binding: &Binding,
    failures: &mut Vec<RowFailure>,
    (table, id, column): Cell,
) -> Option<Vec<u8>> {
    reencrypt(ring, ciphertext, binding).unwrap_or_else(|error| {
        failures.push(RowFailure {
            table,
            id,
            column,
            error,
        });
        None
    })
}

async fn rotate_apps_batch(
    conn: &mut sqlx::PgConnection,
    ring: &KeyRing,
    after: Uuid,
    exclude: &[Uuid],
    limit: i64,
) -> Result<BatchOutcome, sqlx::Error> {
    let rows = secrets::lock_apps_not_under(conn, ring.active_id(), after, exclude, limit).await?;
    let mut failures = Vec::new();
    for row in &rows {
        let (tenant, id) = (row.tenant_id, row.id);
        let secret = reencrypt_or_record(
            ring,
            &row.secret,
            &Binding::app_secret(tenant, id),
            &mut failures,
            ("apps", id.uuid(), "secret_ciphertext"),
        );
        let secondary = row.secondary.as_deref().and_then(|ct| {
            let binding = Binding::secondary_app_secret(tenant, id);
            let cell = ("apps", id.uuid(), "secondary_secret_ciphertext");
            reencrypt_or_record(ring, ct, &binding, &mut failures, cell)
        });
        if secret.is_some() || secondary.is_some() {
            secrets::update_app_ciphertexts(conn, id, secret.as_deref(), secondary.as_deref())
                .await?;
        }
    }
    // One app with two bad columns is one failed row.
    failures.dedup_by_key(|f| f.id);
    Ok((
        rows.len() as u64,
        rows.last().map(|r| r.id.uuid()),
        failures,
    ))
}

async fn rotate_tokens_batch(
    conn: &mut sqlx::PgConnection,
    ring: &KeyRing,
    after: Uuid,
    exclude: &[Uuid],
    limit: i64,
) -> Result<BatchOutcome, sqlx::Error> {
    let rows =
        secrets::lock_tokens_not_under(conn, ring.active_id(), after, exclude, limit).await?;
    let mut failures = Vec::new();
    for row in &rows {
        let binding = Binding::access_token(row.tenant_id, row.app_id);
        let cell = ("token_state", row.app_id.uuid(), "access_token_ciphertext");
        if let Some(ct) = reencrypt_or_record(ring, &row.token, &binding, &mut failures, cell) {
            secrets::update_token_ciphertext(conn, row.app_id, &ct).await?;
        }
    }
    Ok((
        rows.len() as u64,
        rows.last().map(|r| r.app_id.uuid()),
        failures,
    ))
}

/// Rows of `table` still holding a ciphertext not under `active`.
async fn left_in(pool: &PgPool, active: &str, table: Table) -> Result<i64, sqlx::Error> {
    Ok(match table {
        Table::Apps => secrets::count_not_under(pool, active).await?.0,
        Table::Tokens => secrets::count_not_under(pool, active).await?.1,
        Table::Tickets => tickets::count_not_under(pool, &secrets::header(active)).await?,
        Table::Mails => secrets::count_not_under(pool, active).await?.2,
        Table::AlertChannels => secrets::count_alert_secrets_not_under(pool, active).await?,
        Table::TwoFactor => totp::count_not_under(pool, &secrets::header(active)).await?,
    })
}

/// Like [`rotate_tokens_batch`], for every ticket of up to `limit` apps
/// (one failure per ticket that does not decrypt).
async fn rotate_tickets_batch(
    conn: &mut sqlx::PgConnection,
    ring: &KeyRing,
    after: Uuid,
    exclude: &[Uuid],
    limit: i64,
) -> Result<BatchOutcome, sqlx::Error> {
    let header = secrets::header(ring.active_id());
    let rows = tickets::lock_not_under(conn, &header, after, exclude, limit).await?;
    let mut failures: Vec<RowFailure> = Vec::new();
    for row in &rows {
        let binding = Binding::ticket(row.tenant_id, row.app_id, row.ticket_type);
        let cell = ("app_tickets", row.app_id.uuid(), "ticket_ciphertext");
        if let Some(ct) = reencrypt_or_record(ring, &row.ticket, &binding, &mut failures, cell) {
            tickets::update_ciphertext(conn, row.app_id, row.ticket_type, &ct).await?;
        }
    }
    Ok((
        rows.len() as u64,
        rows.last().map(|r| r.app_id.uuid()),
        failures,
    ))
}

/// Re-encrypt the bodies of queued mails (those the mail job is sending
/// are locked: the next pass takes them, or they are sent and erased).
async fn rotate_mails_batch(
    conn: &mut sqlx::PgConnection,
    ring: &KeyRing,
    after: Uuid,
    exclude: &[Uuid],
    limit: i64,
) -> Result<BatchOutcome, sqlx::Error> {
    let prefix = secrets::header(ring.active_id());
    let rows = crate::db::mail::lock_bodies_not_under(conn, &prefix, after, exclude, limit).await?;
    let mut failures = Vec::new();
    for (id, body) in &rows {
        let binding = Binding::mail_body(*id);
        let cell = ("mail_outbox", *id, "body_ciphertext");
        if let Some(ct) = reencrypt_or_record(ring, body, &binding, &mut failures, cell) {
            crate::db::mail::update_body(conn, *id, &ct).await?;
        }
    }
    Ok((rows.len() as u64, rows.last().map(|r| r.0), failures))
}
