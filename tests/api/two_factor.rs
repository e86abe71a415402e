//! Two-factor sign-in over the JSON API: enrolment, sign-in with a code and
//! with recovery codes, every bad input (wrong, reused and replayed codes, a
//! recovery code used twice, a wrong password), the throttle, the audit
//! log, the organisation's requirement, and key rotation of the secrets.

use serde_json::{Value, json};
use tokenvault::crypto::Binding;
use tokenvault::db::secrets;
use tokenvault::domain::UserId;

use crate::helpers::totp::{code_at_step, current_step, next_code};
use crate::helpers::{Browser, PASSWORD, spawn_app, spawn_app_with_settings};

async fn api_login(app: &crate::helpers::TestApp, email: &str, totp: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "email": email, "password": PASSWORD });
    if let Some(code) = totp {
        body["totp"] = json!(code);
    }
    let res = app.browser().post_json("/api/v1/login", &body).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// An app whose sign-in throttle leaves room for a story's many attempts.
async fn app_with_room() -> crate::helpers::TestApp {
    let mut settings = crate::helpers::default_settings();
    settings.login_attempts_per_account = 1000;
    settings.login_attempts_per_address = 100_000;
    spawn_app_with_settings(settings).await
}

async fn actions(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar("select action from audit_log order by id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn post(b: &Browser, path: &str, body: &Value) -> (u16, Value) {
    let res = b.post_json(path, body).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn enrol_then_sign_in_with_codes_once_each() {
    let app = app_with_room().await;
    let owner = app.signup("Two Co", "o@two.test").await;

    let (status, enrolment) = post(&owner, "/api/v1/account/totp", &json!({})).await;
    assert_eq!(status, 200, "{enrolment}");
    let secret = enrolment["secret"].as_str().unwrap().to_string();
    let uri = enrolment["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/tokenvault:o%40two.test?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    // Not on yet: signing in needs no code.
    assert_eq!(api_login(&app, "o@two.test", None).await.0, 200);

    // Wrong and malformed codes do not confirm.
    let now = current_step();
    // The current step's code: still accepted if a step passes before the
    // confirmation arrives (one step either way).
    let right = code_at_step(&secret, now);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for bad in [wrong, "", "12345", "abcdef", "1234567", "<script>"] {
        let (status, problem) = post(
            &owner,
            "/api/v1/account/totp/confirm",
            &json!({ "code": bad }),
        )
        .await;
        assert_eq!(status, 422, "{bad:?}: {problem}");
        assert_eq!(problem["errors"][0]["code"], "wrong_code");
    }
    let (status, _) = post(&owner, "/api/v1/account/totp/confirm", &json!({})).await;
    assert_eq!(status, 422, "a missing code");
    let (status, body) = post(
        &owner,
        "/api/v1/account/totp/confirm",
        &json!({ "code": right }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let recovery: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    let distinct: std::collections::HashSet<_> = recovery.iter().collect();
    assert_eq!(distinct.len(), 10);
    // Confirmed once; enrolling again while on is refused.
    let (status, problem) = post(
        &owner,
        "/api/v1/account/totp/confirm",
        &json!({ "code": right }),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("totp_not_enrolling"))
    );
    let (status, problem) = post(&owner, "/api/v1/account/totp", &json!({})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("totp_enabled"))
    );

    // Nothing stored in clear: neither the secret nor a recovery code.
    let (ciphertext, codes): (Vec<u8>, i64) = sqlx::query_as(
        "select secret_ciphertext, (select count(*) from totp_recovery_codes) from user_totp",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(codes, 10);
    let raw = totp_rs::Secret::try_from_base32(&secret).unwrap().to_vec();
    assert!(!ciphertext.windows(raw.len()).any(|w| w == raw.as_slice()));
    assert!(!String::from_utf8_lossy(&ciphertext).contains(&secret));
    let dump: String = sqlx::query_scalar(
        "select string_agg(encode(code_hash, 'escape'), '') from totp_recovery_codes",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(recovery.iter().all(|c| !dump.contains(c.as_str())));

    // With it on: the password alone answers totp_required.
    let (status, problem) = api_login(&app, "o@two.test", None).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("totp_required"))
    );
    // A wrong password with a good code: the usual refusal, no hint.
    let res = app
        .browser()
        .post_json(
            "/api/v1/login",
            &json!({ "email": "o@two.test", "password": "not the password 1", "totp": code_at_step(&secret, now + 1) }),
        )
        .await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "unauthenticated"
    );
    // The code that confirmed is spent (replayed: refused), so is a wrong one.
    let (status, problem) = api_login(&app, "o@two.test", Some(&right)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    assert_eq!(api_login(&app, "o@two.test", Some(wrong)).await.0, 401);
    // The next step's code signs in, once.
    let code = next_code(&app.pool, "o@two.test").await;
    let (status, body) = api_login(&app, "o@two.test", Some(&code)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = api_login(&app, "o@two.test", Some(&code)).await;
    assert_eq!(status, 401, "a code is taken once");

    // A recovery code works once, typed any way.
    let typed = recovery[0].to_uppercase().replace('-', " ");
    assert_eq!(api_login(&app, "o@two.test", Some(&typed)).await.0, 200);
    assert_eq!(
        api_login(&app, "o@two.test", Some(&recovery[0])).await.0,
        401
    );

    let log = actions(&app.pool).await;
    for action in ["totp.enabled", "totp.failed", "totp.recovery_code_used"] {
        assert!(log.iter().any(|a| a == action), "{action} in {log:?}");
    }
    let failed = log.iter().filter(|a| *a == "totp.failed").count();
    assert!(failed >= 9, "every refused code is audited: {log:?}");
}

#[tokio::test]
async fn recovery_codes_are_replaced_and_turning_off_needs_password_and_code() {
    let app = app_with_room().await;
    let owner = app.signup("Off Co", "o@off.test").await;
    let (_secret, old) = owner.enrol_totp().await;

    // New recovery codes need a current code (not a recovery code).
    let (status, _) = post(
        &owner,
        "/api/v1/account/totp/recovery-codes",
        &json!({ "code": old[1] }),
    )
    .await;
    assert_eq!(status, 422);
    let code = next_code(&app.pool, "o@off.test").await;
    let (status, body) = post(
        &owner,
        "/api/v1/account/totp/recovery-codes",
        &json!({ "code": code }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let new: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(new.len(), 10);
    assert_eq!(
        api_login(&app, "o@off.test", Some(&old[2])).await.0,
        401,
        "old codes stop"
    );
    assert_eq!(api_login(&app, "o@off.test", Some(&new[0])).await.0, 200);

    // Turning it off: a wrong password, then a wrong code, are refused.
    let delete = |body: Value| {
        let owner = &owner;
        async move {
            let res = owner
                .client
                .delete(format!("{}/api/v1/account/totp", owner.address))
                .header("X-CSRF-Token", &owner.csrf)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, problem) =
        delete(json!({ "password": "wrong password 123", "code": new[1] })).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "password");
    let (status, problem) = delete(json!({ "password": PASSWORD, "code": "000000x" })).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "code");
    let (status, _) = delete(json!({ "password": PASSWORD, "code": new[0] })).await;
    assert_eq!(status, 422, "a used recovery code");
    let (status, _) = delete(json!({ "password": PASSWORD, "code": new[1] })).await;
    assert_eq!(status, 204);
    let (status, problem) = delete(json!({ "password": PASSWORD, "code": new[2] })).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("totp_not_enabled"))
    );
    assert_eq!(
        api_login(&app, "o@off.test", None).await.0,
        200,
        "off again"
    );
    let left: i64 = sqlx::query_scalar("select count(*) from totp_recovery_codes")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let log = actions(&app.pool).await;
    for action in ["totp.recovery_codes_regenerated", "totp.disabled"] {
        assert!(log.iter().any(|a| a == action), "{action} in {log:?}");
    }
}

#[tokio::test]
async fn wrong_codes_are_throttled_like_passwords() {
    let mut settings = crate::helpers::default_settings();
    settings.login_attempts_per_account = 4;
    let app = spawn_app_with_settings(settings).await;
    let owner = app.signup("Slow Co", "o@slow.test").await;
    owner.enrol_totp().await;
    // Each sign-in counts twice (the right password, then the wrong code):
    // refused by the third at the latest. Were codes not counted, the
    // password checks alone would let four through.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(api_login(&app, "o@slow.test", Some("000000")).await.0);
    }
    let first_refused = statuses.iter().position(|s| *s == 429);
    assert!(first_refused.is_some_and(|i| i < 3), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| [401, 429].contains(s)),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn owners_require_two_factor_sign_in_of_every_member() {
    let app = app_with_room().await;
    let owner = app.signup("Strict Co", "o@strict.test").await;
    let admin = app.invite_and_join(&owner, "admin", "a@strict.test").await;
    let viewer = app.invite_and_join(&owner, "viewer", "v@strict.test").await;

    for (who, body) in [
        (&admin, json!({ "require_totp": true })),
        (&viewer, json!({ "require_totp": true })),
    ] {
        assert_eq!(
            who.patch_json("/api/v1/organization", &body).await.status(),
            403
        );
    }
    for bad in [
        json!({}),
        json!({ "require_totp": "yes" }),
        json!({ "require_totp": true, "x": 1 }),
    ] {
        assert_eq!(
            owner
                .patch_json("/api/v1/organization", &bad)
                .await
                .status(),
            422,
            "{bad}"
        );
    }
    let res = owner
        .patch_json("/api/v1/organization", &json!({ "require_totp": true }))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({ "require_totp": true })
    );

    // Sessions from before stay; at the next sign-in the viewer must enrol
    // and can do nothing else until then.
    assert_eq!(viewer.get("/api/v1/apps").await.status(), 200);
    let viewer = app.login("v@strict.test", PASSWORD).await;
    let res = viewer.get("/api/v1/apps").await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "totp_enrollment_required"
    );
    assert_eq!(viewer.get("/api/v1/audit-log").await.status(), 403);
    assert_eq!(viewer.get("/api/v1/session").await.status(), 200);
    viewer.enrol_totp().await;
    assert_eq!(viewer.get("/api/v1/apps").await.status(), 200);
    // Required: it cannot be turned off.
    let code = next_code(&app.pool, "v@strict.test").await;
    let res = viewer
        .client
        .delete(format!("{}/api/v1/account/totp", viewer.address))
        .header("X-CSRF-Token", &viewer.csrf)
        .json(&json!({ "password": PASSWORD, "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "totp_required");
    // Next time the viewer signs in with a code.
    assert_eq!(api_login(&app, "v@strict.test", None).await.0, 401);

    // Someone who joins now, through an invite, must enrol first as well:
    // joining starts the same enrolment-only session as signing in.
    let joined = app
        .invite_and_join(&owner, "admin", "late@strict.test")
        .await;
    let res = joined.get("/api/v1/apps").await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "totp_enrollment_required"
    );

    let changed: i64 = sqlx::query_scalar(
        "select count(*) from audit_log where action = 'tenant.totp_policy_changed'
            and detail = '{\"require_totp\": true}'::jsonb",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(changed, 1);
}

#[tokio::test]
async fn key_rotation_re_encrypts_the_secrets() {
    let app = spawn_app().await;
    let owner = app.signup("Keys Co", "o@keys.test").await;
    let (secret, _) = owner.enrol_totp().await;
    let (user_id, before): (uuid::Uuid, Vec<u8>) =
        sqlx::query_as("select user_id, secret_ciphertext from user_totp")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let under = |usage: &[secrets::KeyUsage], key: &str| {
        usage
            .iter()
            .find(|u| u.key_id == key)
            .map_or(0, |u| u.totp_secrets)
    };
    let usage = secrets::key_usage(&app.pool).await.unwrap();
    assert_eq!(under(&usage, "t1"), 1);

    let new = crate::helpers::test_key_ring().with_active("t2").unwrap();
    let report =
        tokenvault::keys::rotate(&app.pool, &new, 10, |_| std::ops::ControlFlow::Continue(()))
            .await
            .unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let usage = secrets::key_usage(&app.pool).await.unwrap();
    assert_eq!((under(&usage, "t1"), under(&usage, "t2")), (0, 1));
    let after: Vec<u8> = sqlx::query_scalar("select secret_ciphertext from user_totp")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(after, before);
    let binding = Binding::totp_secret(UserId::from(user_id));
    let plain = new.decrypt(&after, &binding).unwrap();
    assert_eq!(totp_rs::Secret::from(plain.to_vec()).to_base32(), secret);
    // Bound to its person: another user's binding does not decrypt it.
    assert!(
        new.decrypt(&after, &Binding::totp_secret(UserId::new()))
            .is_err()
    );
}
