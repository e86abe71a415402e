//! Key rotation of the alert channels' URLs and signing secrets: one batch
//! of `super::rotation`.

use sqlx::PgConnection;
use uuid::Uuid;

use super::RowFailure;
use super::rotation::{BatchOutcome, reencrypt};
use crate::crypto::{Binding, KeyRing};
use crate::db::secrets;

/// Re-encrypt the URL and secret of up to `limit` channels after `after`
/// not under the active key (one failure per channel that does not
/// decrypt).
pub(super) async fn rotate_batch(
    conn: &mut PgConnection,
    ring: &KeyRing,
    after: Uuid,
    exclude: &[Uuid],
    limit: i64,
) -> Result<BatchOutcome, sqlx::Error> {
    let rows =
        secrets::lock_alert_secrets_not_under(&mut *conn, ring.active_id(), after, exclude, limit)
            .await?;
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
                &mut *conn,
                row.id,
                url.as_deref(),
                secret.as_deref(),
            )
            .await?;
        }
    }
    failures.dedup_by_key(|f| f.id);
    Ok((
        rows.len() as u64,
        rows.last().map(|r| r.id.uuid()),
        failures,
    ))
}
