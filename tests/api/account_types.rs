//! A WeChat app is labelled a mini-program (the default) or an official
//! account: chosen when it is registered over the API or on the form, changed
//! with PATCH or on the app page, shown as a badge in both languages. WeCom
//! apps have no such label, and a label for one is refused by name.

use serde_json::json;
use tokenvault::upstream::simulator::SimConfig;

use crate::apps::{APPID, OTHER_SECRET, SECRET, json_of, with_owner};
use crate::ui::{csrf_of, page};

const OFFICIAL: &str = "wx00000000000000ff";
const CORP: &str = "ww0123456789abcdef";
const WECOM_SECRET: &str = "Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd";

#[tokio::test]
async fn the_api_labels_apps_and_refuses_a_label_for_wecom() {
    let (sim, _app, owner) = with_owner(SimConfig::fast(), "Label Co", "o@label.test").await;
    sim.add_app(OFFICIAL, OTHER_SECRET);
    sim.wecom().add(CORP, WECOM_SECRET);

    let mini = owner
        .post_json("/api/v1/apps", &json!({ "appid": APPID, "secret": SECRET }))
        .await;
    assert_eq!(mini.status(), 201);
    assert_eq!(json_of(mini).await["account_type"], "mini_program");
    let official = owner
        .post_json(
            "/api/v1/apps",
            &json!({ "appid": OFFICIAL, "secret": OTHER_SECRET, "account_type": "official_account" }),
        )
        .await;
    assert_eq!(official.status(), 201);
    let official = json_of(official).await;
    assert_eq!(official["account_type"], "official_account");
    assert_eq!(
        official["verification"]["ok"], true,
        "the same token endpoints"
    );

    // An unknown label is a client error, and nothing is registered.
    let res = owner
        .post_json(
            "/api/v1/apps",
            &json!({ "appid": "wx00000000000000ee", "secret": SECRET, "account_type": "channel" }),
        )
        .await;
    assert!(res.status().is_client_error(), "{}", res.status());
    let list = json_of(owner.get("/api/v1/apps").await).await;
    let labels: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["appid"].clone(), a["account_type"].clone()))
        .collect();
    assert_eq!(
        labels,
        [
            (json!(OFFICIAL), json!("official_account")),
            (json!(APPID), json!("mini_program")),
        ]
    );

    // PATCH changes the label and nothing else.
    let res = owner
        .patch_json(
            &format!("/api/v1/apps/{APPID}"),
            &json!({ "account_type": "official_account" }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let edited = json_of(res).await;
    assert_eq!(edited["account_type"], "official_account");
    assert_eq!(edited["token_mode"], "stable");
    let shown = json_of(owner.get(&format!("/api/v1/apps/{APPID}")).await).await;
    assert_eq!(shown["account_type"], "official_account");
    let res = owner
        .patch_json(
            &format!("/api/v1/apps/{APPID}"),
            &json!({ "account_type": "Official Account" }),
        )
        .await;
    assert!(res.status().is_client_error(), "{}", res.status());
    let shown = json_of(owner.get(&format!("/api/v1/apps/{APPID}")).await).await;
    assert_eq!(shown["account_type"], "official_account", "left as it was");

    // WeCom apps have no label: none is shown, and one sent is refused by name.
    let res = owner
        .post_json(
            "/api/v1/apps",
            &json!({ "kind": "wecom", "corpid": CORP, "agentid": 1_000_002,
                     "secret": WECOM_SECRET, "account_type": "mini_program" }),
        )
        .await;
    assert_eq!(res.status(), 422);
    let problem = json_of(res).await;
    assert_eq!(problem["errors"][0]["field"], "account_type", "{problem}");
    assert_eq!(problem["errors"][0]["code"], "not_for_this_kind");
    let wecom = owner
        .post_json(
            "/api/v1/apps",
            &json!({ "kind": "wecom", "corpid": CORP, "agentid": 1_000_002, "secret": WECOM_SECRET }),
        )
        .await;
    assert_eq!(wecom.status(), 201);
    let wecom = json_of(wecom).await;
    assert_eq!(wecom["account_type"], serde_json::Value::Null, "{wecom}");
    let id = format!("{CORP}-1000002");
    let res = owner
        .patch_json(
            &format!("/api/v1/apps/{id}"),
            &json!({ "account_type": "official_account" }),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(json_of(res).await["errors"][0]["field"], "account_type");
    let shown = json_of(owner.get(&format!("/api/v1/apps/{id}")).await).await;
    assert_eq!(shown["account_type"], serde_json::Value::Null);
    sim.stop().await;
}

#[tokio::test]
async fn the_form_chooses_the_label_and_the_app_page_changes_it() {
    let (sim, app, owner) = with_owner(SimConfig::fast(), "Form Co", "o@form.test").await;
    let url = |p: &str| format!("{}{p}", app.address);
    let (status, form) = page(owner.client.get(url("/apps/new")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(form.contains("Register a mini-program or official account"));
    assert!(form.contains("value=\"official_account\""));
    let csrf = csrf_of(&form);
    let post = |fields: Vec<(&'static str, String)>| {
        let req = owner.client.post(url("/apps/new")).form(&fields);
        async move { page(req.send().await.unwrap()).await }
    };

    // A label that is neither is named next to its field; the rest is kept.
    let (status, html) = post(vec![
        ("csrf_token", csrf.clone()),
        ("appid", APPID.into()),
        ("secret", SECRET.into()),
        ("token_mode", "stable".into()),
        ("account_type", "channel".into()),
    ])
    .await;
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("id=\"e-account_type\""));
    assert!(html.contains(&format!("value=\"{APPID}\"")));

    let (status, html) = post(vec![
        ("csrf_token", csrf.clone()),
        ("appid", APPID.into()),
        ("secret", SECRET.into()),
        ("token_mode", "stable".into()),
        ("account_type", "official_account".into()),
    ])
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("badge-account\">Official account<"), "{html}");
    let shown = json_of(owner.get(&format!("/api/v1/apps/{APPID}")).await).await;
    assert_eq!(shown["account_type"], "official_account");
    let (_, dashboard) = page(owner.client.get(url("/dashboard")).send().await.unwrap()).await;
    assert!(dashboard.contains("badge-account\">Official account<"));
    assert!(dashboard.contains("Your mini-programs and official accounts"));

    // The app page changes it back; in Chinese the badge reads 小程序.
    let app_page = format!("/apps/{APPID}");
    let (_, html) = page(owner.client.get(url(&app_page)).send().await.unwrap()).await;
    let csrf = csrf_of(&html);
    let change = |value: &'static str| {
        let fields = [("csrf_token", csrf.clone()), ("account_type", value.into())];
        let req = owner
            .client
            .post(url(&format!("{app_page}/account_type")))
            .form(&fields);
        async move { page(req.send().await.unwrap()).await }
    };
    let (status, _) = change("nonsense").await;
    assert_eq!(status, 400);
    let shown = json_of(owner.get(&format!("/api/v1/apps/{APPID}")).await).await;
    assert_eq!(shown["account_type"], "official_account", "left as it was");
    let (status, html) = change("mini_program").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("badge-account\">Mini-program<"), "{html}");
    let shown = json_of(owner.get(&format!("/api/v1/apps/{APPID}")).await).await;
    assert_eq!(shown["account_type"], "mini_program");
    let res = owner
        .client
        .get(url(&app_page))
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .unwrap();
    let (_, zh) = page(res).await;
    assert!(zh.contains("badge-account\">小程序<"), "{zh}");
    sim.stop().await;
}
