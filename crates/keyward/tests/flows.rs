//! Flows end to end on one node (the one `keyward serve` runs): a flow that signs with two
//! aliases and posts over mutual TLS to a partner that requires client certificates; the
//! partner's copies verify in `openssl cms -verify`. Then, under a steady stream of
//! messages, the client certificate's staged version is activated: no message fails and
//! the partner sees the new certificate from the moment the node has applied the change.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

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
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let old_ca = Ca::new("Client CA 2025");
        let new_ca = Ca::new("Client CA 2026");
        let server_ca = Ca::new("Partner Server CA");
        let accepted: Vec<&keyward_crypto::Certificate> =
            if partner_accepts_new_ca { vec![&old_ca.certificate, &new_ca.certificate] } else { vec![&old_ca.certificate] };
        let partner = Partner::start_with(&server_ca, &accepted).await;
        let server = Server::start(&d.join("data"));
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
