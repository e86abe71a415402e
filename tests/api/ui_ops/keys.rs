//! A key limited to an app, created on the keys page, reads only that app.

use super::*;

async fn key_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from api_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Fields of a form post, in order.
type FormFields<'a> = Vec<(&'a str, &'a str)>;

async fn post_key_form(b: &Browser, fields: &[(&str, &str)]) -> (u16, String) {
    let mut form = vec![("csrf_token", b.csrf.as_str())];
    form.extend_from_slice(fields);
    let res = b
        .client
        .post(format!("{}/keys", b.address))
        .form(&form)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The shown-once key on the keys page after creating one.
fn shown_key(page: &str) -> String {
    let (_, rest) = page
        .split_once("id=\"new-key\">")
        .expect("the new key is shown");
    rest.split('<').next().unwrap().to_string()
}

#[tokio::test]
async fn a_key_limited_to_an_app_on_the_keys_page_reads_only_that_app() {
    let sim = sim_with_apps();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Keys Co", "keys@t.test").await;
    register(&owner, APPID, SECRET, "stable").await;
    register(&owner, APPID_B, SECRET, "stable").await;
    let other = app.signup("Other Co", "other@t.test").await;
    register(&other, APPID_C, SECRET, "stable").await;

    let (status, page) = html(&owner, "/keys").await;
    assert_eq!(status, 200);
    assert!(page.contains(&format!("name=\"apps\" value=\"{APPID}\"")));
    assert!(page.contains(&format!("name=\"apps\" value=\"{APPID_B}\"")));
    assert!(!page.contains(APPID_C), "another tenant's app is no choice");
    assert!(page.contains("<legend>Apps this key may use</legend>"));

    // Bad input: field errors next to the fields, input kept and escaped,
    // no 500, nothing stored.
    let long = "x".repeat(10_000);
    let evil = "<script>alert('k')</script>";
    let sql = "'; drop table api_keys; --";
    let too_many: Vec<String> = (0..101).map(|i| format!("wx{i:016x}")).collect();
    let mut many: Vec<(&str, &str)> = vec![("name", "many")];
    many.extend(too_many.iter().map(|a| ("apps", a.as_str())));
    let cases: Vec<(&str, FormFields, &[&str])> = vec![
        (
            "another tenant's app",
            vec![("name", evil), ("apps", APPID_C)],
            &["e-apps"],
        ),
        (
            "SQL and an unknown app beside a good one",
            vec![("name", sql), ("apps", APPID), ("apps", "wx' or 1=1 --")],
            &["e-apps"],
        ),
        (
            "emoji and a 10,000-character app",
            vec![("name", "🔑 钥匙"), ("apps", long.as_str())],
            &["e-apps"],
        ),
        (
            "a 10,000-character name",
            vec![("name", long.as_str()), ("read_only", "1")],
            &["e-name"],
        ),
        ("nothing", vec![("name", "")], &["e-name"]),
        (
            "nothing and another tenant's app",
            vec![("name", "  "), ("apps", APPID_C)],
            &["e-name", "e-apps"],
        ),
        ("101 apps", many.clone(), &["e-apps"]),
    ];
    for (what, fields, errors) in &cases {
        let (status, page) = post_key_form(&owner, fields).await;
        assert_eq!(status, 422, "{what}: {page}");
        for e in *errors {
            assert!(page.contains(&format!("id=\"{e}\"")), "{what}: {e}");
        }
        assert!(!page.contains(evil), "{what}: escaped");
        assert!(!page.contains("id=\"new-key\""), "{what}: no key");
        assert!(!page.contains(APPID_C), "{what}: no other tenant's app");
    }
    assert_eq!(key_count(&app).await, 0, "nothing stored");
    // What was typed is kept: the escaped name, the ticked app, read-only.
    let (_, page) = post_key_form(&owner, &[("name", evil), ("apps", APPID_C)]).await;
    assert!(
        page.contains("value=\"&lt;script&gt;alert(&#x27;k&#x27;)&lt;&#x2f;script&gt;\""),
        "{page}"
    );
    assert!(page.contains("is no longer in your organisation"));
    let (_, page) = post_key_form(
        &owner,
        &[
            ("name", sql),
            ("apps", APPID),
            ("apps", "wxnope"),
            ("read_only", "1"),
        ],
    )
    .await;
    assert!(
        page.contains(&format!("value=\"{APPID}\" checked")),
        "{page}"
    );
    assert!(!page.contains(&format!("value=\"{APPID_B}\" checked")));
    assert!(page.contains("name=\"read_only\" value=\"1\" checked"));
    // In Chinese, the error is Chinese.
    let res = owner
        .client
        .post(format!("{}/keys", app.address))
        .header("Accept-Language", "zh-CN")
        .form(&[
            ("csrf_token", owner.csrf.as_str()),
            ("name", "k"),
            ("apps", APPID_C),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("所选的小程序或公众号已不在本组织中")
    );
    // A stale form: nothing stored, back to the page with a message.
    let res = owner
        .client
        .post(format!("{}/keys", app.address))
        .form(&[("csrf_token", "stale"), ("name", "k"), ("apps", APPID)])
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("out of date"));
    assert_eq!(key_count(&app).await, 0);

    // A key limited to the first app, from the form.
    let (status, page) =
        post_key_form(&owner, &[("name", "shop server 🛒"), ("apps", APPID)]).await;
    assert_eq!(status, 201, "{page}");
    let key = shown_key(&page);
    assert!(key.starts_with("tvk_"));
    assert!(
        page.contains(&format!(
            "&#x2f;api&#x2f;v1&#x2f;apps&#x2f;{APPID}&#x2f;token"
        )),
        "the snippet reads an app the key may read"
    );
    let limited: (bool, bool, Vec<String>) = sqlx::query_as(
        "select k.limited_to_apps, k.read_only,
                array(select a.appid from api_key_apps ka join apps a on a.id = ka.app_id where ka.api_key_id = k.id)
           from api_keys k",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(limited, (true, false, vec![APPID.to_string()]));
    let path = |appid: &str| format!("/api/v1/apps/{appid}/token");
    assert_eq!(
        get_with_key(&app.address, &path(APPID), &key)
            .await
            .status(),
        200
    );
    assert_eq!(
        get_with_key(&app.address, &path(APPID_B), &key)
            .await
            .status(),
        403
    );
    assert_eq!(
        get_with_key(&app.address, &path(APPID_C), &key)
            .await
            .status(),
        404,
        "another tenant's app stays unknown"
    );
    // The list says what it is limited to; a key without apps reads every app.
    let (_, page) = html(&owner, "/keys").await;
    let row = page
        .split("<tr")
        .find(|r| r.contains("shop server"))
        .expect("the key's row");
    assert!(row.contains(&format!("<code>{APPID}</code>")), "{row}");
    assert!(!row.contains("all apps"));
    let (status, page) = post_key_form(&owner, &[("name", "everything"), ("read_only", "1")]).await;
    assert_eq!(status, 201);
    let all = shown_key(&page);
    assert_eq!(
        get_with_key(&app.address, &path(APPID_B), &all)
            .await
            .status(),
        200
    );
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/apps/{APPID_B}/refresh", app.address))
        .bearer_auth(&all)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "read-only");
    let (_, page) = html(&owner, "/keys").await;
    let row = page
        .split("<tr")
        .find(|r| r.contains("everything"))
        .unwrap();
    assert!(
        row.contains("all apps") && row.contains("read-only"),
        "{row}"
    );
    // Once its only app is deleted, the limited key stays limited, and says so.
    let res = owner.delete(&format!("/api/v1/apps/{APPID}")).await;
    assert!(res.status().is_success());
    let (_, page) = html(&owner, "/keys").await;
    let row = page
        .split("<tr")
        .find(|r| r.contains("shop server"))
        .unwrap();
    assert!(row.contains("none left"), "{row}");
    assert_eq!(
        get_with_key(&app.address, &path(APPID_B), &key)
            .await
            .status(),
        403
    );
}
