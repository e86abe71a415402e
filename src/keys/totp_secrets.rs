//! Key rotation of the two-factor (TOTP) secrets: one batch of
//! `super::rotation`.

use sqlx::PgConnection;
use uuid::Uuid;

use super::rotation::{BatchOutcome, reencrypt_or_record};
use crate::crypto::{Binding, KeyRing};
use crate::db::{secrets, totp};

/// Re-encrypt up to `limit` TOTP secrets after `after` not under the
/// active key (rows locked by the service, a code being checked, are
/// skipped: a later pass takes them).
pub(super) async fn rotate_batch(
    conn: &mut PgConnection,
    ring: &KeyRing,
    after: Uuid,
    exclude: &[Uuid],
    limit: i64,
) -> Result<BatchOutcome, sqlx::Error> {
    let prefix = secrets::header(ring.active_id());
    let rows = totp::lock_secrets_not_under(conn, &prefix, after, exclude, limit).await?;
    let mut failures = Vec::new();
    for row in &rows {
        let binding = Binding::totp_secret(row.user_id);
        let cell = ("user_totp", row.user_id.uuid(), "secret_ciphertext");
        let ct = &row.secret_ciphertext;
        if let Some(ct) = reencrypt_or_record(ring, ct, &binding, &mut failures, cell) {
            totp::update_secret(&mut *conn, row.user_id, &ct).await?;
        }
    }
    Ok((
        rows.len() as u64,
        rows.last().map(|r| r.user_id.uuid()),
        failures,
    ))
}
