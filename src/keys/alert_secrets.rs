//! Key rotation of the alert channels' URLs and signing secrets: one batch
//! of `super::rotation`.

use sqlx::PgConnection;
use uuid::Uuid;

use super::rotation::{BatchOutcome, reencrypt_or_record};
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
        let (tenant, id) = (row.tenant_id, row.id);
        let url = reencrypt_or_record(
            ring,
            &row.url,
            &Binding::alert_url(tenant, id),
            &mut failures,
            ("alert_channels", id.uuid(), "url_ciphertext"),
        );
        let secret = row.secret.as_deref().and_then(|ct| {
            let binding = Binding::alert_secret(tenant, id);
            let cell = ("alert_channels", id.uuid(), "secret_ciphertext");
            reencrypt_or_record(ring, ct, &binding, &mut failures, cell)
        });
        if url.is_some() || secret.is_some() {
            secrets::update_alert_ciphertexts(&mut *conn, id, url.as_deref(), secret.as_deref())
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
