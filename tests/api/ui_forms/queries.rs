//! Pages opened with hostile query parameters and paths: never a 5xx,
//! never the markup reflected.

use super::*;

/// Query parameters a page might read; every page gets all of them.
const QUERY_PARAMS: [&str; 7] = [
    "page", "action", "back", "before", "after", "cursor", "lang",
];

#[tokio::test]
async fn pages_opened_with_hostile_queries_and_paths_never_fail_or_reflect_markup() {
    let sim = simulator();
    let app = spawn(&sim).await;
    let (owner, ctx) = owner_with_everything(&app).await;
    let anonymous = Browser::new(&app.address);
    // URLs carry the long values shorter: a client refuses a URL of 90 kB.
    let mut values: Vec<String> = Evil::ALL
        .iter()
        .filter(|e| **e != LongWide)
        .filter_map(|e| e.encoded())
        .collect();
    values.push(form_encode(&"中".repeat(2_000)));
    values.extend(
        [
            "-1",
            "0",
            "99999999999999999999",
            "9223372036854775807",
            "1e3",
            "%2e%2e%2f",
        ]
        .map(String::from),
    );

    // Every page with every parameter set to the same hostile value.
    let pages = [
        (&owner, "/dashboard"),
        (&owner, "/apps/new"),
        (&owner, "/apps/{appid}"),
        (&owner, "/keys"),
        (&owner, "/members"),
        (&owner, "/audit"),
        (&owner, "/status"),
        (&owner, "/operator"),
        (&anonymous, "/login"),
        (&anonymous, "/signup"),
        (&anonymous, "{invite_path}"),
    ];
    for (who, page) in pages {
        for v in &values {
            // Short values in every parameter at once; long ones one at a time.
            let queries: Vec<String> = if v.len() < 1_000 {
                vec![QUERY_PARAMS.map(|p| format!("{p}={v}")).join("&")]
            } else {
                QUERY_PARAMS.iter().map(|p| format!("{p}={v}")).collect()
            };
            for query in queries {
                let path = format!("{}?{query}", ctx.fill(page, 0));
                let res = who.get(&path).await;
                let status = res.status().as_u16();
                let body = res.text().await.unwrap();
                let path = short(&path);
                assert!(status < 500, "{path}: {status}\n{}", short(&body));
                assert_no_raw_markup(&body, &path);
            }
        }
    }

    // The audit log's filter and cursor: a field error, or a plain refusal.
    let (script, attr) = (Script.encoded().unwrap(), Attr.encoded().unwrap());
    for (query, status, shown) in [
        (format!("action={script}"), 422, Some("id=\"e-action\"")),
        (format!("action={attr}"), 422, Some("id=\"e-action\"")),
        (format!("before={script}"), 400, None),
        ("before=-1".to_string(), 400, None),
        ("before=99999999999999999999".to_string(), 400, None),
        ("before=9223372036854775807".to_string(), 200, None),
    ] {
        let res = owner.get(&format!("/audit?{query}")).await;
        assert_eq!(res.status(), status, "{query}");
        let body = res.text().await.unwrap();
        if let Some(shown) = shown {
            assert!(body.contains(shown), "{query}");
        }
    }

    // Hostile path segments: pages that do not exist, never a failure.
    values.push("%0D%0ALocation:+%2F%2Fevil.test".into());
    for v in &values {
        for path in [
            format!("/apps/{v}"),
            format!("/invite/{v}"),
            format!("/lang/{v}"),
            format!("/{v}"),
        ] {
            let res = owner
                .client
                .get(format!("{}{path}", app.address))
                .header("Accept", "text/html")
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            let path = short(&path);
            assert!(status < 500, "{path}: {status}\n{}", short(&body));
            assert_no_raw_markup(&body, &path);
        }
        for path in [
            format!("/apps/{APPID}/{v}"),
            format!("/apps/{v}/secret"),
            format!("/keys/{v}/revoke"),
            format!("/members/{v}/role"),
            format!("/members/{v}/remove"),
            format!("/members/invites/{v}/revoke"),
        ] {
            // With the right token and with a stale one (which goes back to the page).
            for csrf in [owner.csrf.as_str(), "stale"] {
                let res = owner
                    .client
                    .post(format!("{}{path}", app.address))
                    .form(&[("csrf_token", csrf), ("role", "viewer")])
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let body = res.text().await.unwrap();
                let path = short(&path);
                assert!(
                    status < 500,
                    "POST {path} ({csrf}): {status}\n{}",
                    short(&body)
                );
                assert_no_raw_markup(&body, &path);
            }
        }
    }

    // The language switch goes back to a page of this site, and only there.
    let plain = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let mut backs = values.clone();
    backs.extend(
        [
            "%2F%2Fevil.test%2Fx",
            "https%3A%2F%2Fevil.test%2F",
            "%2F%5Cevil.test",
            "javascript%3Aalert(1)",
            "%2F%0D%0ASet-Cookie%3A+tv_evil%3D1",
            "%2Fok%0A",
            "%2F%00",
            "%2F%E4%B8%AD%E6%96%87",
        ]
        .map(String::from),
    );
    for back in &backs {
        let res = plain
            .get(format!("{}/lang/zh-CN?back={back}", app.address))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let back = short(back);
        assert_eq!(status, 303, "back={back}");
        let location = String::from_utf8_lossy(res.headers()["location"].as_bytes());
        assert!(
            location.starts_with('/') && !location.starts_with("//") && !location.contains('\\'),
            "back={back}: to {location}"
        );
        assert!(
            !res.headers()
                .get_all("set-cookie")
                .iter()
                .any(|c| c.as_bytes().starts_with(b"tv_evil")),
            "back={back}: a header was injected"
        );
    }
}
