//! Flows end to end on one node (the one `keyward serve` runs): a flow that signs with two
//! aliases and posts over mutual TLS to a partner that requires client certificates; the
//! partner's copies verify in `openssl cms -verify`. Then, under a steady stream of
//! messages, the client certificate's staged version is activated: no message fails and
//! the partner sees the new certificate from the moment the node has applied the change.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keyward_runtime::testing::{Ca, Partner};
use support::{Server, admin_token, issue_files, keyward, text};

struct Setup {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    server: Server,
    token: String,
    old_ca: Ca,
    new_ca: Ca,
    partner: Partner,
}

impl Setup {
    fn kw(&self, args: &[&str]) -> Output {
        keyward(&self.server, &self.token, &self.dir, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.kw(args);
        assert!(output.status.success(), "{args:?} failed:\n{}", text(&output));
        text(&output)
    }

    /// A keyward server with signing keys, a client certificate (v1 active from the old
    /// CA, v2 staged from the new CA), the partner's server CA, and a flow to the partner.
    async fn new(partner_accepts_new_ca: bool) -> Setup {
        Setup::with_database(partner_accepts_new_ca, None).await
    }

    async fn with_database(partner_accepts_new_ca: bool, database_url: Option<&str>) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let old_ca = Ca::new("Client CA 2025");
        let new_ca = Ca::new("Client CA 2026");
        let server_ca = Ca::new("Partner Server CA");
        let accepted: Vec<&keyward_crypto::Certificate> =
            if partner_accepts_new_ca { vec![&old_ca.certificate, &new_ca.certificate] } else { vec![&old_ca.certificate] };
        let partner = Partner::start_with(&server_ca, &accepted).await;
        let server = match database_url {
            Some(url) => Server::start_with_env(&d.join("data"), &[("KEYWARD_DATABASE_URL", url)]),
            None => Server::start(&d.join("data")),
        };
        let token = admin_token(&d.join("data"));
        let setup = Setup { _dir: dir, dir: d.clone(), server, token, old_ca, new_ca, partner };
        std::fs::write(d.join("partner-ca.pem"), setup.partner.server_ca.to_pem()).unwrap();
        setup.ok(&["keys", "import", "partner-ca", "--file", "partner-ca.pem"]);
        issue_files(&d, &setup.old_ca, "tls client 2025", "v1");
        setup.ok(&["keys", "import", "tls-client", "--file", "v1.key", "--file", "v1.pem"]);
        issue_files(&d, &setup.new_ca, "tls client 2026", "v2");
        setup.ok(&["keys", "import", "tls-client", "--file", "v2.key", "--file", "v2.pem", "--staged"]);
        setup.ok(&["keys", "create", "sign-rsa", "--algorithm", "rsa-2048", "--subject", "CN=orders signing RSA"]);
        setup.ok(&["keys", "create", "sign-ec", "--algorithm", "ec-p256", "--subject", "CN=orders signing EC"]);
        let flow = format!(
            "name = \"orders\"\n\
             description = \"Orders, signed twice, to the partner over mutual TLS\"\n\n\
             [[steps]]\ntype = \"sign\"\n  [[steps.signers]]\n  alias = \"sign-rsa\"\n  [[steps.signers]]\n  alias = \"sign-ec\"\n\n\
             [receiver]\nurl = \"{}\"\nclient_alias = \"tls-client\"\ntrust = [\"partner-ca\"]\n",
            setup.partner.url("/in/orders")
        );
        std::fs::write(d.join("orders.toml"), flow).unwrap();
        let deployed = setup.ok(&["flows", "deploy", "orders.toml"]);
        assert!(deployed.contains("deployed orders (generation 1, started)"), "{deployed}");
        setup
    }

    fn flow_url(&self) -> String {
        format!("{}/flows/orders", self.server.base)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_signs_twice_and_posts_over_mutual_tls() {
    let setup = Setup::new(false).await;
    let d = setup.dir.clone();
    let sender = reqwest::Client::new();
    // The node has the flow once its follower has synced; the deploy answered after the
    // store had it, so allow the sync a moment.
    let mut messages = Vec::new();
    for n in 0..12 {
        let message = format!("<order id=\"{n}\">widgets</order>\n");
        let mut answer = sender.post(setup.flow_url()).body(message.clone()).send().await.unwrap();
        for _ in 0..50 {
            if answer.status() != 404 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            answer = sender.post(setup.flow_url()).body(message.clone()).send().await.unwrap();
        }
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
        assert_eq!(answer.text().await.unwrap(), "CN=tls client 2025, O=Test Partner", "the partner's answer comes back");
        messages.push(message);
    }
    // The partner verifies each copy with OpenSSL against the two signing certificates.
    setup.ok(&["keys", "export", "sign-rsa", "--format", "pem", "--out", "sign-rsa.pem"]);
    setup.ok(&["keys", "export", "sign-ec", "--format", "pem", "--out", "sign-ec.pem"]);
    let trusted = std::fs::read_to_string(d.join("sign-rsa.pem")).unwrap() + &std::fs::read_to_string(d.join("sign-ec.pem")).unwrap();
    std::fs::write(d.join("trusted.pem"), trusted).unwrap();
    let received = setup.partner.bodies.lock().unwrap().clone();
    assert_eq!(received.len(), messages.len());
    for (index, ((subject, body), message)) in received.iter().zip(&messages).enumerate() {
        assert_eq!(subject, "CN=tls client 2025, O=Test Partner");
        std::fs::write(d.join("received.p7m"), body).unwrap();
        let verified = Command::new("openssl")
            .args(["cms", "-verify", "-inform", "DER", "-in", "received.p7m", "-CAfile", "trusted.pem", "-purpose", "any"])
            .args(["-binary", "-out", "content.xml", "-signer", "signers.pem"])
            .current_dir(&d)
            .output()
            .unwrap();
        assert!(verified.status.success(), "message {index}: {}", text(&verified));
        assert_eq!(&std::fs::read_to_string(d.join("content.xml")).unwrap(), message);
        let signers = std::fs::read_to_string(d.join("signers.pem")).unwrap();
        assert_eq!(signers.matches("BEGIN CERTIFICATE").count(), 2, "two signatures in message {index}");
    }

    // Where-used names the flow, and the nodes' observations arrive with their heartbeat.
    let mut usage = String::new();
    for _ in 0..40 {
        usage = setup.ok(&["usage", "tls-client"]);
        if usage.contains("12 message(s)") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(usage.contains("receiver client certificate"), "{usage}");
    assert!(usage.contains("version 1") && usage.contains("12 message(s)"), "{usage}");
    let nodes = setup.ok(&["nodes", "list"]);
    assert!(nodes.contains("orders:started:g1") && nodes.contains(" yes "), "{nodes}");

    // A stopped flow answers 503 with Retry-After; started again, it works.
    setup.ok(&["flows", "stop", "orders"]);
    let mut status = 200;
    for _ in 0..50 {
        let answer = sender.post(setup.flow_url()).body("x").send().await.unwrap();
        status = answer.status().as_u16();
        if status == 503 {
            assert_eq!(answer.headers()["retry-after"], "5");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 503);
    setup.ok(&["flows", "start", "orders"]);

    // A flow naming an unknown alias is refused with its line, and nothing changes.
    std::fs::write(d.join("bad.toml"), "name = \"orders\"\n[receiver]\nurl = \"https://127.0.0.1:1/\"\nclient_alias = \"nobody\"\n").unwrap();
    let refused = setup.kw(&["flows", "deploy", "bad.toml"]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("line 4"), "{}", text(&refused));
    let shown = setup.ok(&["flows", "show", "orders"]);
    assert!(shown.contains("generation 1"), "{shown}");
    setup.server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activating_the_client_certificate_under_load_loses_no_message() {
    let setup = Arc::new(Setup::new(true).await);
    let sender = reqwest::Client::new();
    // Wait until the node runs the flow.
    for _ in 0..100 {
        if sender.post(setup.flow_url()).body("warm-up").send().await.unwrap().status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let running = Arc::new(AtomicBool::new(true));
    let load = {
        let setup = Arc::clone(&setup);
        let running = Arc::clone(&running);
        tokio::spawn(async move {
            let mut sent = Vec::new();
            while running.load(Ordering::Relaxed) {
                let answer = sender.post(setup.flow_url()).body("<order/>").send().await;
                let ok = matches!(&answer, Ok(a) if a.status() == 200);
                sent.push((Instant::now(), ok));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            sent
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let activate = setup.ok(&["keys", "activate", "tls-client", "--version", "2"]);
    let activated_at = Instant::now();
    assert!(activate.contains("2"), "{activate}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    running.store(false, Ordering::Relaxed);
    let sent = load.await.unwrap();
    let failed = sent.iter().filter(|(_, ok)| !ok).count();
    assert_eq!(failed, 0, "{failed} of {} messages failed", sent.len());
    // The partner saw v1, then only v2: one message at a time, so no request opened
    // before the swap can finish after one opened after it.
    let seen = setup.partner.seen.lock().unwrap().clone();
    let first_new = seen.iter().position(|s| s.contains("2026")).expect("the new certificate reached the partner");
    assert!(seen[..first_new].iter().all(|s| s.contains("2025")), "{seen:?}");
    assert!(seen[first_new..].iter().all(|s| s.contains("2026")), "{seen:?}");
    assert!(seen.len() > 100, "only {} messages under load", seen.len());
    let after: Vec<_> = sent.iter().filter(|(at, _)| *at > activated_at).collect();
    assert!(!after.is_empty());
    eprintln!("{} messages, {} after the activation; new certificate from message {first_new}", seen.len(), after.len());
}

/// A fresh PostgreSQL database for one test, dropped at the end; `None` (test skipped) when
/// `KEYWARD_TEST_POSTGRES_URL` is not set.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    fn create(case: &str) -> Option<Database> {
        let Ok(admin_url) = std::env::var("KEYWARD_TEST_POSTGRES_URL") else {
            println!("skipped: KEYWARD_TEST_POSTGRES_URL is not set");
            return None;
        };
        let name = format!("kw_{case}_{}", std::process::id());
        let created = Command::new("psql").arg(&admin_url).args(["-q", "-c", &format!("CREATE DATABASE {name}")]).output().unwrap();
        assert!(created.status.success(), "{}", text(&created));
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base).to_owned();
        Some(Database { url: format!("{base}/{name}"), admin_url, name })
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.admin_url)
            .args(["-q", "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_postgres_follow_an_activation_under_load() {
    let Some(database) = Database::create("three_nodes") else { return };
    let setup = Arc::new(Setup::with_database(true, Some(&database.url)).await);
    let data = setup.dir.join("data");
    let env = [("KEYWARD_DATABASE_URL", database.url.as_str())];
    let nodes = [Server::start_node(&data, "node-2", &env), Server::start_node(&data, "node-3", &env)];
    let urls: Vec<String> = std::iter::once(setup.flow_url())
        .chain(nodes.iter().map(|n| format!("{}/flows/orders", n.base)))
        .collect();
    let sender = reqwest::Client::new();
    // Every node runs the flow.
    for url in &urls {
        let mut status = 0;
        for _ in 0..100 {
            status = sender.post(url).body("warm-up").send().await.unwrap().status().as_u16();
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(status, 200, "{url}");
    }
    let listed = setup.ok(&["nodes", "list"]);
    for id in ["node-2", "node-3", "serve-"] {
        assert!(listed.contains(id), "{listed}");
    }

    let running = Arc::new(AtomicBool::new(true));
    let load = {
        let running = Arc::clone(&running);
        let urls = urls.clone();
        tokio::spawn(async move {
            // Per node, the client certificate the partner saw, in order.
            let mut seen: Vec<Vec<String>> = vec![Vec::new(); urls.len()];
            let mut failed = 0;
            let mut turn = 0;
            while running.load(Ordering::Relaxed) {
                let index = turn % urls.len();
                turn += 1;
                match sender.post(&urls[index]).body("<order/>").send().await {
                    Ok(answer) if answer.status() == 200 => seen[index].push(answer.text().await.unwrap()),
                    _ => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            (seen, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    setup.ok(&["keys", "activate", "tls-client", "--version", "2"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    running.store(false, Ordering::Relaxed);
    let (seen, failed) = load.await.unwrap();
    assert_eq!(failed, 0, "messages failed during the activation");
    for (index, answers) in seen.iter().enumerate() {
        let first_new = answers.iter().position(|s| s.contains("2026")).unwrap_or_else(|| panic!("node {index} never used v2: {answers:?}"));
        assert!(answers[..first_new].iter().all(|s| s.contains("2025")), "node {index}: {answers:?}");
        assert!(answers[first_new..].iter().all(|s| s.contains("2026")), "node {index}: {answers:?}");
        assert!(answers.len() > 30, "node {index} carried only {} messages", answers.len());
    }
    let listed = setup.ok(&["nodes", "list"]);
    assert_eq!(listed.matches(" yes ").count(), 3, "every node in sync: {listed}");
    for node in nodes {
        node.stop();
    }
}

fn openssl(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is needed for this test");
    assert!(output.status.success(), "openssl {args:?}: {}", text(&output));
    output
}

/// Inbound: the sender's message is encrypted to keyward's key and signed by the sender
/// (both by OpenSSL); a flow decrypts with any valid key, verifies against the sender's
/// certificate and passes the content on. Outbound: a flow signs and encrypts to the
/// partner's certificate; OpenSSL opens and verifies what the partner received. And a
/// receiver that is not there: retried with backoff, then 502 with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decrypt_verify_sign_encrypt_steps_and_retries() {
    let setup = Setup::new(false).await;
    let d = setup.dir.clone();
    // The sender's signing key and keyward's decryption key; the partner's encryption key.
    openssl(&d, &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc", "-keyout", "sender.key", "-subj", "/CN=sender", "-days", "30", "-out", "sender.pem"]);
    setup.ok(&["keys", "import", "sender-signing", "--file", "sender.pem"]);
    setup.ok(&["keys", "create", "inbound", "--algorithm", "rsa-2048", "--subject", "CN=inbound"]);
    setup.ok(&["keys", "export", "inbound", "--format", "pem", "--out", "inbound.pem"]);
    openssl(&d, &["req", "-x509", "-newkey", "rsa:2048", "-noenc", "-keyout", "partner-enc.key", "-subj", "/CN=partner encryption", "-days", "30", "-out", "partner-enc.pem"]);
    setup.ok(&["keys", "import", "partner-enc", "--file", "partner-enc.pem"]);
    let url = setup.partner.url("/in");
    let flows = [
        format!("name = \"inbound\"\n[[steps]]\ntype = \"decrypt\"\n[[steps]]\ntype = \"verify\"\ntrust = [\"sender-signing\"]\n[receiver]\nurl = \"{url}\"\nclient_alias = \"tls-client\"\ntrust = [\"partner-ca\"]\n"),
        format!("name = \"outbound\"\n[[steps]]\ntype = \"sign\"\n  [[steps.signers]]\n  alias = \"sign-ec\"\n[[steps]]\ntype = \"encrypt\"\nrecipients = [\"partner-enc\"]\n[receiver]\nurl = \"{url}\"\nclient_alias = \"tls-client\"\ntrust = [\"partner-ca\"]\n"),
        "name = \"nowhere\"\n[receiver]\nurl = \"http://127.0.0.1:9/in\"\nretries = 2\nbackoff_ms = 50\nconnect_timeout_ms = 500\n".to_owned(),
    ];
    for (index, flow) in flows.iter().enumerate() {
        std::fs::write(d.join(format!("flow-{index}.toml")), flow).unwrap();
        setup.ok(&["flows", "deploy", &format!("flow-{index}.toml")]);
    }
    let sender = reqwest::Client::new();
    let post = |name: &'static str, body: Vec<u8>| {
        let sender = sender.clone();
        let url = format!("{}/flows/{name}", setup.server.base);
        async move {
            for _ in 0..50 {
                let answer = sender.post(&url).body(body.clone()).send().await.unwrap();
                if answer.status() != 404 {
                    return (answer.status().as_u16(), answer.text().await.unwrap());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("flow {name} never became available");
        }
    };

    // Inbound.
    std::fs::write(d.join("order.xml"), "<order id=\"inbound\"/>\n").unwrap();
    openssl(&d, &["cms", "-sign", "-binary", "-nodetach", "-outform", "DER", "-in", "order.xml", "-signer", "sender.pem", "-inkey", "sender.key", "-out", "signed.p7m"]);
    openssl(&d, &["cms", "-encrypt", "-binary", "-outform", "DER", "-aes256", "-in", "signed.p7m", "-out", "sealed.p7m", "inbound.pem"]);
    let (status, answer) = post("inbound", std::fs::read(d.join("sealed.p7m")).unwrap()).await;
    assert_eq!(status, 200, "{answer}");
    let received = setup.partner.bodies.lock().unwrap().last().cloned().unwrap();
    assert_eq!(received.1, b"<order id=\"inbound\"/>\n");
    // A message signed by someone else does not verify: 422, nothing reaches the partner.
    openssl(&d, &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc", "-keyout", "mallory.key", "-subj", "/CN=mallory", "-days", "30", "-out", "mallory.pem"]);
    openssl(&d, &["cms", "-sign", "-binary", "-nodetach", "-outform", "DER", "-in", "order.xml", "-signer", "mallory.pem", "-inkey", "mallory.key", "-out", "forged.p7m"]);
    openssl(&d, &["cms", "-encrypt", "-binary", "-outform", "DER", "-aes256", "-in", "forged.p7m", "-out", "forged-sealed.p7m", "inbound.pem"]);
    let before = setup.partner.bodies.lock().unwrap().len();
    let (status, answer) = post("inbound", std::fs::read(d.join("forged-sealed.p7m")).unwrap()).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer.contains("step 2 (verify)"), "{answer}");
    assert_eq!(setup.partner.bodies.lock().unwrap().len(), before);

    // Outbound.
    let (status, answer) = post("outbound", b"<order id=\"outbound\"/>\n".to_vec()).await;
    assert_eq!(status, 200, "{answer}");
    let received = setup.partner.bodies.lock().unwrap().last().cloned().unwrap();
    std::fs::write(d.join("to-partner.p7m"), &received.1).unwrap();
    openssl(&d, &["cms", "-decrypt", "-inform", "DER", "-in", "to-partner.p7m", "-recip", "partner-enc.pem", "-inkey", "partner-enc.key", "-out", "opened.p7m"]);
    setup.ok(&["keys", "export", "sign-ec", "--format", "pem", "--out", "sign-ec.pem"]);
    openssl(&d, &["cms", "-verify", "-inform", "DER", "-in", "opened.p7m", "-CAfile", "sign-ec.pem", "-purpose", "any", "-binary", "-out", "outbound.xml"]);
    assert_eq!(std::fs::read_to_string(d.join("outbound.xml")).unwrap(), "<order id=\"outbound\"/>\n");

    // No receiver: three attempts with backoff, then 502 naming the cause.
    let started = Instant::now();
    let (status, answer) = post("nowhere", b"x".to_vec()).await;
    assert_eq!(status, 502, "{answer}");
    assert!(answer.contains("after 3 attempts"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(150), "backoff 50 + 100 ms");

    // Where-used: a decrypt step uses any valid key, so it is listed for every key pair.
    let usage = setup.ok(&["usage", "inbound"]);
    assert!(usage.contains("flows that use any valid key") && usage.contains("inbound"), "{usage}");
    let usage = setup.ok(&["usage", "partner-enc"]);
    assert!(usage.contains("outbound"), "{usage}");
}

/// A second node on the same SQLite file (same host): it runs the deployed flow too; a flow
/// stopped on that node alone answers 503 there and keeps working on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_the_sqlite_file_and_a_stop_on_one_node() {
    let setup = Setup::new(false).await;
    let node = Server::start_node(&setup.dir.join("data"), "node-2", &[]);
    let urls = [setup.flow_url(), format!("{}/flows/orders", node.base)];
    let sender = reqwest::Client::new();
    let status_of = |url: String| {
        let sender = sender.clone();
        async move { sender.post(&url).body("<order/>").send().await.unwrap().status().as_u16() }
    };
    let wait_for = |url: String, wanted: u16| {
        let status_of = &status_of;
        async move {
            let mut status = 0;
            for _ in 0..100 {
                status = status_of(url.clone()).await;
                if status == wanted {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("{url} answered {status}, not {wanted}");
        }
    };
    for url in &urls {
        wait_for(url.clone(), 200).await;
    }
    let changed = setup.ok(&["flows", "stop", "orders", "--node", "node-2"]);
    assert!(changed.contains("stopped orders on node node-2 only"), "{changed}");
    wait_for(urls[1].clone(), 503).await;
    assert_eq!(status_of(urls[0].clone()).await, 200);
    let shown = setup.ok(&["flows", "show", "orders"]);
    assert!(shown.contains("on node node-2: stopped"), "{shown}");
    setup.ok(&["flows", "start", "orders", "--node", "node-2"]);
    wait_for(urls[1].clone(), 200).await;
    // A change for every node ends the per-node state.
    setup.ok(&["flows", "restart", "orders", "--all-nodes"]);
    let shown = setup.ok(&["flows", "show", "orders"]);
    assert!(!shown.contains("on node node-2"), "{shown}");
    let mut listed = String::new();
    for _ in 0..30 {
        listed = setup.ok(&["nodes", "list"]);
        if listed.matches("orders:started:g2").count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed.matches("orders:started:g2").count(), 2, "{listed}");
    node.stop();
}
