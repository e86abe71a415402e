//! Registering a WeCom app in the web UI against the simulator: the form
//! offers WeChat app / WeCom app, names a wrong corpid or `AgentId` next to its
//! field, and registers the app under `{corpid}-{agentid}`.

use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

use crate::helpers::{get_with_key, spawn_app_with_sim};
use crate::refresh::json_of;
use crate::ui::{csrf_of, page};

const CORP: &str = "ww00000000000000aa";
const SECRET: &str = "Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd";

#[tokio::test]
async fn a_wecom_app_is_registered_in_the_ui() {
    let sim = WeChatSimulator::start(SimConfig::default()).unwrap();
    sim.wecom().add(CORP, SECRET);
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Work Co", "o@work.test").await;
    let url = |p: &str| format!("{}{p}", app.address);
    let (status, form) = page(owner.client.get(url("/apps/new")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(form.contains("WeChat app") && form.contains("WeCom app (企业微信)"));
    assert!(form.contains("name=\"corpid\"") && form.contains("name=\"agentid\""));
    let csrf = csrf_of(&form);
    let post = |fields: Vec<(&'static str, String)>| {
        let req = owner.client.post(url("/apps/new")).form(&fields);
        async move { page(req.send().await.unwrap()).await }
    };

    let (status, html) = post(vec![
        ("csrf_token", csrf.clone()),
        ("kind", "wecom".into()),
        ("corpid", "ww-nope".into()),
        ("agentid", "abc".into()),
        ("secret", "short".into()),
    ])
    .await;
    assert_eq!(status, 422);
    for field in ["corpid", "agentid", "secret"] {
        assert!(html.contains(&format!("id=\"e-{field}\"")), "{field}");
    }
    assert!(html.contains("value=\"ww-nope\""), "typed values kept");
    assert!(!html.contains("value=\"short\""), "never the secret");
    assert!(
        !html.contains("id=\"e-appid\""),
        "no AppID asked of a WeCom app"
    );

    let (status, html) = post(vec![
        ("csrf_token", csrf.clone()),
        ("kind", "wecom".into()),
        ("corpid", CORP.to_uppercase().replace("WW", "ww")),
        ("agentid", "1000002".into()),
        ("secret", SECRET.into()),
        ("name", "Approvals".into()),
    ])
    .await;
    assert_eq!(status, 200, "{html}");
    let id = format!("{CORP}-1000002");
    assert!(html.contains(&id), "the app page");
    assert!(html.contains("badge-healthy"), "{html}");
    assert!(!html.contains(SECRET));

    // Its token over REST with a key limited to it, WeCom's current one.
    let key = owner
        .create_key(serde_json::json!({ "name": "work", "apps": [id] }))
        .await;
    let key = key["key"].as_str().unwrap();
    let token =
        json_of(get_with_key(&app.address, &format!("/api/v1/apps/{id}/token"), key).await).await;
    assert_eq!(
        token["access_token"],
        sim.wecom().current_token(CORP, SECRET).unwrap()
    );

    // Its page shows WeCom's tickets like WeChat's: the company's (jsapi) and
    // the app's (agent_config), never wx_card; a read turns one on, and the
    // page shows its state and expiry, never the ticket.
    let app_page = url(&format!("/apps/{id}"));
    let (_, html) = page(owner.client.get(&app_page).send().await.unwrap()).await;
    assert!(html.contains("wx.agentConfig"), "WeCom's lead");
    assert!(html.contains("<code>jsapi</code>") && html.contains("<code>agent_config</code>"));
    assert!(!html.contains("<code>wx_card</code>"));
    assert_eq!(
        html.matches("not kept (the first read").count(),
        2,
        "{html}"
    );
    let ticket = json_of(
        get_with_key(
            &app.address,
            &format!("/api/v1/apps/{id}/tickets/agent_config"),
            key,
        )
        .await,
    )
    .await;
    let ticket = ticket["ticket"].as_str().unwrap();
    let (_, html) = page(owner.client.get(&app_page).send().await.unwrap()).await;
    assert_eq!(
        html.matches("not kept (the first read").count(),
        1,
        "agent_config is kept now"
    );
    assert!(html.contains("kept fresh"), "{html}");
    assert!(!html.contains(ticket), "never the ticket");
    sim.stop().await;
}
