//! Secrets at rest against a live database: the start-up key check, rotation
//! while the service serves, and a `pg_dump` that holds no secret.

use std::ops::ControlFlow;
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sqlx::PgPool;
use tokenvault::crypto::{Binding, KeyRing, KeySource, key_id_of};
use tokenvault::db::secrets::{self, KeyUsage};
use tokenvault::domain::{AppUuid, TenantId};
use tokenvault::keys::{self, KeyCheckError};
use uuid::Uuid;

use crate::helpers::{Sandbox, TestDatabase, spawn_app};

const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const K3: &str = "k3:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=";
/// Id `k1`, but not the key the database was written with.
const K1_IMPOSTOR: &str = "k1:YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8=";

fn ring(entries: &[&str], active: &str) -> KeyRing {
    KeyRing::parse_with_active(&entries.join(","), Some(active)).unwrap()
}

async fn insert_tenant(pool: &PgPool) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query("insert into tenants (id, name) values ($1, 't')")
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
    id
}

/// A stored app and its plaintexts.
struct StoredApp {
    tenant_id: Uuid,
    id: Uuid,
    secret: String,
    secondary: Option<String>,
    token: Option<String>,
}

/// Store an app (secret, optional secondary secret, optional token) under `key_id`.
async fn insert_app(
    pool: &PgPool,
    ring: &KeyRing,
    key_id: &str,
    tenant_id: Uuid,
    n: usize,
) -> StoredApp {
    let id = Uuid::new_v4();
    let secret = format!("appsecret-{}", Uuid::new_v4().simple());
    let secondary = n
        .is_multiple_of(2)
        .then(|| format!("secondary-{}", Uuid::new_v4().simple()));
    let token = (!n.is_multiple_of(3)).then(|| format!("accesstoken-{}", Uuid::new_v4().simple()));
    let enc = |plain: &str, binding| {
        ring.encrypt_under(key_id, plain.as_bytes(), &binding)
            .unwrap()
    };
    sqlx::query(
        "insert into apps (id, tenant_id, appid, name, secret_ciphertext, secondary_secret_ciphertext)
         values ($1, $2, $3, 'app', $4, $5)",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(format!("wx{}", &id.simple().to_string()[..16]))
    .bind(enc(&secret, Binding::app_secret(TenantId(tenant_id), AppUuid(id))))
    .bind(
        secondary
            .as_deref()
            .map(|s| enc(s, Binding::secondary_app_secret(TenantId(tenant_id), AppUuid(id)))),
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into token_state (app_id, tenant_id, access_token_ciphertext, token_fingerprint, expires_at)
         values ($1, $2, $3, $4, case when $3 is null then null else now() + interval '2 hours' end)",
    )
    .bind(id)
    .bind(tenant_id)
    .bind(
        token
            .as_deref()
            .map(|t| enc(t, Binding::access_token(TenantId(tenant_id), AppUuid(id)))),
    )
    .bind(token.as_ref().map(|_| vec![0u8; 32]))
    .execute(pool)
    .await
    .unwrap();
    StoredApp {
        tenant_id,
        id,
        secret,
        secondary,
        token,
    }
}

async fn stored(pool: &PgPool, app: Uuid) -> (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>) {
    sqlx::query_as(
        "select a.secret_ciphertext, a.secondary_secret_ciphertext, t.access_token_ciphertext
           from apps a join token_state t on t.app_id = a.id where a.id = $1",
    )
    .bind(app)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Every ciphertext of `app` is under `key_id` and decrypts to what was stored.
async fn assert_under(pool: &PgPool, ring: &KeyRing, app: &StoredApp, key_id: &str) {
    let (secret, secondary, token) = stored(pool, app.id).await;
    let text = |ct: &[u8], binding| {
        assert_eq!(key_id_of(ct).unwrap(), key_id);
        String::from_utf8(ring.decrypt(ct, &binding).unwrap().to_vec()).unwrap()
    };
    let (t, a) = (app.tenant_id, app.id);
    assert_eq!(
        text(&secret, Binding::app_secret(TenantId(t), AppUuid(a))),
        app.secret
    );
    assert_eq!(
        secondary.map(|ct| text(&ct, Binding::secondary_app_secret(TenantId(t), AppUuid(a)))),
        app.secondary
    );
    assert_eq!(
        token.map(|ct| text(&ct, Binding::access_token(TenantId(t), AppUuid(a)))),
        app.token
    );
}

fn usage_of<'a>(usage: &'a [KeyUsage], key_id: &str) -> Option<&'a KeyUsage> {
    usage.iter().find(|u| u.key_id == key_id)
}

#[tokio::test]
async fn key_check_refuses_a_ring_that_does_not_fit() {
    let db = TestDatabase::create_migrated().await;
    let pool = db.pool(2).await;
    let source = KeySource::Setting;
    let k1 = ring(&[K1], "k1");
    // First start records a check value; a second start with the same key passes.
    keys::check_key_ring(&pool, &k1, &source).await.unwrap();
    keys::check_key_ring(&pool, &k1, &source).await.unwrap();
    assert_eq!(secrets::key_checks(&pool).await.unwrap().len(), 1);

    let err = keys::check_key_ring(&pool, &ring(&[K2], "k2"), &source)
        .await
        .unwrap_err();
    assert!(matches!(&err, KeyCheckError::MissingKey { key_id, .. } if key_id == "k1"));
    let message = err.to_string();
    assert!(
        message.contains("master key 'k1'") && message.contains("TOKENVAULT_MASTER_KEYS"),
        "{message}"
    );
    // Refused: no check value was stored for the rejected ring's key.
    assert_eq!(secrets::key_checks(&pool).await.unwrap().len(), 1);

    let err = keys::check_key_ring(&pool, &ring(&[K1_IMPOSTOR], "k1"), &source)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("master key 'k1' in TOKENVAULT_MASTER_KEYS is not the key"),
        "{err}"
    );

    // Adding a new active key keeps the old one's check and adds its own.
    keys::check_key_ring(&pool, &ring(&[K1, K2], "k2"), &source)
        .await
        .unwrap();
    let ids: Vec<String> = secrets::key_checks(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["k1", "k2"]);
}

#[tokio::test]
async fn key_check_sees_ciphertexts_without_check_values() {
    let db = TestDatabase::create_migrated().await;
    let pool = db.pool(2).await;
    let all = ring(&[K1, K2], "k1");
    let tenant = insert_tenant(&pool).await;
    insert_app(&pool, &all, "k2", tenant, 1).await;
    let path = std::path::PathBuf::from("/etc/tokenvault/keys");
    let err = keys::check_key_ring(&pool, &ring(&[K1], "k1"), &KeySource::File(path))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "master key 'k2', which is not in the key file /etc/tokenvault/keys (TOKENVAULT_MASTER_KEY_FILE)"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn rotation_moves_every_row_to_the_active_key_while_serving() {
    let app = spawn_app().await;
    let pool = &app.pool;
    let old = ring(&[K1, K2], "k1");
    keys::check_key_ring(pool, &old, &KeySource::Setting)
        .await
        .unwrap();
    keys::check_key_ring(pool, &old.with_active("k2").unwrap(), &KeySource::Setting)
        .await
        .unwrap();
    let mut apps = Vec::new();
    for n in 0..23_usize {
        let tenant = insert_tenant(pool).await;
        let key = if n.is_multiple_of(2) { "k1" } else { "k2" };
        apps.push(insert_app(pool, &old, key, tenant, n).await);
    }
    let before = secrets::key_usage(pool).await.unwrap();
    assert!(usage_of(&before, "k1").unwrap().total() > 0);
    assert!(usage_of(&before, "k2").unwrap().total() > 0);

    // The refresher holds a token row while rotation runs: rotation skips it
    // and comes back for it, never waiting on the service.
    let mut refresher = pool.begin().await.unwrap();
    let held = apps[1].id;
    sqlx::query("select 1 from token_state where app_id = $1 for update")
        .bind(held)
        .execute(&mut *refresher)
        .await
        .unwrap();

    let new = ring(&[K1, K2, K3], "k3");
    keys::check_key_ring(pool, &new, &KeySource::Setting)
        .await
        .unwrap();
    let rotation = tokio::spawn({
        let pool = pool.clone();
        let new = new.clone();
        async move {
            let mut lines = Vec::new();
            let report = keys::rotate(&pool, &new, 4, |p| {
                lines.push(p.to_string());
                ControlFlow::Continue(())
            })
            .await;
            (report, lines)
        }
    });
    // The service keeps answering during rotation.
    for _ in 0..10 {
        assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    refresher.commit().await.unwrap();
    let (report, lines) = rotation.await.unwrap();
    let report = report.unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(!report.interrupted);
    let progress = report.progress.unwrap();
    assert_eq!(progress.done, progress.total);
    assert_eq!(progress.apps, 23);
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "rotated {0}/{0} rows (apps 23, tokens {1})",
            progress.total, progress.tokens
        )
    );
    assert_eq!(report.released, ["k1", "k2"]);

    for stored_app in &apps {
        assert_under(pool, &new, stored_app, "k3").await;
    }
    let usage = secrets::key_usage(pool).await.unwrap();
    assert_eq!(usage.len(), 1, "{usage:?}");
    assert_eq!(usage[0].key_id, "k3");
    let table = keys::status_table(&usage, &["k3".into()], Some(&new));
    for id in ["k1", "k2"] {
        let line = table.lines().find(|l| l.starts_with(id)).unwrap();
        assert!(line.contains("safe to remove"), "{table}");
    }
    // k1 and k2 may now go: a ring with k3 alone passes the start-up check.
    keys::check_key_ring(pool, &ring(&[K3], "k3"), &KeySource::Setting)
        .await
        .unwrap();
}

#[tokio::test]
async fn interrupted_rotation_resumes() {
    let db = TestDatabase::create_migrated().await;
    let pool = db.pool(2).await;
    let all = ring(&[K1, K2], "k2");
    let tenant = insert_tenant(&pool).await;
    let mut apps = Vec::new();
    for n in 0..7 {
        apps.push(insert_app(&pool, &all, "k1", tenant, n).await);
    }
    // Stop after the first batch, as a killed process would.
    let first = keys::rotate(&pool, &all, 2, |_| ControlFlow::Break(()))
        .await
        .unwrap();
    assert!(first.interrupted);
    assert_eq!(first.progress.unwrap().done, 2);
    let usage = secrets::key_usage(&pool).await.unwrap();
    assert_eq!(usage_of(&usage, "k2").unwrap().app_secrets, 2);
    assert_eq!(usage_of(&usage, "k1").unwrap().app_secrets, 5);

    let rest = keys::rotate(&pool, &all, 2, |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    let progress = rest.progress.unwrap();
    assert_eq!(progress.done, progress.total);
    assert_eq!(progress.apps, 5);
    for stored_app in &apps {
        assert_under(&pool, &all, stored_app, "k2").await;
    }
    // Nothing left: a third run has nothing to do.
    let again = keys::rotate(&pool, &all, 2, |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    assert!(again.progress.is_none());
}

#[tokio::test]
async fn corrupted_rows_are_reported_and_the_rest_rotated() {
    let db = TestDatabase::create_migrated().await;
    let pool = db.pool(2).await;
    let all = ring(&[K1, K2], "k2");
    let tenant = insert_tenant(&pool).await;
    let mut apps = Vec::new();
    for n in 0..6 {
        apps.push(insert_app(&pool, &all, "k1", tenant, n).await);
    }
    let (truncated, swapped) = (apps[1].id, apps[2].id);
    // A truncated ciphertext, and one copied from another app (row swap).
    sqlx::query("update apps set secret_ciphertext = substring(secret_ciphertext from 1 for 3) where id = $1")
        .bind(truncated)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "update apps set secret_ciphertext = (select secret_ciphertext from apps where id = $2) where id = $1",
    )
    .bind(swapped)
    .bind(apps[0].id)
    .execute(&pool)
    .await
    .unwrap();

    let report = keys::rotate(&pool, &all, 2, |_| ControlFlow::Continue(()))
        .await
        .unwrap();
    let mut failed: Vec<(Uuid, String)> = report
        .failures
        .iter()
        .map(|f| (f.id, f.to_string()))
        .collect();
    failed.sort();
    let mut expected = vec![truncated, swapped];
    expected.sort();
    assert_eq!(failed.iter().map(|f| f.0).collect::<Vec<_>>(), expected);
    for (id, message) in &failed {
        assert!(
            message.starts_with(&format!("apps {id} (secret_ciphertext): ")),
            "{message}"
        );
    }
    assert!(failed.iter().any(|(_, m)| m.contains("truncated")));
    assert!(
        failed
            .iter()
            .any(|(_, m)| m.contains("copied from another row"))
    );
    assert!(
        report.released.is_empty(),
        "k1 still protects the failed rows"
    );
    for stored_app in apps
        .iter()
        .filter(|a| ![truncated, swapped].contains(&a.id))
    {
        assert_under(&pool, &all, stored_app, "k2").await;
    }
    let usage = secrets::key_usage(&pool).await.unwrap();
    assert_eq!(usage_of(&usage, "k1").unwrap().app_secrets, 1);
    assert_eq!(usage_of(&usage, "(unreadable)").unwrap().app_secrets, 1);
}

fn pg_dump() -> Command {
    let installed = std::path::Path::new("/usr/lib/postgresql/15/bin/pg_dump");
    Command::new(if installed.exists() {
        installed.as_os_str()
    } else {
        std::ffi::OsStr::new("pg_dump")
    })
}

#[tokio::test]
async fn pg_dump_holds_no_secret_or_token() {
    let db = TestDatabase::create_migrated().await;
    let pool = db.pool(2).await;
    let all = ring(&[K1], "k1");
    keys::check_key_ring(&pool, &all, &KeySource::Setting)
        .await
        .unwrap();
    let mut apps = Vec::new();
    for n in 0..4 {
        let tenant = insert_tenant(&pool).await;
        apps.push(insert_app(&pool, &all, "k1", tenant, n).await);
    }
    let out = tokio::task::spawn_blocking({
        let url = db.url();
        move || pg_dump().arg("--no-owner").arg(url).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8_lossy(&out.stdout).to_lowercase();
    // The dump does hold the apps (so the search below means something).
    let (secret_ct, _, _) = stored(&pool, apps[0].id).await;
    assert!(
        dump.contains(&hex::encode(&secret_ct)),
        "apps missing from the dump"
    );
    let plaintexts = apps.iter().flat_map(|a| {
        [Some(&a.secret), a.secondary.as_ref(), a.token.as_ref()]
            .into_iter()
            .flatten()
    });
    let mut checked = 0;
    for plain in plaintexts {
        for form in [
            plain.to_lowercase(),
            hex::encode(plain),
            BASE64.encode(plain).to_lowercase(),
        ] {
            assert!(!dump.contains(&form), "{plain} is in the dump as {form}");
        }
        checked += 1;
    }
    assert!(checked >= 8, "too few secrets stored: {checked}");
}

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn assert_refused(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected a refusal: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in: {stderr}"
    );
    assert!(
        !stderr.contains("AAECAw") && !stderr.contains("YGFiY2"),
        "key in output: {stderr}"
    );
}

#[tokio::test]
async fn service_refuses_to_start_with_the_wrong_keys() {
    let db = TestDatabase::create_migrated().await;
    let pool = db.pool(2).await;
    keys::check_key_ring(&pool, &ring(&[K1], "k1"), &KeySource::Setting)
        .await
        .unwrap();
    // The tokenvault a replica operator starts: a working directory and data
    // directory of its own (never a key file some service left behind).
    let sandbox = Sandbox::new();
    let tokenvault = || sandbox.tokenvault();
    let with = |keys: &str| {
        let mut cmd = tokenvault();
        cmd.env("DATABASE_URL", db.url())
            .env("TOKENVAULT_MASTER_KEYS", keys);
        cmd
    };
    let out = run(with(K2)).await;
    assert_refused(
        &out,
        "tokenvault: error: the database holds secrets under master key 'k1', which is not in TOKENVAULT_MASTER_KEYS",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches("error:")
            .count(),
        1
    );
    assert_refused(
        &run(with(K1_IMPOSTOR)).await,
        "master key 'k1' in TOKENVAULT_MASTER_KEYS is not the key",
    );
    // A malformed key is named by its id, never echoed (K3 without its padding).
    let out = run(with(K3.trim_end_matches('='))).await;
    assert_refused(&out, "key 'k3' is not valid standard base64");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("QEFCQ0"));
    assert_refused(
        &run(with(&format!("{K1},{K1}"))).await,
        "key id 'k1' appears twice",
    );
    let mut unknown_active = with(K1);
    unknown_active.env("TOKENVAULT_ACTIVE_KEY_ID", "k7");
    assert_refused(
        &run(unknown_active).await,
        "the active key id 'k7' is not in the key ring",
    );
    // A replica on a shared database never makes up a key of its own.
    let mut no_keys = tokenvault();
    no_keys.env("DATABASE_URL", db.url());
    assert_refused(
        &run(no_keys).await,
        "no master key configured: set TOKENVAULT_MASTER_KEYS",
    );
}

#[tokio::test]
async fn keys_commands_rotate_and_report() {
    let db = TestDatabase::create_migrated().await;
    let pool = db.pool(2).await;
    let all = ring(&[K1, K2], "k1");
    let tenant = insert_tenant(&pool).await;
    let mut apps = Vec::new();
    for n in 0..5 {
        apps.push(insert_app(&pool, &all, "k1", tenant, n).await);
    }
    let sandbox = Sandbox::new();
    let keys_cmd = |args: &[&str]| {
        let mut cmd = sandbox.tokenvault();
        cmd.env("DATABASE_URL", db.url())
            .env("TOKENVAULT_MASTER_KEYS", format!("{K1},{K2}"))
            .env("TOKENVAULT_ACTIVE_KEY_ID", "k2")
            .arg("keys")
            .args(args);
        cmd
    };
    let out = run(keys_cmd(&["rotate", "--batch-size", "2"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("rotated 2/8 rows (apps 2, tokens 0)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("rotated 8/8 rows (apps 5, tokens 3)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("every stored secret and token is under master key 'k2'"),
        "{stderr}"
    );
    for stored_app in &apps {
        assert_under(&pool, &all, stored_app, "k2").await;
    }

    let out = run(keys_cmd(&["status"])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let line = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_string()
    };
    assert!(line("k1").contains("safe to remove"), "{table}");
    assert!(line("k2").contains("active"), "{table}");
    assert!(line("k2").contains(" 5 "), "{table}");

    let out = run(keys_cmd(&["generate", "--id", "k3"])).await;
    let entry = String::from_utf8_lossy(&out.stdout);
    assert!(KeyRing::parse(entry.trim()).unwrap().contains("k3"));
}
