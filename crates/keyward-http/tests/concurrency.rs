//! Concurrent conflicting changes over HTTP: of many simultaneous activations of one alias,
//! exactly one succeeds and every other gets 409 Conflict.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use common::TestServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_activations_of_one_alias_one_wins() {
    let server = std::sync::Arc::new(TestServer::start().await);
    for round in 0..5 {
        let alias = format!("race-{round}");
        server.generate(&alias, false).await;
        server.generate(&alias, true).await;
        let mut calls = Vec::new();
        for _ in 0..12 {
            let server = server.clone();
            let path = format!("/api/v1/keys/{alias}/activate");
            calls.push(tokio::spawn(async move {
                server.call("admin", "POST", &path, Some(&json!({"version": 2}))).await.0
            }));
        }
        let mut statuses = Vec::new();
        for call in calls {
            statuses.push(call.await.unwrap());
        }
        statuses.sort_unstable();
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "round {round}: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "round {round}: {statuses:?}");
        let entry = server.admin("GET", &format!("/api/v1/keys/{alias}"), None).await;
        let states: Vec<&str> = entry["versions"].as_array().unwrap().iter().map(|v| v["state"].as_str().unwrap()).collect();
        assert_eq!(states, ["retired", "active"], "round {round}");
    }
    let verify = server.admin("GET", "/api/v1/audit/verify", None).await;
    assert_eq!(verify["intact"], true);
}
