//! Crash safety: the server is killed with SIGKILL while clients keep generating and
//! activating versions, 50 times over. After every kill, every alias must have exactly one
//! active version, versions numbered without gaps, every retired version its
//! `active_until`, and the audit log an intact hash chain.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keyward_domain::{Alias, VersionState};
use keyward_http::client::Client;
use keyward_http::wire::GenerateRequest;
use keyward_store::Store;
use support::{Server, admin_token};

const ROUNDS: u64 = 50;
const ALIASES: usize = 4;

fn request(alias: &str) -> GenerateRequest {
    GenerateRequest { algorithm: "ec-p256".into(), subject: format!("CN={alias}"), days: Some(30), staged: true }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_activations_leaves_every_alias_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let aliases: Vec<String> = (0..ALIASES).map(|i| format!("crash-{i}")).collect();

    let server = Server::start(dir.path());
    let client = Client::new(&server.base, Some(admin_token(dir.path()))).unwrap();
    for alias in &aliases {
        client.generate(alias, &request(alias)).await.unwrap();
        client.activate(alias, None).await.unwrap();
    }
    server.stop();

    let activations = Arc::new(AtomicU64::new(0));
    for round in 0..ROUNDS {
        let server = Server::start(dir.path());
        let client = Client::new(&server.base, Some(admin_token(dir.path()))).unwrap();
        let mut workers = Vec::new();
        for alias in aliases.clone() {
            let client = client.clone();
            let activations = activations.clone();
            workers.push(tokio::spawn(async move {
                loop {
                    if client.generate(&alias, &request(&alias)).await.is_err() {
                        return;
                    }
                    match client.activate(&alias, None).await {
                        Ok(_) => {
                            activations.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if e.status() == Some(409) => {}
                        Err(_) => return,
                    }
                }
            }));
        }
        // Vary the moment of death between rounds: 15 to 160 ms of activity.
        tokio::time::sleep(Duration::from_millis(15 + (round * 37) % 146)).await;
        server.kill();
        for worker in workers {
            let _ = worker.await;
        }
        check_consistency(dir.path(), &aliases, round).await;
    }
    eprintln!("{ROUNDS} kills, {} activations acknowledged", activations.load(Ordering::Relaxed));
    assert!(activations.load(Ordering::Relaxed) >= ROUNDS, "the server was killed before doing any work");
}

async fn check_consistency(dir: &std::path::Path, aliases: &[String], round: u64) {
    let store = Store::open_sqlite(&dir.join("keyward.db")).await.unwrap();
    for alias in aliases {
        let entry = store.entry(&Alias::parse(alias).unwrap()).await.unwrap().unwrap();
        let active = entry.versions.iter().filter(|v| v.state == VersionState::Active).count();
        assert_eq!(active, 1, "round {round}: {alias} has {active} active versions");
        for (index, version) in entry.versions.iter().enumerate() {
            assert_eq!(version.id.0 as usize, index + 1, "round {round}: {alias} has a gap in its versions");
            if version.state == VersionState::Retired {
                assert!(version.active_until.is_some(), "round {round}: {alias} v{} retired without active_until", version.id);
            }
            let material = store.material(&entry.alias, version.id).await.unwrap();
            assert!(
                material.is_some_and(|m| !m.chain_der.is_empty() && m.sealed_private_key.is_some()),
                "round {round}: {alias} v{} lost its material",
                version.id
            );
        }
    }
    let audit = store.audit_verify().await.unwrap();
    assert!(audit.problem.is_none(), "round {round}: audit log broken: {:?}", audit.problem);
}
