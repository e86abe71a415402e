//! The audit page over plain HTTP: newest first, a page at a time,
//! filtered by action.

use uuid::Uuid;

use crate::helpers::spawn_app;
use crate::ui_people::{get, invite_on_page, page, rows};

#[tokio::test]
async fn the_audit_log_pages_newest_first_and_filters_by_action() {
    let app = spawn_app().await;
    let owner = app.signup("<b>Acme</b>", "owner@acme.test").await;
    let _admin = app
        .invite_and_join(&owner, "admin", "admin@acme.test")
        .await;
    let tenant: Uuid = sqlx::query_scalar("select id from tenants")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // Many token-read entries, as a busy key leaves them.
    sqlx::query(
        "insert into audit_log (tenant_id, action, detail)
         select $1, 'token.read', jsonb_build_object('count', n, 'period_seconds', 60)
           from generate_series(1, 120) n",
    )
    .bind(tenant)
    .execute(&app.pool)
    .await
    .unwrap();
    invite_on_page(&owner, "late@acme.test", "viewer").await;

    let (status, html) = get(&owner, "/audit").await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/audit\" aria-current=\"page\""));
    assert_eq!(html.matches("<tr class=\"audit-").count(), 50, "one page");
    let first = rows(&html).find(">Invite created<").expect("newest first");
    let read = rows(&html).find(">Tokens read<").unwrap();
    assert!(first < read, "the newest entry is on top");
    assert!(
        html.contains("<code>late@acme.test</code>"),
        "the invite by its email"
    );
    assert!(html.contains("reads: 120"));
    assert!(
        !rows(&html).contains(">Organisation created<"),
        "not on the first page"
    );

    // Follow the pages down to the first entry; the last page has no "older".
    let mut next = html;
    let mut pages = 1;
    while let Some((_, rest)) = next.split_once("before=") {
        let before: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let (status, html) = get(&owner, &format!("/audit?before={before}")).await;
        assert_eq!(status, 200);
        assert!(html.contains("← Newest"));
        next = html;
        pages += 1;
        assert!(pages < 10, "paging ends");
    }
    assert_eq!(pages, 3);
    assert!(rows(&next).contains(">Organisation created<"));
    assert!(
        next.contains("<code>&lt;b&gt;Acme&lt;&#x2f;b&gt;</code>"),
        "escaped"
    );
    assert!(!next.contains("<b>Acme</b>"));

    // Filtered by action: only those entries, the filter kept in the pager.
    let (status, html) = get(&owner, "/audit?action=member.joined").await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("<tr class=\"audit-").count(), 1);
    assert!(rows(&html).contains(">Member joined<"));
    assert!(html.contains("<option value=\"member.joined\" selected>"));
    let (_, html) = get(&owner, "/audit?action=token.read").await;
    assert_eq!(html.matches("<tr class=\"audit-token-read").count(), 50);
    assert!(html.contains("action=token.read&amp;before="));
    let (_, html) = get(&owner, "/audit?action=app.deleted").await;
    assert!(html.contains("No entries of this kind"));

    // Bad queries: a field error or a 400 page, escaped, never a 500.
    let (status, html) = get(&owner, "/audit?action=%3Cscript%3Ealert(1)%3C/script%3E").await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"e-action\""));
    assert!(!html.contains("<script>alert"));
    for bad in ["abc", "-1", "99999999999999999999999", "%F0%9F%99%82"] {
        let (status, _) = get(&owner, &format!("/audit?before={bad}")).await;
        assert_eq!(status, 400, "{bad}");
    }

    // In Chinese.
    let res = owner
        .client
        .get(format!("{}/audit", app.address))
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .unwrap();
    let (_, html) = page(res).await;
    assert!(html.contains("审计日志"));
    assert!(rows(&html).contains(">创建邀请<"));
    assert!(rows(&html).contains(">读取令牌<"));
}
