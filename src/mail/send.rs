//! Sending queued mail: through SMTP (lettre) or, without
//! `TOKENVAULT_SMTP_URL`, into `.eml` files under `DATA_DIR/outbox/`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use secrecy::ExposeSecret as _;
use tokio_util::sync::CancellationToken;

use super::Bodies;
use crate::config::Settings;
use crate::crypto::Binding;
use crate::db::{self, mail::QueuedMail};
use crate::state::AppState;

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// A mail not sent within this long after it was queued is given up.
const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(24);
/// Mails one pass of [`drain`] sends at most (the next pass goes on).
const PER_PASS: usize = 100;

/// Where mail goes.
pub enum Transport {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `.eml` files in this directory.
    Files(PathBuf),
}

/// What became of one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent (or written).
    Sent,
    /// Failed for now; tried again later.
    Retry(String),
    /// Failed for good.
    Failed(String),
}

impl Transport {
    /// The transport the settings ask for.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let Some(url) = &settings.mail.smtp_url else {
            return Ok(Self::Files(settings.data_dir.join("outbox")));
        };
        let tls =
            TlsParameters::new(url.host.clone()).map_err(|e| format!("TLS for {url}: {e}"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.clone())
            .port(url.port)
            .timeout(Some(SMTP_TIMEOUT))
            .tls(if url.implicit_tls {
                Tls::Wrapper(tls)
            } else {
                Tls::Opportunistic(tls)
            });
        if let Some((user, password)) = url.credentials() {
            builder =
                builder.credentials(Credentials::new(user, password.expose_secret().to_string()));
        }
        Ok(Self::Smtp(builder.build()))
    }

    /// Where mail goes, for the log: never a password.
    pub fn describe(&self, settings: &Settings) -> String {
        match self {
            Self::Smtp(_) => settings
                .mail
                .smtp_url
                .as_ref()
                .map_or_else(|| "through SMTP".into(), |url| format!("through {url}")),
            Self::Files(dir) => format!(
                "as .eml files in {} (no TOKENVAULT_SMTP_URL)",
                dir.display()
            ),
        }
    }

    async fn deliver(&self, message: Message, id: uuid::Uuid) -> Outcome {
        match self {
            Self::Smtp(smtp) => match smtp.send(message).await {
                Ok(_) => Outcome::Sent,
                Err(e) if e.is_permanent() => Outcome::Failed(format!("rejected: {e}")),
                Err(e) => Outcome::Retry(e.to_string()),
            },
            Self::Files(dir) => match write_eml(dir, &message.formatted(), id).await {
                Ok(path) => {
                    tracing::info!(mail = %id, path = %path.display(), "mail written to {}", path.display());
                    Outcome::Sent
                }
                Err(e) => Outcome::Retry(format!("cannot write to {}: {e}", dir.display())),
            },
        }
    }
}

/// Write one mail to `dir/<time>-<id>.eml`, readable by its owner only,
/// through a temporary file so a reader never sees half a mail.
async fn write_eml(
    dir: &std::path::Path,
    bytes: &[u8],
    id: uuid::Uuid,
) -> std::io::Result<PathBuf> {
    use tokio::io::AsyncWriteExt as _;
    tokio::fs::create_dir_all(dir).await?;
    let name = format!("{}-{id}.eml", Utc::now().format("%Y%m%dT%H%M%S"));
    let path = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    tokio::fs::rename(&partial, &path).await?;
    Ok(path)
}

/// The message of a queued mail, with its decrypted bodies.
fn build(settings: &Settings, mail: &QueuedMail, bodies: &Bodies) -> Result<Message, String> {
    let from: Mailbox = settings
        .mail
        .mail_from
        .parse()
        .map_err(|e| format!("TOKENVAULT_MAIL_FROM: {e}"))?;
    let to: Mailbox = mail
        .recipient
        .parse()
        .map_err(|e| format!("recipient address: {e}"))?;
    let host = from.email.domain().to_string();
    let builder = Message::builder()
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(format!("<{}@{host}>", mail.id)));
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(bodies.text.clone());
    let message = match &bodies.html {
        Some(html) => builder.multipart(
            MultiPart::alternative().singlepart(text).singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html.clone()),
            ),
        ),
        None => builder.singlepart(text),
    };
    message.map_err(|e| format!("cannot build the mail: {e}"))
}

/// When to try a mail again after `attempts` failures: 30 s, doubling, at
/// most an hour.
fn backoff(attempts: i32) -> chrono::Duration {
    let exponent = u32::try_from(attempts.clamp(0, 7)).unwrap_or(0);
    chrono::Duration::seconds((30_i64 << exponent).min(3600))
}

/// Send every mail that is due, one transaction each, until none is left,
/// [`PER_PASS`] are done, or `stop` is cancelled.
pub async fn drain(state: &AppState, transport: &Transport, stop: &CancellationToken) {
    for _ in 0..PER_PASS {
        if stop.is_cancelled() {
            return;
        }
        // Cancelled mid-send: the transaction rolls back and the mail stays
        // queued (a server that had already accepted it gets it again).
        let sent = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            sent = send_one(state, transport) => sent,
        };
        match sent {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot send queued mail; will retry");
                return;
            }
        }
    }
}

/// Claim one due mail, send it, record how it went; whether there was one.
async fn send_one(state: &AppState, transport: &Transport) -> Result<bool, sqlx::Error> {
    let mut tx = state.pool.begin().await?;
    let Some(mail) = db::mail::claim_due(&mut tx).await? else {
        return Ok(false);
    };
    let outcome = match state
        .crypto
        .decrypt(&mail.body_ciphertext, &Binding::mail_body(mail.id))
        .map_err(|e| e.to_string())
        .and_then(|plain| serde_json::from_slice::<Bodies>(&plain).map_err(|e| e.to_string()))
    {
        Ok(bodies) => match build(&state.settings, &mail, &bodies) {
            Ok(message) => transport.deliver(message, mail.id).await,
            Err(e) => Outcome::Failed(e),
        },
        Err(e) => Outcome::Failed(format!("cannot decrypt the stored mail: {e}")),
    };
    let outcome = match outcome {
        Outcome::Retry(e) if Utc::now() - mail.created_at > GIVE_UP_AFTER => {
            Outcome::Failed(format!("given up after 24 hours: {e}"))
        }
        other => other,
    };
    match &outcome {
        Outcome::Sent => db::mail::mark_sent(&mut tx, mail.id).await?,
        Outcome::Retry(e) => {
            let next = Utc::now() + backoff(mail.attempts);
            tracing::warn!(mail = %mail.id, kind = %mail.kind, attempt = mail.attempts + 1, error = %e, "mail not sent; will retry at {next}");
            db::mail::mark_retry(&mut tx, mail.id, e, next).await?;
        }
        Outcome::Failed(e) => {
            tracing::error!(mail = %mail.id, kind = %mail.kind, error = %e, "mail given up");
            db::mail::mark_failed(&mut tx, mail.id, e).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(0).num_seconds(), 30);
        assert_eq!(backoff(1).num_seconds(), 60);
        assert_eq!(backoff(6).num_seconds(), 1920);
        assert_eq!(backoff(7).num_seconds(), 3600);
        assert_eq!(backoff(500).num_seconds(), 3600);
    }
}
