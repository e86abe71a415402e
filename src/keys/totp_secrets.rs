//! Key rotation of the two-factor (TOTP) secrets, in batches like the other
//! columns (`super::rotate`).

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

use super::{MAX_PASSES, RotationProgress, RotationReport, RowFailure, reencrypt};
use crate::crypto::{Binding, KeyRing};
use crate::db::{secrets, totp};

/// Re-encrypt every TOTP secret not under the active key, `limit` rows per
/// transaction, counted into the whole rotation's `state` and `report`;
/// whether it finished (not interrupted by `progress`). Rows locked by the
/// service (a code being checked) are retried.
pub(super) async fn rotate_into(
    pool: &PgPool,
    ring: &KeyRing,
    limit: i64,
    state: &mut RotationProgress,
    report: &mut RotationReport,
    progress: &mut impl FnMut(&RotationProgress) -> std::ops::ControlFlow<()>,
) -> anyhow::Result<bool> {
    let prefix = secrets::header(ring.active_id());
    let waiting = totp::count_not_under(pool, &prefix).await?;
    state.total += u64::try_from(waiting).unwrap_or(0);
    let mut failed_ids: Vec<Uuid> = Vec::new();
    for pass in 1..=MAX_PASSES {
        let mut cursor = Uuid::nil();
        loop {
            let mut tx = pool.begin().await?;
            let rows =
                totp::lock_secrets_not_under(&mut tx, &prefix, cursor, &failed_ids, limit).await?;
            let Some(last) = rows.last() else { break };
            cursor = last.user_id.uuid();
            let mut failures = Vec::new();
            for row in &rows {
                let binding = Binding::totp_secret(row.user_id);
                match reencrypt(ring, &row.secret_ciphertext, &binding) {
                    Ok(Some(ct)) => totp::update_secret(&mut tx, row.user_id, &ct).await?,
                    Ok(None) => {}
                    Err(error) => failures.push(RowFailure {
                        table: "user_totp",
                        id: row.user_id.uuid(),
                        column: "secret_ciphertext",
                        error,
                    }),
                }
            }
            tx.commit().await?;
            failed_ids.extend(failures.iter().map(|f| f.id));
            state.done += rows.len() as u64 - failures.len() as u64;
            state.failed += failures.len() as u64;
            report.failures.extend(failures);
            state.total = state.total.max(state.done + state.failed);
            report.progress = Some(*state);
            if progress(state).is_break() {
                report.interrupted = true;
                return Ok(false);
            }
        }
        let left = totp::count_not_under(pool, &prefix).await?;
        let locked = u64::try_from(left)
            .unwrap_or(0)
            .saturating_sub(failed_ids.len() as u64);
        if locked == 0 {
            return Ok(true);
        }
        if pass == MAX_PASSES {
            anyhow::bail!(
                "{locked} two-factor secrets stayed locked by other transactions; run `tokenvault \
                 keys rotate` again to finish (everything else is rotated)"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(true)
}
