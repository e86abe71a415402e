//! Alerts against real HTTP receivers started by the tests: exactly one
//! signed `app.failing` and one `app.recovered` with two replicas running,
//! damping of a flapping app, retries with a stable delivery id, robots'
//! 200-with-error answers counted as failures, and the target rules.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokenvault::config::Settings;
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::apps::{APPID, OTHER_SECRET, SECRET};
use crate::helpers::{Browser, sim_settings, spawn_app, spawn_app_with_settings};
use crate::refresh::{json_of, register};

/// One request a receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// What the receiver has got, and the answers it gives next (then 200 `{"errcode":0}`).
#[derive(Default)]
struct Inbox {
    got: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<(u16, String)>>,
    /// How many of the next requests are held (answered after two minutes).
    holds: std::sync::atomic::AtomicUsize,
}

/// A real HTTP receiver on 127.0.0.1 that records every request.
pub(crate) struct Receiver {
    pub(crate) base: String,
    inbox: Arc<Inbox>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub(crate) fn start() -> Self {
        let inbox = Arc::new(Inbox::default());
        let shared = web::Data::from(inbox.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base: format!("http://127.0.0.1:{port}"),
            inbox,
            server: handle,
        }
    }

    /// Answer the next requests with these, in order.
    pub(crate) fn script(&self, answers: &[(u16, &str)]) {
        let mut script = self.inbox.script.lock().unwrap();
        script.extend(answers.iter().map(|(s, b)| (*s, (*b).to_string())));
    }

    /// Hold the next `n` requests: recorded, then answered only after two
    /// minutes (longer than any test waits).
    pub(crate) fn hold(&self, n: usize) {
        self.inbox
            .holds
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    pub(crate) fn got(&self, path: &str) -> Vec<Received> {
        let got = self.inbox.got.lock().unwrap();
        got.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// Wait until `path` got `n` requests (at most `within`).
    pub(crate) async fn wait_for(&self, path: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.got(path);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, inbox: web::Data<Inbox>) -> HttpResponse {
    inbox.got.lock().unwrap().push(Received {
        path: req.path().to_string(),
        query: req.query_string().to_string(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: body.to_vec(),
    });
    let held = inbox
        .holds
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        )
        .is_ok();
    if held {
        tokio::time::sleep(Duration::from_secs(120)).await;
    }
    let (status, answer) = inbox
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or((200, r#"{"errcode":0,"errmsg":"ok"}"#.into()));
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(answer)
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// The webhook signature as a receiver checks it (DESIGN: HMAC-SHA256 over
/// `timestamp + "." + raw body`).
pub(crate) fn assert_signed(r: &Received, secret: &str) {
    let ts = r
        .header("X-Tokenvault-Timestamp")
        .expect("timestamp header");
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - ts.parse::<i64>().unwrap()).abs() < 300,
        "fresh timestamp"
    );
    let mut signed = format!("{ts}.").into_bytes();
    signed.extend_from_slice(&r.body);
    let expected = format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &signed))
    );
    assert_eq!(r.header("X-Tokenvault-Signature"), Some(expected.as_str()));
}

/// Settings of a replica that talks to the simulator and may send alerts to
/// the receivers on 127.0.0.1, retrying after a second.
pub(crate) fn alert_settings(wechat: &str) -> Settings {
    let mut s = sim_settings(wechat);
    s.alerts.allow_private_targets = true;
    s.alerts.poll_seconds = 1;
    s.alerts.retry_base_seconds = 1;
    s.alerts.summary_gather_seconds = 1;
    s.public_url = Some("https://vault.example.com".parse().unwrap());
    s
}

async fn create_channel(owner: &Browser, body: Value) -> Value {
    let res = owner.post_json("/api/v1/alert-channels", &body).await;
    assert_eq!(res.status(), 201, "{body}");
    json_of(res).await
}

pub(crate) const HOOK_SECRET: &str = "whsec-0123456789";

#[tokio::test]
async fn two_replicas_send_one_signed_failing_then_one_recovered_alert_and_damp_flapping() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    sim.add_app(APPID, SECRET);
    let receiver = Receiver::start();
    let app = spawn_app_with_settings(alert_settings(&sim.base_url())).await;
    app.spawn_replica_with(alert_settings(&sim.base_url()))
        .await;
    let owner = app.signup("Alerted Co", "o@alerted.test").await;
    let hook = create_channel(
        &owner,
        json!({ "kind": "webhook", "name": "ops", "url": format!("{}/hook", receiver.base),
                "secret": HOOK_SECRET }),
    )
    .await;
    assert_eq!(hook["signed"], true);
    assert!(hook.get("secret").is_none(), "{hook}");
    create_channel(
        &owner,
        json!({ "kind": "wecom", "name": "group", "url": format!("{}/wecom?key=k-1", receiver.base) }),
    )
    .await;

    // A wrong secret: WeChat answers 40001 on every attempt of both replicas.
    let body = register(&owner, json!({ "appid": APPID, "secret": OTHER_SECRET })).await;
    assert_eq!(body["health"], "failing", "{body}");
    let failing = receiver.wait_for("/hook", 1, Duration::from_secs(10)).await;
    assert_eq!(failing.len(), 1);
    let alert = &failing[0];
    assert_signed(alert, HOOK_SECRET);
    assert_eq!(alert.header("X-Tokenvault-Event"), Some("app.failing"));
    let json = alert.json();
    assert_eq!(json["type"], "app.failing");
    assert_eq!(json["id"].as_str(), alert.header("X-Tokenvault-Delivery"));
    assert_eq!(json["organization"], "Alerted Co");
    assert_eq!(json["app"]["appid"], APPID);
    assert_eq!(json["errcode"], 40001);
    assert!(
        json["explanation"]["fix_en"].as_str().unwrap().len() > 10,
        "{json}"
    );
    assert!(json["explanation"]["meaning_zh"].is_string(), "{json}");
    assert_eq!(
        json["url"],
        format!("https://vault.example.com/apps/{APPID}")
    );
    let robot = receiver.wait_for("/wecom", 1, Duration::from_secs(5)).await;
    let robot = robot[0].json();
    assert_eq!(robot["msgtype"], "markdown");
    let text = robot["markdown"]["content"].as_str().unwrap();
    assert!(text.contains(APPID) && text.contains("40001"), "{text}");

    // Several retries later (2 s apart, two replicas): still one message each.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(receiver.got("/hook").len(), 1);
    assert_eq!(receiver.got("/wecom").len(), 1);

    // Fixed: one recovery each.
    let res = owner
        .patch_json(
            &format!("/api/v1/apps/{APPID}"),
            &json!({ "secret": SECRET }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let both = receiver.wait_for("/hook", 2, Duration::from_secs(15)).await;
    assert_eq!(both.len(), 2);
    assert_signed(&both[1], HOOK_SECRET);
    assert_eq!(both[1].json()["type"], "app.recovered");
    assert_ne!(
        both[0].header("X-Tokenvault-Delivery"),
        both[1].header("X-Tokenvault-Delivery")
    );
    receiver.wait_for("/wecom", 2, Duration::from_secs(5)).await;

    // Flapping within the damping window: broken and fixed again, no new message.
    let res = owner
        .patch_json(
            &format!("/api/v1/apps/{APPID}"),
            &json!({ "secret": OTHER_SECRET }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while json_of(owner.get(&format!("/api/v1/apps/{APPID}")).await).await["health"] != "failing" {
        assert!(Instant::now() < deadline, "the broken secret fails again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let res = owner
        .patch_json(
            &format!("/api/v1/apps/{APPID}"),
            &json!({ "secret": SECRET }),
        )
        .await;
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(receiver.got("/hook").len(), 2, "damped");
    assert_eq!(receiver.got("/wecom").len(), 2, "damped");

    // The delivery log says how each went.
    let id = hook["id"].as_str().unwrap();
    let log = json_of(
        owner
            .get(&format!("/api/v1/alert-channels/{id}/deliveries"))
            .await,
    )
    .await;
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{log}");
    assert!(
        items
            .iter()
            .all(|d| d["status"] == "delivered" && d["http_status"] == 200)
    );
}

#[tokio::test]
async fn a_failing_target_gets_the_same_delivery_id_until_it_accepts() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    let receiver = Receiver::start();
    let app = spawn_app_with_settings(alert_settings(&sim.base_url())).await;
    app.spawn_replica_with(alert_settings(&sim.base_url()))
        .await;
    let owner = app.signup("Retry Co", "o@retry.test").await;
    let hook = create_channel(
        &owner,
        json!({ "kind": "webhook", "name": "flaky", "url": format!("{}/flaky", receiver.base),
                "secret": HOOK_SECRET }),
    )
    .await;
    receiver.script(&[(500, "boom"), (500, "boom"), (500, "boom")]);
    let id = hook["id"].as_str().unwrap();
    let res = owner
        .post_json(&format!("/api/v1/alert-channels/{id}/test"), &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let first = json_of(res).await;
    assert_eq!(first["status"], "pending", "{first}");
    assert_eq!(first["http_status"], 500);
    assert_eq!(first["answer"], "boom");
    // Retries after 1, 2 and 4 seconds.
    let got = receiver
        .wait_for("/flaky", 4, Duration::from_secs(20))
        .await;
    assert_eq!(got.len(), 4);
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.header("X-Tokenvault-Delivery").unwrap())
        .collect();
    assert!(
        ids.iter().all(|i| *i == first["id"].as_str().unwrap()),
        "{ids:?}"
    );
    for r in &got {
        assert_signed(r, HOOK_SECRET);
        assert_eq!(r.json()["type"], "test");
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        receiver.got("/flaky").len(),
        4,
        "nothing after it was accepted"
    );
    let log = json_of(
        owner
            .get(&format!("/api/v1/alert-channels/{id}/deliveries"))
            .await,
    )
    .await;
    assert_eq!(log["items"][0]["status"], "delivered", "{log}");
    assert_eq!(log["items"][0]["attempts"], 4);
}

#[tokio::test]
async fn robots_are_signed_their_way_and_their_error_answers_are_failures() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    let receiver = Receiver::start();
    let app = spawn_app_with_settings(alert_settings(&sim.base_url())).await;
    let owner = app.signup("Robot Co", "o@robot.test").await;
    let ding = create_channel(
        &owner,
        json!({ "kind": "dingtalk", "name": "ding",
                "url": format!("{}/robot/send?access_token=t0", receiver.base), "secret": "SECding" }),
    )
    .await;
    receiver.script(&[(200, r#"{"errcode":310000,"errmsg":"sign not match"}"#)]);
    let res = owner
        .post_json(
            &format!(
                "/api/v1/alert-channels/{}/test",
                ding["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    let test = json_of(res).await;
    assert_eq!(test["status"], "pending", "{test}");
    assert!(test["error"].as_str().unwrap().contains("310000"), "{test}");
    let got = receiver
        .wait_for("/robot/send", 2, Duration::from_secs(10))
        .await;
    assert_eq!(got.len(), 2);
    // DingTalk: timestamp in ms and sign in the query; HMAC key = secret.
    let query: Vec<(String, String)> = url::form_urlencoded::parse(got[1].query.as_bytes())
        .into_owned()
        .collect();
    let param = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(param("access_token"), "t0");
    let ts = param("timestamp");
    assert!(ts.len() >= 13, "milliseconds: {ts}");
    let expected = base64::engine::general_purpose::STANDARD
        .encode(hmac_sha256(b"SECding", format!("{ts}\nSECding").as_bytes()));
    assert_eq!(param("sign"), expected);
    assert_eq!(got[1].json()["msgtype"], "markdown");

    // Feishu: timestamp in seconds and sign in the body; HMAC key = timestamp\nsecret.
    let feishu = create_channel(
        &owner,
        json!({ "kind": "feishu", "name": "fs",
                "url": format!("{}/open-apis/bot/v2/hook/abc", receiver.base), "secret": "fs-secret" }),
    )
    .await;
    assert_eq!(
        feishu["url"],
        format!("{}/open-apis/bot/v2/hook/***", receiver.base)
    );
    receiver.script(&[(200, r#"{"code":0,"msg":"success"}"#)]);
    let res = owner
        .post_json(
            &format!(
                "/api/v1/alert-channels/{}/test",
                feishu["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    let test = json_of(res).await;
    assert_eq!(test["status"], "delivered", "{test}");
    let body = receiver.got("/open-apis/bot/v2/hook/abc")[0].json();
    let ts = body["timestamp"].as_str().unwrap();
    let expected = base64::engine::general_purpose::STANDARD
        .encode(hmac_sha256(format!("{ts}\nfs-secret").as_bytes(), b""));
    assert_eq!(body["sign"], expected);
    assert_eq!(body["msg_type"], "text");
}

#[tokio::test]
async fn targets_and_fields_are_checked_and_viewers_see_no_secret() {
    let app = spawn_app().await;
    let owner = app.signup("Rules Co", "o@rules.test").await;
    let refused = |url: &str, code: &'static str| {
        let body = json!({ "kind": "webhook", "name": "x", "url": url });
        let owner = &owner;
        async move {
            let res = owner.post_json("/api/v1/alert-channels", &body).await;
            assert_eq!(res.status(), 422, "{body}");
            let problem = json_of(res).await;
            assert_eq!(problem["errors"][0]["field"], "url", "{problem}");
            assert_eq!(problem["errors"][0]["code"], code, "{problem}");
        }
    };
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost:8080/hook",
        "http://[::1]:8080/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hook",
        "http://192.168.1.10:8443/",
        "http://[fd00::1]:8080/",
    ] {
        refused(url, "forbidden_target").await;
    }
    refused("https://user:pw@example.com/", "credentials_in_url").await;
    refused("gopher://example.com/", "invalid_scheme").await;
    refused("https://example.com:25/", "invalid_port").await;
    let res = owner
        .post_json(
            "/api/v1/alert-channels",
            &json!({ "kind": "sms", "name": "", "url": "x", "secret": "s".repeat(201),
                     "events": ["app.nope"], "apps": ["wx0000000000000001"] }),
        )
        .await;
    assert_eq!(res.status(), 422);
    let problem = json_of(res).await;
    let fields: Vec<_> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    for f in ["kind", "name", "url", "secret", "events", "apps"] {
        assert!(fields.iter().any(|x| x == f), "{f} in {problem}");
    }
    let res = owner
        .post_json(
            "/api/v1/alert-channels",
            &json!({ "kind": "wecom", "name": "w", "url": "https://93.184.216.34/send?key=1", "secret": "x" }),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(json_of(res).await["errors"][0]["field"], "secret");

    // A channel at a public name (no request is sent at creation).
    let hook = create_channel(
        &owner,
        json!({ "kind": "webhook", "name": "public", "url": "https://93.184.216.34/hook?token=quokka-zebra",
                "secret": "s3cret-value" }),
    )
    .await;
    assert_eq!(hook["url"], "https://93.184.216.34/hook?token=***");
    let viewer = app.invite_and_join(&owner, "viewer", "v@rules.test").await;
    let list = json_of(viewer.get("/api/v1/alert-channels").await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // (A value no id could contain: "abc" can be part of any uuid.)
    assert!(!list.to_string().contains("s3cret-value") && !list.to_string().contains("quokka"));
    let res = viewer
        .post_json(
            "/api/v1/alert-channels",
            &json!({ "kind": "webhook", "name": "v", "url": "https://93.184.216.34/" }),
        )
        .await;
    assert_eq!(res.status(), 403);
    let id = hook["id"].as_str().unwrap();
    assert_eq!(
        viewer
            .delete(&format!("/api/v1/alert-channels/{id}"))
            .await
            .status(),
        403
    );
    assert_eq!(
        owner
            .delete(&format!("/api/v1/alert-channels/{id}"))
            .await
            .status(),
        204
    );
    assert_eq!(
        owner
            .delete(&format!("/api/v1/alert-channels/{id}"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn channel_urls_and_secrets_are_stored_encrypted_and_rotated_with_the_key_ring() {
    use tokenvault::crypto::Binding;
    use tokenvault::db::secrets;
    use tokenvault::domain::{AlertChannelId, TenantId};

    let app = spawn_app().await;
    let owner = app.signup("Keys Co", "o@keys.test").await;
    let url = "https://93.184.216.34/cgi-bin/webhook/send?key=robot-key-123";
    let hook = create_channel(
        &owner,
        json!({ "kind": "webhook", "name": "k", "url": url, "secret": "signing-secret-xyz" }),
    )
    .await;
    let (tenant, id, url_ct, secret_ct): (uuid::Uuid, uuid::Uuid, Vec<u8>, Vec<u8>) =
        sqlx::query_as(
            "select tenant_id, id, url_ciphertext, secret_ciphertext from alert_channels",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(id.to_string(), hook["id"].as_str().unwrap());
    for plain in ["robot-key-123", "signing-secret-xyz"] {
        let stored: i64 = sqlx::query_scalar(
            "select count(*) from alert_channels
              where position(convert_to($1, 'UTF8') in url_ciphertext) > 0
                 or position(convert_to($1, 'UTF8') in secret_ciphertext) > 0
                 or url_display like '%' || $1 || '%'",
        )
        .bind(plain)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(stored, 0, "{plain} stored in plain text");
    }
    let usage = secrets::key_usage(&app.pool).await.unwrap();
    let under = |key: &str| {
        usage
            .iter()
            .find(|u| u.key_id == key)
            .map_or(0, |u| u.alert_secrets)
    };
    assert_eq!(under("t1"), 2);

    let new = crate::helpers::test_key_ring().with_active("t2").unwrap();
    let report = keys_rotate(&app.pool, &new).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let usage = secrets::key_usage(&app.pool).await.unwrap();
    let under = |key: &str| {
        usage
            .iter()
            .find(|u| u.key_id == key)
            .map_or(0, |u| u.alert_secrets)
    };
    assert_eq!((under("t1"), under("t2")), (0, 2));
    let (rotated_url, rotated_secret): (Vec<u8>, Vec<u8>) =
        sqlx::query_as("select url_ciphertext, secret_ciphertext from alert_channels")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_ne!(rotated_url, url_ct);
    assert_ne!(rotated_secret, secret_ct);
    let (tenant, id) = (TenantId::from(tenant), AlertChannelId::from(id));
    let plain = new
        .decrypt(&rotated_url, &Binding::alert_url(tenant, id))
        .unwrap();
    assert_eq!(plain.as_slice(), url.as_bytes());
    let plain = new
        .decrypt(&rotated_secret, &Binding::alert_secret(tenant, id))
        .unwrap();
    assert_eq!(plain.as_slice(), b"signing-secret-xyz");
    // Bound to its field: the URL's ciphertext is no secret's.
    assert!(
        new.decrypt(&rotated_url, &Binding::alert_secret(tenant, id))
            .is_err()
    );
}

async fn keys_rotate(
    pool: &sqlx::PgPool,
    ring: &tokenvault::crypto::KeyRing,
) -> tokenvault::keys::RotationReport {
    tokenvault::keys::rotate(pool, ring, 10, |_| std::ops::ControlFlow::Continue(()))
        .await
        .unwrap()
}
