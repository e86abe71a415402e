//! Two-factor codes in tests, computed with the same crate the service uses
//! (as a phone's authenticator app would compute them).

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::PgPool;
use tokenvault::crypto::Binding;
use tokenvault::domain::UserId;
use totp_rs::{Builder, Secret};

use super::browser::Browser;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code of base32 `secret` for time step `step`.
pub fn code_at_step(secret: &str, step: u64) -> String {
    let secret = Secret::try_from_base32(secret).expect("a base32 secret");
    Builder::new()
        .with_secret(secret)
        .build()
        .expect("an RFC 6238 TOTP")
        .generate(step * 30)
        .to_string()
}

/// The current time step.
pub fn current_step() -> u64 {
    now() / 30
}

/// The enrolled secret (base32) of `email`, decrypted as the service does.
pub async fn secret_of(pool: &PgPool, email: &str) -> String {
    let (user_id, ciphertext): (uuid::Uuid, Vec<u8>) = sqlx::query_as(
        "select t.user_id, t.secret_ciphertext from user_totp t join users u on u.id = t.user_id
          where u.email = $1",
    )
    .bind(email)
    .fetch_one(pool)
    .await
    .expect("an enrolment");
    let plain = super::test_key_ring()
        .decrypt(&ciphertext, &Binding::totp_secret(UserId::from(user_id)))
        .expect("decrypts");
    Secret::from(plain.to_vec()).to_base32()
}

/// A code of `email`'s authenticator the service takes now: for the
/// current time step, or the next after the last step used when that one
/// was used (the service accepts one step either way, so a step boundary
/// passing before the request arrives does not matter; waits when even
/// the next step is taken).
pub async fn next_code(pool: &PgPool, email: &str) -> String {
    let secret = secret_of(pool, email).await;
    let last: Option<i64> = sqlx::query_scalar(
        "select t.last_step from user_totp t join users u on u.id = t.user_id where u.email = $1",
    )
    .bind(email)
    .fetch_one(pool)
    .await
    .expect("an enrolment");
    loop {
        let now = current_step();
        let after_last = last.map_or(0, |l| u64::try_from(l).unwrap() + 1);
        let step = after_last.max(now);
        if step <= now + 1 {
            return code_at_step(&secret, step);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

impl Browser {
    /// Enrol this signed-in person in two-factor sign-in through the API;
    /// the base32 secret and the ten recovery codes.
    pub async fn enrol_totp(&self) -> (String, Vec<String>) {
        let res = self
            .post_json("/api/v1/account/totp", &serde_json::json!({}))
            .await;
        assert_eq!(
            res.status(),
            200,
            "{}",
            res.text().await.unwrap_or_default()
        );
        let body: serde_json::Value = res.json().await.unwrap();
        let secret = body["secret"].as_str().unwrap().to_string();
        let code = code_at_step(&secret, current_step());
        let res = self
            .post_json(
                "/api/v1/account/totp/confirm",
                &serde_json::json!({ "code": code }),
            )
            .await;
        assert_eq!(
            res.status(),
            200,
            "{}",
            res.text().await.unwrap_or_default()
        );
        let body: serde_json::Value = res.json().await.unwrap();
        let codes = body["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        (secret, codes)
    }
}
