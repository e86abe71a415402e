//! Operators' reach is audited: every operator view that shows an
//! organisation's data is written to that organisation's audit log, where
//! its owners see it (page and API), and nowhere else.

use serde_json::Value;

use crate::helpers::{Browser, spawn_app};
use crate::ui_ops::create_operator;

/// The `operator.viewed` entries of the owner's organisation: (what, who).
async fn operator_views(owner: &Browser) -> Vec<(String, String)> {
    let res = owner
        .get("/api/v1/audit-log?action=operator.viewed&limit=100")
        .await;
    assert_eq!(res.status(), 200);
    let log: Value = res.json().await.unwrap();
    log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["action"], "operator.viewed");
            assert!(e["created_at"].is_string(), "{e}");
            (
                e["target"].as_str().unwrap().to_string(),
                e["actor_email"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The operator page and the operator API each leave one entry in every
/// organisation they show (who, what, when); the owner reads them in the
/// API and on the audit page; a reload within the minute adds nothing; an
/// organisation the operator never saw has none, and no organisation sees
/// another's entries.
#[tokio::test]
async fn owners_see_the_operators_views_of_their_own_organisation_only() {
    let app = spawn_app().await;
    let alpha = app.signup("Alpha Co", "owner@alpha.test").await;
    let beta = app.signup("Beta Co", "owner@beta.test").await;
    let operator = create_operator(&app, "op@service.test").await;
    // Nothing seen yet, nothing recorded.
    assert!(operator_views(&alpha).await.is_empty());

    assert_eq!(operator.get("/operator").await.status(), 200);
    assert_eq!(operator.get("/api/v1/operator/tenants").await.status(), 200);
    assert_eq!(operator.get("/operator").await.status(), 200);

    let mut expected = vec![
        (
            "/api/v1/operator/tenants".to_string(),
            "op@service.test".to_string(),
        ),
        ("/operator".to_string(), "op@service.test".to_string()),
    ];
    expected.sort();
    for owner in [&alpha, &beta] {
        let mut seen = operator_views(owner).await;
        seen.sort();
        // One entry per view of this organisation: none of the other's.
        assert_eq!(seen, expected);
    }

    // On the audit page, in the owner's words.
    let page = alpha.get("/audit").await.text().await.unwrap();
    assert!(page.contains("op@service.test"), "{page}");
    assert!(page.contains("operator viewed this organisation"), "{page}");

    // An organisation created after the views was never seen.
    let gamma = app.signup("Gamma Co", "owner@gamma.test").await;
    assert!(operator_views(&gamma).await.is_empty());
    let page = gamma.get("/audit").await.text().await.unwrap();
    assert!(!page.contains("op@service.test"), "{page}");
}

/// A refused view (not an operator) records nothing.
#[tokio::test]
async fn a_refused_operator_view_records_nothing() {
    let app = spawn_app().await;
    let owner = app.signup("Delta Co", "owner@delta.test").await;
    assert_eq!(owner.get("/api/v1/operator/tenants").await.status(), 403);
    assert!(operator_views(&owner).await.is_empty());
}
