//! How fast an activation reaches the nodes, and how many messages a flow carries.
//!
//! - **Propagation**: a staged version of a client-certificate key pair is activated
//!   through the keystore; the time from the activation's commit until a node's key ring
//!   (what its next TLS handshake and next signature use) holds the new version. One node
//!   on SQLite; three nodes on PostgreSQL, each with its own connection pool and change
//!   listener, where the slowest of the three counts. p50, p99 and max over
//!   `KEYWARD_BENCH_ACTIVATIONS` activations (30 by default).
//! - **Throughput**: a flow that signs 1 KiB (CMS, P-256) and posts it over mutual TLS to
//!   a partner on loopback (rustls, kept-alive connections), with 1 and 8 messages in
//!   flight, for `KEYWARD_BENCH_SECONDS` (3 by default), on SQLite.
//!
//! The PostgreSQL part uses `KEYWARD_BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) in a fresh schema, and is skipped with a note
//! when it cannot connect.
//!
//! Run: `cargo bench -p keyward-runtime --bench propagation`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // a benchmark stops loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyward_crypto::{KeyAlgorithm, MasterKey};
use keyward_domain::{Actor, Alias, Role, VersionId};
use keyward_keystore::{Keystore, SystemClock};
use keyward_runtime::node::Node;
use keyward_runtime::operations::Flows;
use keyward_runtime::testing::{Ca, Partner};
use keyward_store::Store;

fn admin() -> Actor {
    Actor::new("bench".to_owned(), Role::Admin)
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn open_keystore(store: Store, master: MasterKey) -> Keystore {
    let keystore = Keystore::new(store, master, Arc::new(SystemClock));
    keystore.check_master_key().await.unwrap();
    keystore
}

/// Starts a node that follows the store; returns it with the stop switch.
async fn node(keystore: Keystore, id: &str) -> (Arc<Node>, tokio::sync::watch::Sender<bool>) {
    let node = Node::start(keystore, id.to_owned(), "-".to_owned()).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    node.spawn(stopped);
    (node, stop)
}

fn version_on(node: &Node, alias: &Alias) -> Option<VersionId> {
    node.keys().current().get(alias).map(|key| key.version())
}

/// Activates `count` staged versions of `alias` one after the other through `keystore` and
/// returns, for each, the time until every node in `nodes` has it.
async fn propagation(keystore: &Keystore, nodes: &[Arc<Node>], alias: &Alias, count: u64) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..count {
        let version = keystore
            .generate(&admin(), alias, KeyAlgorithm::EcP256, "CN=tls client", 30, true)
            .await
            .unwrap();
        // Let the nodes apply the staging first, so only the activation is measured.
        let marker = keystore.change_marker().await.unwrap();
        while nodes.iter().any(|n| n.applied() < marker) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        keystore.activate(&admin(), alias, Some(version)).await.unwrap();
        let committed = Instant::now();
        while nodes.iter().any(|n| version_on(n, alias) != Some(version)) {
            if committed.elapsed() > Duration::from_secs(10) {
                panic!("version {version} did not reach every node in 10 s");
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        times.push(committed.elapsed());
    }
    times
}

fn report(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{label:<34} n={:<4} p50 {:>8.2} ms   p99 {:>8.2} ms   max {:>8.2} ms",
        times.len(),
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0
    );
}

async fn sqlite_one_node(count: u64, seconds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("keyward.db")).await.unwrap();
    let keystore = open_keystore(store, MasterKey::generate().unwrap()).await;
    let alias = Alias::parse("tls-client").unwrap();
    keystore.generate(&admin(), &alias, KeyAlgorithm::EcP256, "CN=tls client", 30, false).await.unwrap();
    let (node, stop) = node(keystore.clone(), "sqlite-1").await;
    report("propagation, 1 node, SQLite", propagation(&keystore, std::slice::from_ref(&node), &alias, count).await);
    throughput(&keystore, &node, seconds).await;
    let _ = stop.send(true);
}

async fn postgres_three_nodes(count: u64) {
    let url = std::env::var("KEYWARD_BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("kwbench_{}", std::process::id());
    let first = match Store::connect_postgres_schema(&url, &schema).await {
        Ok(store) => store,
        Err(e) => {
            println!("propagation, 3 nodes, PostgreSQL: skipped ({e})");
            return;
        }
    };
    let master = MasterKey::generate().unwrap();
    let keystore = open_keystore(first, master.clone()).await;
    let alias = Alias::parse("tls-client").unwrap();
    keystore.generate(&admin(), &alias, KeyAlgorithm::EcP256, "CN=tls client", 30, false).await.unwrap();
    let mut nodes = Vec::new();
    let mut stops = Vec::new();
    for index in 1..=3 {
        let store = Store::connect_postgres_schema(&url, &schema).await.unwrap();
        let (node, stop) = node(open_keystore(store, master.clone()).await, &format!("pg-{index}")).await;
        nodes.push(node);
        stops.push(stop);
    }
    report("propagation, 3 nodes, PostgreSQL", propagation(&keystore, &nodes, &alias, count).await);
    for stop in stops {
        let _ = stop.send(true);
    }
    keystore.store().close().await;
    drop_schema(&url, &schema).await;
}

/// Removes the benchmark's schema with `psql` (the benchmark has no SQL of its own).
async fn drop_schema(url: &str, schema: &str) {
    let status = tokio::process::Command::new("psql")
        .arg(url)
        .args(["-q", "-c", &format!("SET client_min_messages = warning; DROP SCHEMA IF EXISTS {schema} CASCADE")])
        .status()
        .await;
    if !matches!(status, Ok(s) if s.success()) {
        println!("note: could not drop schema {schema}");
    }
}

async fn throughput(keystore: &Keystore, node: &Arc<Node>, seconds: u64) {
    let client_ca = Ca::new("Bench Client CA");
    let partner = Partner::start(&[&client_ca.certificate]).await;
    let import = |alias: &str, bytes: Vec<u8>| {
        let keystore = keystore.clone();
        let alias = Alias::parse(alias).unwrap();
        async move { keystore.import(&admin(), &alias, &bytes, None, false).await.unwrap() }
    };
    import("partner-ca", partner.server_ca.to_pem().into_bytes()).await;
    import("bench-client", client_ca.issue_pem("bench client")).await;
    keystore
        .generate(&admin(), &Alias::parse("bench-signer").unwrap(), KeyAlgorithm::EcP256, "CN=bench signer", 30, false)
        .await
        .unwrap();
    let source = format!(
        "name = \"bench\"\n[[steps]]\ntype = \"sign\"\n  [[steps.signers]]\n  alias = \"bench-signer\"\n\n\
         [receiver]\nurl = \"{}\"\nclient_alias = \"bench-client\"\ntrust = [\"partner-ca\"]\n",
        partner.url("/in")
    );
    Flows::new(keystore.clone()).deploy(&admin(), &source).await.unwrap();
    node.sync().await.unwrap();
    let payload = vec![0x5au8; 1024];
    node.handle("bench", payload.clone(), None).await.unwrap();
    for in_flight in [1usize, 8] {
        let started = Instant::now();
        let limit = Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for _ in 0..in_flight {
            let node = Arc::clone(node);
            let payload = payload.clone();
            tasks.push(tokio::spawn(async move {
                let mut sent = 0u64;
                while started.elapsed() < limit {
                    let answer = node.handle("bench", payload.clone(), Some("application/octet-stream")).await.unwrap();
                    assert_eq!(answer.status, 200);
                    sent += 1;
                }
                sent
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        let rate = total as f64 / started.elapsed().as_secs_f64();
        println!("flow throughput, sign P-256 + mTLS post, 1 KiB, {in_flight} in flight: {rate:>8.0} messages/s");
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let count = env_number("KEYWARD_BENCH_ACTIVATIONS", 30);
    let seconds = env_number("KEYWARD_BENCH_SECONDS", 3);
    sqlite_one_node(count, seconds).await;
    postgres_three_nodes(count).await;
}
