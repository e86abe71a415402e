//! Who sees what of an app: viewers and other tenants see no secrets and
//! no tokens, a key limited to a deleted app opens no other, and the token
//! read answers alike from memory and the long way.

use crate::apps::{APPID, SECRET, json_of, with_owner, with_owner_and_app};
use crate::helpers::{get_with_key, spawn_app_with_sim};
use serde_json::json;
use tokenvault::upstream::simulator::{SimConfig, WeChatSimulator};

#[tokio::test]
async fn viewers_and_other_tenants_see_no_secrets_and_no_tokens() {
    let (_sim, app, owner) = with_owner(SimConfig::fast(), "Own Co", "o@own.test").await;
    owner
        .post_json("/api/v1/apps", &json!({ "appid": APPID, "secret": SECRET }))
        .await;
    let viewer = app.invite_and_join(&owner, "viewer", "v@own.test").await;
    let shown = json_of(viewer.get(&format!("/api/v1/apps/{APPID}")).await).await;
    assert_eq!(shown["health"], "healthy");
    assert!(shown.get("secret_hint").is_none());
    assert_eq!(
        viewer
            .get(&format!("/api/v1/apps/{APPID}/token"))
            .await
            .status(),
        403
    );
    assert_eq!(
        viewer
            .post_json(&format!("/api/v1/apps/{APPID}/refresh"), &json!({}))
            .await
            .status(),
        403
    );
    assert_eq!(
        viewer
            .get(&format!("/api/v1/apps/{APPID}/refresh-log"))
            .await
            .status(),
        200
    );

    let stranger = app.signup("Other Co", "x@other.test").await;
    for path in [
        format!("/api/v1/apps/{APPID}"),
        format!("/api/v1/apps/{APPID}/token"),
        format!("/api/v1/apps/{APPID}/refresh-log"),
    ] {
        assert_eq!(stranger.get(&path).await.status(), 404, "{path}");
    }
    assert_eq!(
        stranger
            .post_json(&format!("/api/v1/apps/{APPID}/refresh"), &json!({}))
            .await
            .status(),
        404
    );
    assert_eq!(
        stranger
            .delete(&format!("/api/v1/apps/{APPID}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        json_of(stranger.get("/api/v1/apps").await).await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The stranger may register the same appid in their own organisation.
    let res = stranger
        .post_json(
            "/api/v1/apps",
            &json!({ "appid": APPID, "secret": SECRET, "verify": false }),
        )
        .await;
    assert_eq!(res.status(), 201);

    // A key limited to another app is refused for this one.
    let limited = owner
        .create_key(json!({ "name": "limited", "apps": [APPID] }))
        .await;
    let other_appid = "wxfedcba9876543210";
    owner
        .post_json(
            "/api/v1/apps",
            &json!({ "appid": other_appid, "secret": SECRET, "verify": false }),
        )
        .await;
    let res = get_with_key(
        &app.address,
        &format!("/api/v1/apps/{other_appid}/token"),
        limited["key"].as_str().unwrap(),
    )
    .await;
    assert_eq!(res.status(), 403);
    let list = json_of(
        get_with_key(
            &app.address,
            "/api/v1/apps",
            limited["key"].as_str().unwrap(),
        )
        .await,
    )
    .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_key_limited_to_a_deleted_app_opens_no_other_app() {
    let sim = WeChatSimulator::start(SimConfig::fast()).unwrap();
    let app = spawn_app_with_sim(&sim.base_url()).await;
    let owner = app.signup("Limit Co", "o@limit.test").await;
    let other_appid = "wxfedcba9876543210";
    for appid in [APPID, other_appid] {
        let res = owner
            .post_json(
                "/api/v1/apps",
                &json!({ "appid": appid, "secret": SECRET, "verify": false }),
            )
            .await;
        assert_eq!(res.status(), 201);
    }
    let limited = owner
        .create_key(json!({ "name": "only one", "apps": [APPID] }))
        .await;
    let key = limited["key"].as_str().unwrap();
    assert_eq!(
        owner
            .delete(&format!("/api/v1/apps/{APPID}"))
            .await
            .status(),
        204
    );
    // The key's only app is gone: it must not widen to the rest of the tenant.
    let res = get_with_key(
        &app.address,
        &format!("/api/v1/apps/{other_appid}/token"),
        key,
    )
    .await;
    assert_eq!(res.status(), 403);
    let list = json_of(get_with_key(&app.address, "/api/v1/apps", key).await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let who = json_of(get_with_key(&app.address, "/api/v1/session", key).await).await;
    assert_eq!(who["api_key"]["limited_to_apps"], true);
}

/// Token reads with a cached key and token are answered from memory before
/// the logger and the router (`src/api/token_fast_path.rs`); a path that one
/// leaves alone (a percent-encoded AppID) takes the long way. Both must
/// answer alike, headers and errors included.
#[tokio::test]
async fn the_token_read_answers_alike_from_memory_and_the_long_way() {
    let (_sim, app, owner) = with_owner_and_app("Alike Co", "o@alike.test").await;
    let key = owner
        .create_key(json!({ "name": "alike", "read_only": true }))
        .await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let long_way = APPID.replacen('1', "%31", 1);
    assert_ne!(long_way, APPID);
    let read = |appid: &str, query: &str| {
        let path = format!("/api/v1/apps/{appid}/token{query}");
        let (address, key) = (app.address.clone(), key.clone());
        async move { get_with_key(&address, &path, &key).await }
    };

    // Twice each: the first read may fill the caches, the second is served from them.
    let mut seen = Vec::new();
    for appid in [APPID, long_way.as_str(), APPID, long_way.as_str()] {
        for query in ["", "?min_ttl=1"] {
            let res = read(appid, query).await;
            assert_eq!(res.status(), 200, "{appid}{query}");
            let mut headers: Vec<(String, String)> = res
                .headers()
                .iter()
                .filter(|(name, _)| !["date", "content-length"].contains(&name.as_str()))
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                .collect();
            headers.sort();
            let body = json_of(res).await;
            assert_eq!(body["appid"], APPID);
            let fields: Vec<&str> = body
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                fields.len(),
                5,
                "appid, access_token, expires_in, expires_at, fetched_at: {body}"
            );
            seen.push((
                headers,
                body["access_token"].clone(),
                body["expires_at"].clone(),
            ));
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "every read answered alike: {seen:#?}"
    );
    // Both paths were taken: the second round of plain reads came from memory.
    let metrics = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let from_memory: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tokenvault_token_reads_from_memory_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no memory counter in {metrics}"));
    assert!(
        (2..=3).contains(&from_memory),
        "the plain AppID's reads after the first: {from_memory}"
    );
    let headers = &seen[0].0;
    for expected in [
        ("cache-control", "no-store"),
        ("content-type", "application/json"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert!(
            headers.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} in {headers:?}"
        );
    }

    for (query, status, code) in [
        ("?min_ttl=abc", 400, "invalid_min_ttl"),
        ("?min_ttl=1&min_ttl=2", 400, "invalid_query"),
        ("?min_ttl=7001", 400, "invalid_min_ttl"),
        ("?min_ttl=-1", 400, "invalid_min_ttl"),
    ] {
        for appid in [APPID, long_way.as_str()] {
            let res = read(appid, query).await;
            assert_eq!(res.status(), status, "{appid}{query}");
            assert_eq!(json_of(res).await["code"], code, "{appid}{query}");
        }
    }
    let anonymous = reqwest::Client::new();
    for appid in [APPID, long_way.as_str()] {
        let url = format!("{}/api/v1/apps/{appid}/token", app.address);
        let res = anonymous.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 401, "{appid}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{appid}"
        );
        let res = anonymous
            .get(&url)
            .bearer_auth("tvk_nope")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{appid}");
        // A key in the wrong header is no key.
        let res = anonymous
            .get(&url)
            .header("X-Api-Key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{appid}");
        // Other methods on the path are the router's: 405 as problem+json.
        let res = anonymous
            .delete(&url)
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{appid}");
    }
    let res = get_with_key(&app.address, "/api/v1/apps/wx0000000000000000/token", &key).await;
    assert_eq!(res.status(), 404);
    assert_eq!(json_of(res).await["code"], "not_found");
}
