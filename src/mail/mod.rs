//! Outgoing mail. A use case queues a mail with [`enqueue`] (or
//! [`enqueue_in`], inside its own transaction); the mail job
//! (`crate::jobs`) sends it later through [`send`], never inside the
//! request that caused it. The outbox is a table (`db::mail`): a mail is
//! claimed with `for update skip locked` and marked sent in the same
//! transaction, so one replica sends it; failures are retried with backoff.
//!
//! Bodies hold one-use links, so they are secrets: they are stored
//! encrypted with the key ring (bound to the mail's id) and erased once the
//! mail is sent; they never reach a log line. Recipient, subject and kind
//! are headers operators may see.
//!
//! ```ignore
//! let rendered = mail::render("password_reset", Language::En, &context! { link })?;
//! mail::enqueue(&state, Mail::new(email, "password.reset", rendered)).await?;
//! ```

mod send;
mod templates;

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::crypto::{Binding, KeyRing};
use crate::db;
use crate::domain::Email;
use crate::error::ApiError;
use crate::state::AppState;

pub use send::{Outcome, Transport, drain};
pub use templates::{Language, Rendered, render};

/// A mail to send: one recipient, a subject, a plain-text body and
/// optionally an HTML one. Build it from templates with [`render`] and
/// [`Mail::new`], or fill the fields yourself.
pub struct Mail {
    /// The recipient (a parsed address: no header can be smuggled in).
    pub to: Email,
    /// Subject line (line breaks are folded into spaces).
    pub subject: String,
    /// The plain-text body.
    pub text: SecretString,
    /// The HTML body, if any.
    pub html: Option<SecretString>,
    /// What caused the mail, e.g. `password.reset` (lowercase letters,
    /// digits, `_` and `.`): shown to operators beside the headers.
    pub kind: &'static str,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Mail {
    /// A mail of `kind` to `to` with the rendered subject and bodies.
    pub fn new(to: Email, kind: &'static str, rendered: Rendered) -> Self {
        Self {
            to,
            subject: rendered.subject,
            text: rendered.text,
            html: Some(rendered.html),
            kind,
        }
    }
}

/// The bodies as stored (encrypted) in the outbox.
#[derive(Serialize, Deserialize)]
struct Bodies {
    text: String,
    html: Option<String>,
}

/// Queue `mail` for sending; its id. The mail job sends it within
/// `TOKENVAULT_MAIL_SEND_SECONDS`.
pub async fn enqueue(state: &AppState, mail: &Mail) -> Result<Uuid, ApiError> {
    let mut conn = state.pool.acquire().await?;
    enqueue_in(&mut conn, &state.crypto, mail).await
}

/// Queue `mail` on `conn`: pass a transaction to queue it only if the
/// transaction commits.
pub async fn enqueue_in(
    conn: &mut PgConnection,
    ring: &KeyRing,
    mail: &Mail,
) -> Result<Uuid, ApiError> {
    let id = Uuid::new_v4();
    let subject: String = mail
        .subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    let subject = if subject.trim().is_empty() {
        "tokenvault".to_string()
    } else {
        subject
    };
    let bodies = zeroize::Zeroizing::new(
        serde_json::to_vec(&Bodies {
            text: mail.text.expose_secret().to_string(),
            html: mail.html.as_ref().map(|h| h.expose_secret().to_string()),
        })
        .map_err(|e| ApiError::Internal(e.into()))?,
    );
    let ciphertext = ring
        .encrypt(&bodies, &Binding::mail_body(id))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("cannot encrypt a mail: {e}")))?;
    db::mail::insert(
        &mut *conn,
        &db::mail::NewMail {
            id,
            recipient: mail.to.as_str(),
            subject: &subject,
            kind: mail.kind,
            body_ciphertext: &ciphertext,
        },
    )
    .await?;
    tracing::debug!(mail = %id, kind = mail.kind, "mail queued");
    Ok(id)
}
