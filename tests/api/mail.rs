//! Mail: queued in PostgreSQL, sent by the mail job through a real SMTP
//! server (aiosmtpd, `helpers::smtp`) or written as `.eml` files; bodies
//! encrypted at rest and erased once sent; retried when the server is down
//! or refuses; each mail sent once across replicas; covered by key rotation.

use std::ops::ControlFlow;
use std::time::Duration;

use sqlx::PgPool;
use tokenvault::domain::Email;
use tokenvault::mail::{self, Language, Mail};

use crate::helpers::smtp::free_port;
use crate::helpers::{SmtpSink, settings_from, spawn_app_with_settings, test_key_ring};

const LINK: &str = "http://vault.test/reset?token=secret-one-use-token";

fn mail_to(to: &str, subject: &str) -> Mail {
    let rendered = mail::render(
        "password_reset",
        Language::En,
        &minijinja::context! { link => LINK },
    )
    .expect("renders");
    let mut mail = Mail::new(
        Email::parse("email", to).expect("an address"),
        "password.reset",
        rendered,
    );
    mail.subject = subject.to_string();
    mail
}

/// A mail's text with quoted-printable soft line breaks and `=3D` undone
/// (enough to find a link in it).
fn decoded(message: &str) -> String {
    message.replace("=\r\n", "").replace("=3D", "=")
}

/// Queue `mail` as a use case would, in a transaction; its id.
async fn enqueue(pool: &PgPool, mail: &Mail) -> uuid::Uuid {
    let mut tx = pool.begin().await.expect("begin");
    let id = mail::enqueue_in(&mut tx, &test_key_ring(), mail)
        .await
        .expect("queued");
    // At rest, the bodies are ciphertext: the link is nowhere in the row.
    let row: (Vec<u8>, String) =
        sqlx::query_as("select body_ciphertext, status from mail_outbox where id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .expect("the queued row");
    assert_eq!(row.1, "queued");
    assert!(
        !row.0
            .windows(b"secret-one-use-token".len())
            .any(|w| w == b"secret-one-use-token"),
        "the link is stored in plain text"
    );
    tx.commit().await.expect("commit");
    id
}

async fn status(pool: &PgPool, id: uuid::Uuid) -> (String, i32, Option<String>, bool) {
    sqlx::query_as(
        "select status, attempts, last_error, body_ciphertext is not null from mail_outbox where id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .expect("the outbox row")
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within 30 s: {what}");
}

fn smtp_settings(url: &str) -> tokenvault::config::Settings {
    settings_from(&[
        "--smtp-url",
        url,
        "--mail-from",
        "tokenvault <noreply@vault.test>",
        "--mail-send-seconds",
        "1",
    ])
}

#[tokio::test]
async fn a_queued_mail_reaches_a_real_smtp_server_with_both_bodies_and_no_injected_header() {
    let Some(sink) = SmtpSink::start(0, 0) else {
        return;
    };
    let app = spawn_app_with_settings(smtp_settings(&sink.url())).await;
    let id = enqueue(
        &app.pool,
        &mail_to("Person@Example.com", "Reset\r\nBcc: eve@evil.test"),
    )
    .await;

    let received = sink.wait_for(1).await;
    let message = &decoded(&received[0]);
    assert!(
        message.contains("X-Envelope-To: person@example.com"),
        "{message}"
    );
    assert!(
        message.contains("From: tokenvault <noreply@vault.test>"),
        "{message}"
    );
    assert!(
        message.contains(&format!("Message-ID: <{id}@vault.test>")),
        "{message}"
    );
    assert!(message.contains("multipart/alternative"), "{message}");
    assert!(
        message.contains("text/plain") && message.contains("text/html"),
        "{message}"
    );
    assert!(message.contains(LINK), "the link is in the mail: {message}");
    // The line break in the subject became a space: no Bcc header.
    assert!(
        message.contains("Subject: Reset  Bcc: eve@evil.test"),
        "{message}"
    );
    assert!(!message.lines().any(|l| l.starts_with("Bcc:")), "{message}");
    assert!(!message.contains("eve@evil.test\r\n\r\n"));

    wait_until("marked sent", async || {
        status(&app.pool, id).await.0 == "sent"
    })
    .await;
    let (_, attempts, error, has_body) = status(&app.pool, id).await;
    assert_eq!(
        (attempts, error, has_body),
        (1, None, false),
        "sent once, body erased"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.received().len(), 1, "sent once");

    // Operators see the mail's headers on their page, never its link.
    let operator = crate::ui_ops::create_operator(&app, "ops@example.com").await;
    let res = operator.get("/operator").await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.expect("page");
    assert!(
        page.contains("person@example.com") && page.contains("password.reset"),
        "{page}"
    );
    assert!(!page.contains("secret-one-use-token"));

    // Addresses are parsed: a header cannot ride in on one.
    assert!(Email::parse("email", "a@example.com\r\nBcc: eve@evil.test").is_err());
}

#[tokio::test]
async fn a_server_that_is_down_or_refuses_gets_the_mail_later_and_the_caller_never_waits() {
    let port = free_port();
    let app = spawn_app_with_settings(smtp_settings(&format!("smtp://127.0.0.1:{port}"))).await;
    let id = enqueue(&app.pool, &mail_to("person@example.com", "Hello")).await;

    wait_until("a failed attempt", async || {
        status(&app.pool, id).await.1 >= 1
    })
    .await;
    let (state, _, error, has_body) = status(&app.pool, id).await;
    assert_eq!(state, "queued");
    assert!(has_body, "kept for the next attempt");
    assert!(error.is_some_and(|e| !e.is_empty()));
    let next: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select next_attempt_at from mail_outbox where id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .expect("next attempt");
    assert!(
        next > chrono::Utc::now() + chrono::Duration::seconds(20),
        "backs off"
    );

    // The server comes up but refuses once (451): still queued, tried again.
    let Some(sink) = SmtpSink::start(port, 1) else {
        return;
    };
    let due_now = || async {
        sqlx::query("update mail_outbox set next_attempt_at = now() where id = $1")
            .bind(id)
            .execute(&app.pool)
            .await
            .expect("due now");
    };
    due_now().await;
    wait_until("a refused attempt", async || {
        status(&app.pool, id).await.1 >= 2
    })
    .await;
    assert_eq!(status(&app.pool, id).await.0, "queued");
    assert!(sink.received().is_empty());
    due_now().await;
    let received = sink.wait_for(1).await;
    assert!(decoded(&received[0]).contains(LINK));
    wait_until("marked sent", async || {
        status(&app.pool, id).await.0 == "sent"
    })
    .await;
    assert_eq!(status(&app.pool, id).await.1, 3);
}

#[tokio::test]
async fn two_replicas_send_each_mail_exactly_once() {
    let Some(sink) = SmtpSink::start(0, 0) else {
        return;
    };
    let app = spawn_app_with_settings(smtp_settings(&sink.url())).await;
    app.spawn_replica_with(smtp_settings(&sink.url())).await;
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(enqueue(&app.pool, &mail_to(&format!("p{n}@example.com"), "Hi")).await);
    }
    let received = sink.wait_for(12).await;
    wait_until("all sent", async || {
        let sent: i64 =
            sqlx::query_scalar("select count(*) from mail_outbox where status = 'sent'")
                .fetch_one(&app.pool)
                .await
                .expect("count");
        sent == 12
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received_after = sink.received();
    assert_eq!(received_after.len(), 12, "no mail twice");
    for id in ids {
        let count = received
            .iter()
            .filter(|m| m.contains(&format!("Message-ID: <{id}@")))
            .count();
        assert_eq!(count, 1, "mail {id}");
    }
}

#[tokio::test]
async fn without_smtp_each_mail_is_an_eml_file_in_the_data_directory() {
    let data = tempfile::tempdir().expect("a data directory");
    let mut settings = settings_from(&["--mail-send-seconds", "1"]);
    settings.data_dir = data.path().to_path_buf();
    let app = spawn_app_with_settings(settings).await;
    let id = enqueue(&app.pool, &mail_to("person@example.com", "Hello")).await;
    wait_until("marked sent", async || {
        status(&app.pool, id).await.0 == "sent"
    })
    .await;
    let outbox = data.path().join("outbox");
    let files: Vec<_> = std::fs::read_dir(&outbox)
        .expect("DATA_DIR/outbox")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let file = &files[0];
    assert!(file.to_string_lossy().ends_with(&format!("-{id}.eml")));
    let text = decoded(&std::fs::read_to_string(file).expect("read the mail"));
    assert!(
        text.contains("To: person@example.com") && text.contains(LINK),
        "{text}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&file.metadata().expect("meta").permissions());
    assert_eq!(mode & 0o077, 0, "only its owner reads a mail with a link");
}

#[tokio::test]
async fn key_rotation_re_encrypts_queued_mails_which_are_then_sent() {
    let port = free_port();
    let app = spawn_app_with_settings(smtp_settings(&format!("smtp://127.0.0.1:{port}"))).await;
    let id = enqueue(&app.pool, &mail_to("person@example.com", "Hello")).await;
    wait_until("a failed attempt", async || {
        status(&app.pool, id).await.1 >= 1
    })
    .await;

    let ring = test_key_ring().with_active("t2").expect("t2 in the ring");
    let report = tokenvault::keys::rotate(&app.pool, &ring, 10, |_| ControlFlow::Continue(()))
        .await
        .expect("rotation");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.progress.map(|p| p.mails), Some(1));
    let usage = tokenvault::db::secrets::key_usage(&app.pool)
        .await
        .expect("usage");
    let t2 = usage.iter().find(|u| u.key_id == "t2").expect("t2 used");
    assert_eq!(t2.mails, 1);
    assert!(
        usage.iter().all(|u| u.key_id == "t2" || u.mails == 0),
        "{usage:?}"
    );

    // The replica's ring holds both keys: the rotated mail still goes out.
    let Some(sink) = SmtpSink::start(port, 0) else {
        return;
    };
    sqlx::query("update mail_outbox set next_attempt_at = now() where id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .expect("due now");
    assert!(decoded(&sink.wait_for(1).await[0]).contains(LINK));
}
