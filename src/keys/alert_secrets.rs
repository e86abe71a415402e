//! Key rotation of the alert channels' URLs and signing secrets, in batches like
//! the apps and tokens (`super::rotate`).

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::{MAX_PASSES, RotationProgress, RotationReport, RowFailure, reencrypt};
use crate::crypto::{Binding, KeyRing};
use crate::db::secrets;

/// [`rotate`], counted into the whole rotation's `state` and `report`;
/// whether it finished (not interrupted by `progress`).
pub(super) async fn rotate_into(
    pool: &PgPool,
    ring: &KeyRing,
    limit: i64,
    state: &mut RotationProgress,
    report: &mut RotationReport,
    progress: &mut impl FnMut(&RotationProgress) -> std::ops::ControlFlow<()>,
) -> anyhow::Result<bool> {
    let waiting = secrets::count_alert_secrets_not_under(pool, ring.active_id()).await?;
    state.total += u64::try_from(waiting).unwrap_or(0);
    let finished = rotate(pool, ring, limit, |rotated, failures| {
        state.done += rotated;
        state.failed += failures.len() as u64;
        report.failures.extend(failures);
        state.total = state.total.max(state.done + state.failed);
        report.progress = Some(*state);
        progress(state)
    })
    .await?;
    report.interrupted |= !finished;
    Ok(finished)
}

/// Re-encrypt every channel URL and secret not under the active key, `limit` rows
/// per transaction; rows locked by the service are retried. `batch` is
/// called after each batch with the rows re-encrypted and those that failed;
/// `Break` stops there.
pub(super) async fn rotate(
    pool: &PgPool,
    ring: &KeyRing,
    limit: i64,
    mut batch: impl FnMut(u64, Vec<RowFailure>) -> std::ops::ControlFlow<()>,
) -> anyhow::Result<bool> {
    let active = ring.active_id();
    let mut failed_ids: Vec<Uuid> = Vec::new();
    for pass in 1..=MAX_PASSES {
        let mut cursor = Uuid::nil();
        loop {
            let mut tx = pool.begin().await?;
            let rows =
                secrets::lock_alert_secrets_not_under(&mut tx, active, cursor, &failed_ids, limit)
                    .await?;
            let Some(last) = rows.last() else { break };
            cursor = last.id.uuid();
            let mut failures = Vec::new();
            for row in &rows {
                let mut fail = |column, error| {
                    failures.push(RowFailure {
                        table: "alert_channels",
                        id: row.id.uuid(),
                        column,
                        error,
                    });
                };
                let url = reencrypt(ring, &row.url, &Binding::alert_url(row.tenant_id, row.id))
                    .unwrap_or_else(|e| {
                        fail("url_ciphertext", e);
                        None
                    });
                let secret = row.secret.as_deref().and_then(|ct| {
                    let binding = Binding::alert_secret(row.tenant_id, row.id);
                    reencrypt(ring, ct, &binding).unwrap_or_else(|e| {
                        fail("secret_ciphertext", e);
                        None
                    })
                });
                if url.is_some() || secret.is_some() {
                    secrets::update_alert_ciphertexts(
                        &mut tx,
                        row.id,
                        url.as_deref(),
                        secret.as_deref(),
                    )
                    .await?;
                }
            }
            failures.dedup_by_key(|f| f.id);
            tx.commit().await?;
            failed_ids.extend(failures.iter().map(|f| f.id));
            let rotated = rows.len() as u64 - failures.len() as u64;
            if batch(rotated, failures).is_break() {
                return Ok(false);
            }
        }
        let left = secrets::count_alert_secrets_not_under(pool, active).await?;
        let locked = u64::try_from(left)
            .unwrap_or(0)
            .saturating_sub(failed_ids.len() as u64);
        if locked == 0 {
            return Ok(true);
        }
        if pass == MAX_PASSES {
            anyhow::bail!(
                "{locked} alert channels stayed locked by other transactions; run `tokenvault keys \
                 rotate` again to finish (everything else is rotated)"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(true)
}
