//! Every renewal procedure of the seeds, end to end: one test per variant (11), plus one
//! where a partner is left out of the update and the probe stops the renewal before the
//! new key is activated.
//!
//! Each test starts `keyward serve`, real partner stand-ins on loopback (a TLS server that
//! requires client certificates from CAs its administrator changes, a CMS verifier, a CMS
//! decryptor, a sender that verifies signed responses), and sends a message every 10 ms
//! through the flow for the whole procedure. It drives every step through the command line
//! as the tenant administrator, who also speaks for the partners; the test changes the
//! partners' configuration where the seed's partner administrator does. Where the seed
//! promises no downtime, no message may fail; where it needs downtime, failures may only
//! happen inside the window, and a sender that retries loses nothing.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyward_crypto::{Certificate, Imported, PrivateKey};
use keyward_runtime::testing::{Ca, HttpPartner, Judge, Partner, cms_decryptor, cms_verifier};
use serde_json::Value;
use support::{Server, admin_token, issue_files, keyward, text};

// ----- the keyward side ----------------------------------------------------------------------

struct Kw {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    server: Server,
    token: String,
}

impl Kw {
    fn start() -> Kw {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let server = Server::start(&d.join("data"));
        let token = admin_token(&d.join("data"));
        Kw { _dir: dir, dir: d, server, token }
    }

    fn kw(&self, args: &[&str]) -> Output {
        keyward(&self.server, &self.token, &self.dir, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_as(&self.token, args)
    }

    /// Runs the command line with another token.
    fn ok_as(&self, token: &str, args: &[&str]) -> String {
        let output = keyward(&self.server, token, &self.dir, args);
        assert!(output.status.success(), "{args:?} failed:\n{}", text(&output));
        text(&output)
    }

    /// A platform token, issued on the server as the platform operator does.
    fn platform_token(&self) -> String {
        let issued = Command::new(env!("CARGO_BIN_EXE_keyward"))
            .args(["token", "issue", "--role", "platform", "--name", "platform-ops", "--out", "platform.token", "--data-dir"])
            .arg(self.dir.join("data"))
            .current_dir(&self.dir)
            .env_remove("KEYWARD_DATABASE_URL")
            .env_remove("KEYWARD_MASTER_KEY")
            .output()
            .unwrap();
        assert!(issued.status.success(), "{}", text(&issued));
        self.read("platform.token").trim().to_owned()
    }

    fn fails(&self, args: &[&str]) -> String {
        let output = self.kw(args);
        assert!(!output.status.success(), "{args:?} should have failed:\n{}", text(&output));
        text(&output)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let output = self.kw(&all);
        assert!(output.status.success(), "{args:?} failed:\n{}", text(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) {
        std::fs::write(self.dir.join(name), contents).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap()
    }

    fn deploy(&self, name: &str, source: &str) {
        self.write(&format!("{name}.toml"), source);
        self.ok(&["flows", "deploy", &format!("{name}.toml")]);
    }

    fn active_version(&self, alias: &str) -> Option<u64> {
        let entry = self.json(&["keys", "show", alias]);
        entry["versions"].as_array().unwrap().iter().find(|v| v["state"] == "active").map(|v| v["version"].as_u64().unwrap())
    }

    fn flow_url(&self, flow: &str) -> String {
        format!("{}/flows/{flow}", self.server.base)
    }

    /// Starts a renewal and returns it.
    fn start_renewal(&self, alias: &str, expect_variant: &str) -> Value {
        let plan = self.json(&["renew", "plan", alias]);
        assert_eq!(plan["renewal"]["variant"], expect_variant, "plan: {plan:#}");
        let renewal = self.json(&["renew", "start", alias]);
        assert_eq!(renewal["variant"], expect_variant);
        assert_eq!(renewal["state"], "running");
        renewal
    }

    fn confirm(&self, id: i64, step: &str, extra: &[&str]) -> Value {
        let id = id.to_string();
        let mut args = vec!["renew", "confirm", id.as_str(), step];
        args.extend(extra);
        self.json(&args)
    }

    fn show(&self, id: i64) -> Value {
        self.json(&["renew", "show", &id.to_string()])
    }

    /// A certificate of `alias` (a version, or the active one) as keyward exports it.
    fn certificate(&self, alias: &str, version: Option<u32>) -> Certificate {
        let file = format!("{alias}-{}.pem", version.map_or("active".to_owned(), |v| v.to_string()));
        let mut args = vec!["keys", "export", alias, "--format", "pem", "--out", file.as_str()];
        let v = version.map(|v| v.to_string());
        if let Some(v) = &v {
            args.extend(["--version", v.as_str()]);
        }
        self.ok(&args);
        match keyward_crypto::import(self.read(&file).as_bytes(), None).unwrap() {
            Imported::Certificates(chain) => chain.leaf().clone(),
            Imported::KeyPair { chain, .. } => chain.leaf().clone(),
        }
    }
}

/// The step keyed `key` (its first instance) of a renewal.
fn step<'a>(renewal: &'a Value, key: &str) -> &'a Value {
    renewal["steps"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no step {key}: {renewal:#}"))
}

/// The first step that is not finished.
fn waiting(renewal: &Value) -> String {
    renewal["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| !matches!(s["state"].as_str().unwrap(), "done" | "overridden" | "skipped" | "scheduled"))
        .map_or_else(|| "-".to_owned(), |s| s["key"].as_str().unwrap().to_owned())
}

fn assert_waits(renewal: &Value, key: &str) {
    assert_eq!(waiting(renewal), key, "{renewal:#}");
}

fn assert_completed(renewal: &Value) {
    assert_eq!(renewal["state"], "completed", "{renewal:#}");
    for s in renewal["steps"].as_array().unwrap() {
        assert!(s["by"].is_string() || s["state"] == "skipped", "every step records who: {s:#}");
    }
}

// ----- the senders ---------------------------------------------------------------------------

/// What a sender saw for one message.
#[derive(Debug, Clone)]
struct Sent {
    /// When each failed attempt ended, and why.
    failures: Vec<(Instant, String)>,
    /// Whether it got through in the end.
    delivered: bool,
}

/// How long after a renewal's last step the nodes may still run the previous deployment
/// state (they apply changes within milliseconds; see the propagation benchmark).
const NODE_PROPAGATION: Duration = Duration::from_millis(250);

type Check = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// A sender posting a message every 10 ms until stopped; a retrying sender tries each
/// message again every 25 ms (for up to 20 s) until it is answered 200 and passes `check`.
struct Load {
    running: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Sent>>,
}

impl Load {
    async fn start(url: String, retry: bool, check: Option<Check>) -> Load {
        let client = reqwest::Client::new();
        // Wait until a node runs the flow.
        for _ in 0..200 {
            if client.post(&url).body("warm-up").send().await.is_ok_and(|a| a.status() == 200) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let running = Arc::new(AtomicBool::new(true));
        let paused = Arc::new(AtomicBool::new(false));
        let (r, p) = (Arc::clone(&running), Arc::clone(&paused));
        let task = tokio::spawn(async move {
            let mut sent: Vec<Sent> = Vec::new();
            let mut n = 0u64;
            while r.load(Ordering::Relaxed) {
                if p.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                n += 1;
                let body = format!("<order id=\"{n}\">widgets</order>");
                let mut record = Sent { failures: Vec::new(), delivered: false };
                for _ in 0..800 {
                    let outcome = match client.post(&url).body(body.clone()).send().await {
                        Ok(answer) => {
                            let status = answer.status();
                            let bytes = answer.bytes().await.unwrap_or_default();
                            if status == 200 {
                                check.as_ref().map_or(Ok(()), |c| c(&bytes))
                            } else {
                                Err(format!("{status}: {}", String::from_utf8_lossy(&bytes)))
                            }
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    match outcome {
                        Ok(()) => {
                            record.delivered = true;
                            break;
                        }
                        Err(why) => record.failures.push((Instant::now(), why)),
                    }
                    if !retry {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
                sent.push(record);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            sent
        });
        // Some messages go through before the procedure starts.
        tokio::time::sleep(Duration::from_millis(600)).await;
        Load { running, paused, task }
    }

    /// Goes on for another 600 ms (messages after the procedure), then stops.
    async fn stop(self) -> Vec<Sent> {
        tokio::time::sleep(Duration::from_millis(600)).await;
        self.running.store(false, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

/// Messages sent, failed attempts, messages lost.
fn tally(sent: &[Sent]) -> (usize, usize, usize) {
    (sent.len(), sent.iter().map(|s| s.failures.len()).sum(), sent.iter().filter(|s| !s.delivered).count())
}

fn assert_no_failure(name: &str, sent: &[Sent]) {
    let (messages, failed, lost) = tally(sent);
    let first = sent.iter().flat_map(|s| s.failures.first()).next();
    assert_eq!(failed, 0, "{name}: {failed} of {messages} messages failed; first: {first:?}");
    assert_eq!(lost, 0);
    assert!(messages >= 30, "{name}: only {messages} messages");
    eprintln!("{name}: {messages} messages, 0 failed");
}

fn assert_failures_inside(name: &str, sent: &[Sent], from: Instant, to: Instant) {
    let (messages, failed, lost) = tally(sent);
    assert_eq!(lost, 0, "{name}: a retrying sender lost {lost} message(s)");
    for s in sent {
        for (at, why) in &s.failures {
            let place = if *at < from {
                format!("{} ms before the window opened", (from - *at).as_millis())
            } else {
                format!("{} ms after it closed", (*at - to).as_millis())
            };
            assert!(*at >= from && *at <= to, "{name}: a failure outside the window ({place}): {why}");
        }
    }
    assert!(messages >= 30, "{name}: only {messages} messages");
    eprintln!("{name}: {messages} messages, {failed} failed attempt(s), all inside the window, 0 lost");
}

// ----- partner material made outside keyward -------------------------------------------------

/// An RSA key pair and self-signed certificate made by OpenSSL, as a partner makes its
/// encryption key: (PEM of key and certificate, key, certificate).
fn openssl_rsa(dir: &std::path::Path, name: &str) -> (String, PrivateKey, Certificate) {
    let key = dir.join(format!("{name}.key"));
    let cert = dir.join(format!("{name}.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-subj"])
        .arg(format!("/CN={name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let pem = std::fs::read_to_string(&key).unwrap() + &std::fs::read_to_string(&cert).unwrap();
    match keyward_crypto::import(pem.as_bytes(), None).unwrap() {
        Imported::KeyPair { key, chain } => (std::fs::read_to_string(&cert).unwrap(), key, chain.leaf().clone()),
        Imported::Certificates(_) => panic!("no key"),
    }
}

// ----- seed 001: client certificate with a new CA --------------------------------------------

struct TlsSetup {
    kw: Kw,
    old_ca: Ca,
    new_ca: Ca,
    partners: Vec<Partner>,
}

/// keyward with `tls-client` (v1 from the old CA) and one flow per partner posting over
/// mutual TLS with it; each partner trusts the old CA and is declared with `capabilities`.
async fn tls_setup(capabilities: &[&str]) -> TlsSetup {
    let kw = Kw::start();
    let old_ca = Ca::new("Client CA 2025");
    let new_ca = Ca::new("Client CA 2026");
    let server_ca = Ca::new("Partner Server CA");
    kw.write("partner-ca.pem", server_ca.certificate.to_pem());
    kw.ok(&["keys", "import", "partner-ca", "--file", "partner-ca.pem"]);
    issue_files(&kw.dir, &old_ca, "tls client", "v1");
    kw.ok(&["keys", "import", "tls-client", "--file", "v1.key", "--file", "v1.pem"]);
    let mut partners = Vec::new();
    for (n, caps) in capabilities.iter().enumerate() {
        let partner = Partner::start_with(&server_ca, &[&old_ca.certificate]).await;
        let name = format!("acme{n}");
        kw.ok(&["partners", "add", &name, "--url", &partner.url("/in"), "--capabilities", caps]);
        kw.deploy(
            &format!("orders{n}"),
            &format!(
                "name = \"orders{n}\"\n[receiver]\nurl = \"{}\"\npartner = \"{name}\"\nclient_alias = \"tls-client\"\ntrust = [\"partner-ca\"]\n",
                partner.url("/in")
            ),
        );
        partners.push(partner);
    }
    TlsSetup { kw, old_ca, new_ca, partners }
}

/// Imports the new CA's answer to the staged key's CSR through the renewal's input step.
fn import_ca_response(kw: &Kw, new_ca: &Ca, id: i64) -> Value {
    kw.ok(&["keys", "csr", "tls-client", "--out", "tls-client.csr"]);
    kw.write("tls-client-2026.pem", new_ca.sign_request(&kw.read("tls-client.csr")));
    kw.confirm(id, "import-response", &["--file", "tls-client-2026.pem"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_partner_accepts_both() {
    let s = tls_setup(&["two-client-certificates,two-cas"]).await;
    let kw = &s.kw;
    let renewal = s.kw.start_renewal("tls-client", "accepts-both");
    let id = renewal["id"].as_i64().unwrap();
    assert_eq!(step(&renewal, "stage-key")["state"], "done");
    assert_waits(&renewal, "import-response");
    // Activation outside the renewal is refused while it runs.
    assert!(kw.fails(&["keys", "activate", "tls-client"]).contains("renewal"));

    let load = Load::start(kw.flow_url("orders0"), false, None).await;
    let renewal = import_ca_response(kw, &s.new_ca, id);
    assert_waits(&renewal, "partner-accepts-both");
    let tasks = kw.ok(&["renew", "tasks", "--partner", "acme0"]);
    assert!(tasks.contains("partner-accepts-both"), "{tasks}");
    // The partner's administrator trusts the new CA too, and says so.
    s.partners[0].set_client_cas(&[&s.old_ca.certificate, &s.new_ca.certificate]);
    let renewal = kw.confirm(id, "partner-accepts-both", &["--note", "both CAs in the trust list"]);
    assert_eq!(step(&renewal, "probe-staged")["state"], "done", "{renewal:#}");
    assert_eq!(step(&renewal, "activate")["state"], "done");
    assert_eq!(step(&renewal, "restart-flows")["state"], "done");
    assert_waits(&renewal, "partner-removes-old");
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.partners[0].set_client_cas(&[&s.new_ca.certificate]);
    let renewal = kw.confirm(id, "partner-removes-old", &[]);
    assert_completed(&renewal);
    let sent = load.stop().await;
    assert_no_failure("001 accepts both", &sent);
    assert_eq!(kw.active_version("tls-client"), Some(3), "v2 was staged with its CSR, v3 is the CA's answer");
    // The next renewal stages a fresh key; the leftover v2 (older than the active one) is
    // not reused.
    let next = kw.json(&["renew", "start", "tls-client"]);
    assert_eq!(next["new_version"], 4, "{next:#}");
    let audit = kw.ok(&["audit", "list", "--limit", "100"]);
    assert!(audit.contains("renewals.confirm") && audit.contains("renewals.complete"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_partner_accepts_one_needs_downtime() {
    let s = tls_setup(&["two-cas"]).await;
    let kw = &s.kw;
    let renewal = kw.start_renewal("tls-client", "downtime");
    let id = renewal["id"].as_i64().unwrap();
    let renewal = import_ca_response(kw, &s.new_ca, id);
    assert_waits(&renewal, "agree-downtime");
    let load = Load::start(kw.flow_url("orders0"), true, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let window_opens = Instant::now();
    let renewal = kw.json(&["renew", "schedule-downtime", &id.to_string(), "--from", "now", "--to", "+10"]);
    assert_eq!(step(&renewal, "stop-flows")["state"], "done", "{renewal:#}");
    assert_eq!(step(&renewal, "activate")["state"], "done");
    assert_waits(&renewal, "partner-exchanges");
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.partners[0].set_client_cas(&[&s.new_ca.certificate]);
    let renewal = kw.confirm(id, "partner-exchanges", &[]);
    // The nodes apply the start within milliseconds of the renewal's last step.
    let window_closes = Instant::now() + NODE_PROPAGATION;
    assert_eq!(step(&renewal, "probe-active")["state"], "done", "{renewal:#}");
    assert_completed(&renewal);
    let sent = load.stop().await;
    assert_failures_inside("001 downtime", &sent, window_opens, window_closes);
    assert!(sent.iter().any(|s| s.failures.iter().any(|(_, why)| why.starts_with("503"))), "stopped flows answer 503");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_survives_a_restart_and_its_window_opens_by_itself() {
    let mut s = tls_setup(&["two-cas"]).await;
    let renewal = s.kw.start_renewal("tls-client", "downtime");
    let id = renewal["id"].as_i64().unwrap();
    import_ca_response(&s.kw, &s.new_ca, id);
    // The window opens in 9 seconds; nothing inside it may run before.
    let renewal = s.kw.json(&["renew", "schedule-downtime", &id.to_string(), "--from", "+0.15", "--to", "+10"]);
    assert_waits(&renewal, "stop-flows");
    assert_eq!(step(&renewal, "stop-flows")["state"], "pending");
    // The server dies (SIGKILL) and comes back; the renewal goes on where it was.
    s.kw.server.child.kill().unwrap();
    s.kw.server.child.wait().unwrap();
    s.kw.server = Server::start(&s.kw.dir.join("data"));
    let deadline = Instant::now() + Duration::from_secs(40);
    let renewal = loop {
        let renewal = s.kw.show(id);
        if step(&renewal, "activate")["state"] == "done" || Instant::now() > deadline {
            break renewal;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(step(&renewal, "stop-flows")["by"], "keyward", "{renewal:#}");
    assert_eq!(step(&renewal, "activate")["state"], "done", "the window opened by itself: {renewal:#}");
    assert_waits(&renewal, "partner-exchanges");
    assert!(s.kw.ok(&["flows", "list"]).contains("stopped"));
    let load = Load::start(s.kw.flow_url("orders0"), true, None).await;
    s.partners[0].set_client_cas(&[&s.new_ca.certificate]);
    assert_completed(&s.kw.confirm(id, "partner-exchanges", &[]));
    let sent = load.stop().await;
    let (messages, failed, lost) = tally(&sent);
    assert_eq!(lost, 0, "a retrying sender loses nothing");
    eprintln!("restart: {messages} messages, {failed} failed attempt(s) while the flow was stopped, 0 lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_left_out_is_found_by_the_probe_before_activation() {
    let s = tls_setup(&["two-client-certificates,two-cas", "two-client-certificates,two-cas"]).await;
    let kw = &s.kw;
    let renewal = kw.start_renewal("tls-client", "accepts-both");
    let id = renewal["id"].as_i64().unwrap();
    assert_eq!(renewal["partners"], serde_json::json!(["acme0", "acme1"]));
    let load = Load::start(kw.flow_url("orders1"), false, None).await;
    import_ca_response(kw, &s.new_ca, id);
    // Only acme0 is updated, but someone confirms for both.
    s.partners[0].set_client_cas(&[&s.old_ca.certificate, &s.new_ca.certificate]);
    kw.confirm(id, "partner-accepts-both", &["--partner", "acme0"]);
    let renewal = kw.confirm(id, "partner-accepts-both", &["--partner", "acme1"]);
    let probe = step(&renewal, "probe-staged");
    assert_eq!(probe["state"], "failed", "{renewal:#}");
    let why = probe["note"].as_str().unwrap();
    assert!(why.contains("orders1") && why.contains("acme1") && !why.contains("orders0 "), "{why}");
    assert_eq!(step(&renewal, "activate")["state"], "pending", "nothing was activated");
    assert_eq!(kw.active_version("tls-client"), Some(1));
    // Overriding needs a reason; fixing the partner and probing again goes on.
    assert!(kw.fails(&["renew", "confirm", &id.to_string(), "probe-staged", "--override"]).contains("reason"));
    s.partners[1].set_client_cas(&[&s.old_ca.certificate, &s.new_ca.certificate]);
    let renewal = kw.confirm(id, "probe-staged", &[]);
    assert_eq!(step(&renewal, "probe-staged")["state"], "done", "{renewal:#}");
    assert_waits(&renewal, "partner-removes-old");
    let sent = load.stop().await;
    assert_no_failure("partner left out", &sent);
}

// ----- seed 002: CMS/PKCS#7 outbound signer ---------------------------------------------------

struct SignerSetup {
    kw: Kw,
    partner: HttpPartner,
    old: Certificate,
}

/// keyward with `signer` (v1) and a flow that signs with it (and `second`, when given,
/// with `if_active`) and posts to a CMS verifier that trusts v1 and accepts up to
/// `max_signatures` signatures.
async fn signer_setup(capabilities: &str, max_signatures: usize, second: Option<&str>) -> SignerSetup {
    let kw = Kw::start();
    kw.ok(&["keys", "create", "signer", "--algorithm", "ec-p256", "--subject", "CN=orders signer"]);
    let old = kw.certificate("signer", None);
    let partner = HttpPartner::start(cms_verifier(vec![old.clone()], max_signatures)).await;
    kw.ok(&["partners", "add", "globex", "--url", &partner.url("/in"), "--capabilities", capabilities]);
    let mut signers = String::from("  [[steps.signers]]\n  alias = \"signer\"\n");
    if let Some(second) = second {
        signers = format!("{signers}  if_active = true\n  [[steps.signers]]\n  alias = \"{second}\"\n  if_active = true\n");
    }
    kw.deploy(
        "orders",
        &format!(
            "name = \"orders\"\n[[steps]]\ntype = \"sign\"\n{signers}\n[receiver]\nurl = \"{}\"\npartner = \"globex\"\n",
            partner.url("/in")
        ),
    );
    SignerSetup { kw, partner, old }
}

fn verifier(trusted: &[&Certificate], max: usize) -> Judge {
    cms_verifier(trusted.iter().map(|c| (*c).clone()).collect(), max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cms_signer_partner_verifies_both() {
    let s = signer_setup("two-signing-keys,two-signatures", 1, None).await;
    let kw = &s.kw;
    let load = Load::start(kw.flow_url("orders"), false, None).await;
    let renewal = kw.start_renewal("signer", "verifies-both");
    let id = renewal["id"].as_i64().unwrap();
    assert_waits(&renewal, "partner-verifies-both");
    let new = kw.certificate("signer", Some(2));
    s.partner.set_judge(verifier(&[&s.old, &new], 1));
    let renewal = kw.confirm(id, "partner-verifies-both", &[]);
    assert!(step(&renewal, "probe-message")["note"].as_str().unwrap().contains("globex"), "{renewal:#}");
    assert_eq!(step(&renewal, "probe-message")["state"], "done");
    assert_eq!(step(&renewal, "activate")["state"], "done");
    assert_waits(&renewal, "partner-removes-old");
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.partner.set_judge(verifier(&[&new], 1));
    assert_completed(&kw.confirm(id, "partner-removes-old", &[]));
    let sent = load.stop().await;
    assert_no_failure("002 verifies both", &sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cms_signer_partner_verifies_one_key_with_a_temporary_alias() {
    let s = signer_setup("two-signatures", 2, None).await;
    let kw = &s.kw;
    let load = Load::start(kw.flow_url("orders"), false, None).await;
    let renewal = kw.start_renewal("signer", "temporary-alias");
    let id = renewal["id"].as_i64().unwrap();
    assert_eq!(renewal["second_alias"], "signer.next");
    assert_eq!(step(&renewal, "add-signer")["state"], "done", "{renewal:#}");
    assert!(kw.ok(&["flows", "show", "orders"]).contains("signer.next"));
    assert_waits(&renewal, "partner-switches");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The partner now verifies the new key only: messages carry both signatures.
    let new = kw.certificate("signer.next", None);
    s.partner.set_judge(verifier(&[&new], 2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let renewal = kw.confirm(id, "partner-switches", &[]);
    assert_completed(&renewal);
    assert!(!kw.ok(&["flows", "show", "orders"]).contains("signer.next"), "the temporary alias left the flow");
    assert!(kw.fails(&["keys", "show", "signer.next"]).contains("no entry"));
    let adopted = kw.certificate("signer", None);
    assert_eq!(adopted.der(), new.der(), "the alias's active version is the new key");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = load.stop().await;
    assert_no_failure("002 temporary alias", &sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cms_signer_with_a_second_alias_already_in_the_step() {
    let s = signer_setup("two-signatures", 2, Some("signer-b")).await;
    let kw = &s.kw;
    let load = Load::start(kw.flow_url("orders"), false, None).await;
    let renewal = kw.start_renewal("signer", "second-alias");
    let id = renewal["id"].as_i64().unwrap();
    assert_eq!(renewal["second_alias"], "signer-b");
    assert_waits(&renewal, "partner-exchanges");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let new = kw.certificate("signer-b", None);
    s.partner.set_judge(verifier(&[&new], 2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_completed(&kw.confirm(id, "partner-exchanges", &[]));
    assert_eq!(kw.active_version("signer"), None, "the old key is retired");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // One signature again, by the new key: a partner accepting one signature takes it.
    s.partner.set_judge(verifier(&[&new], 1));
    let sent = load.stop().await;
    assert_no_failure("002 second alias", &sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cms_signer_partner_accepts_one_signature_needs_downtime() {
    let s = signer_setup("none", 1, None).await;
    let kw = &s.kw;
    let load = Load::start(kw.flow_url("orders"), true, None).await;
    let renewal = kw.start_renewal("signer", "one-signature");
    let id = renewal["id"].as_i64().unwrap();
    assert_waits(&renewal, "agree-downtime");
    let new = kw.certificate("signer", Some(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let window_opens = Instant::now();
    let renewal = kw.json(&["renew", "schedule-downtime", &id.to_string(), "--from", "now", "--to", "+10"]);
    assert_eq!(step(&renewal, "activate")["state"], "done", "{renewal:#}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.partner.set_judge(verifier(&[&new], 1));
    assert_completed(&kw.confirm(id, "partner-exchanges", &[]));
    let window_closes = Instant::now();
    let sent = load.stop().await;
    assert_failures_inside("002 one signature", &sent, window_opens, window_closes);
}

// ----- seed 003: outbound encryption, the partner renews its key -------------------------------

async fn encryption_setup(capabilities: &str) -> (Kw, HttpPartner, PrivateKey, Certificate) {
    let kw = Kw::start();
    let (pem, key, certificate) = openssl_rsa(&kw.dir, "initech-2025");
    kw.write("initech-2025-cert.pem", pem);
    kw.ok(&["keys", "import", "initech-enc", "--file", "initech-2025-cert.pem"]);
    let partner = HttpPartner::start(cms_decryptor(vec![(key.clone(), certificate.clone())])).await;
    kw.ok(&["partners", "add", "initech", "--url", &partner.url("/in"), "--capabilities", capabilities]);
    kw.deploy(
        "invoices",
        &format!(
            "name = \"invoices\"\n[[steps]]\ntype = \"encrypt\"\nrecipients = [\"initech-enc\"]\n\n[receiver]\nurl = \"{}\"\npartner = \"initech\"\n",
            partner.url("/in")
        ),
    );
    (kw, partner, key, certificate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_encryption_key_partner_decrypts_with_both() {
    let (kw, partner, old_key, old_cert) = encryption_setup("two-decryption-keys").await;
    let load = Load::start(kw.flow_url("invoices"), false, None).await;
    let renewal = kw.start_renewal("initech-enc", "decrypts-both");
    let id = renewal["id"].as_i64().unwrap();
    assert_waits(&renewal, "partner-new-key");
    let (pem, new_key, new_cert) = openssl_rsa(&kw.dir, "initech-2026");
    partner.set_judge(cms_decryptor(vec![(old_key, old_cert), (new_key.clone(), new_cert.clone())]));
    kw.confirm(id, "partner-new-key", &[]);
    kw.write("initech-2026-cert.pem", pem);
    let renewal = kw.confirm(id, "import-certificate", &["--file", "initech-2026-cert.pem"]);
    assert!(step(&renewal, "probe-message")["note"].as_str().unwrap().contains("accepted the test message"), "{renewal:#}");
    assert_eq!(step(&renewal, "activate")["state"], "done", "{renewal:#}");
    assert_waits(&renewal, "partner-removes-old");
    tokio::time::sleep(Duration::from_millis(300)).await;
    partner.set_judge(cms_decryptor(vec![(new_key, new_cert)]));
    assert_completed(&kw.confirm(id, "partner-removes-old", &[]));
    let sent = load.stop().await;
    assert_no_failure("003 decrypts both", &sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_encryption_key_partner_decrypts_with_one_undeploys() {
    let (kw, partner, _, _) = encryption_setup("none").await;
    let load = Load::start(kw.flow_url("invoices"), true, None).await;
    let renewal = kw.start_renewal("initech-enc", "undeploy");
    let id = renewal["id"].as_i64().unwrap();
    let (pem, new_key, new_cert) = openssl_rsa(&kw.dir, "initech-2026");
    kw.confirm(id, "partner-new-key", &[]);
    kw.write("initech-2026-cert.pem", pem);
    let renewal = kw.confirm(id, "import-certificate", &["--file", "initech-2026-cert.pem"]);
    assert_waits(&renewal, "agree-downtime");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let window_opens = Instant::now();
    let renewal = kw.json(&["renew", "schedule-downtime", &id.to_string(), "--from", "now", "--to", "+10"]);
    assert_eq!(step(&renewal, "undeploy-flows")["state"], "done", "{renewal:#}");
    assert!(kw.fails(&["flows", "show", "invoices"]).contains("no flow"));
    assert_waits(&renewal, "partner-exchanges");
    tokio::time::sleep(Duration::from_millis(300)).await;
    partner.set_judge(cms_decryptor(vec![(new_key, new_cert)]));
    let renewal = kw.confirm(id, "partner-exchanges", &[]);
    let window_closes = Instant::now() + NODE_PROPAGATION;
    assert_completed(&renewal);
    assert!(kw.ok(&["flows", "show", "invoices"]).contains("initech-enc"));
    let sent = load.stop().await;
    assert_failures_inside("003 undeploy", &sent, window_opens, window_closes);
}

// ----- seed 004: inbound response signing ------------------------------------------------------

/// keyward with `resp-sign` and a flow whose receiver echoes the request and whose
/// response step signs the answer; the sender verifies answers against `trusted`.
async fn response_setup(capabilities: &str) -> (Kw, HttpPartner, Certificate) {
    let kw = Kw::start();
    kw.ok(&["keys", "create", "resp-sign", "--algorithm", "ec-p256", "--subject", "CN=order responses"]);
    let old = kw.certificate("resp-sign", None);
    let backend = HttpPartner::start(Arc::new(|body: &[u8]| Ok(body.to_vec()))).await;
    kw.ok(&["partners", "add", "shop", "--capabilities", capabilities]);
    kw.deploy(
        "order-status",
        &format!(
            "name = \"order-status\"\nsender_partner = \"shop\"\n[[response_steps]]\ntype = \"sign\"\n  [[response_steps.signers]]\n  alias = \"resp-sign\"\n\n[receiver]\nurl = \"{}\"\n",
            backend.url("/status")
        ),
    );
    (kw, backend, old)
}

fn response_check(trusted: Arc<Mutex<Vec<Certificate>>>) -> Check {
    Arc::new(move |answer: &[u8]| {
        let judge = cms_verifier(trusted.lock().unwrap().clone(), 1);
        judge(answer).map(drop)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_signing_sender_verifies_both() {
    let (kw, _backend, old) = response_setup("two-response-keys").await;
    let trusted = Arc::new(Mutex::new(vec![old.clone()]));
    let load = Load::start(kw.flow_url("order-status"), false, Some(response_check(Arc::clone(&trusted)))).await;
    let renewal = kw.start_renewal("resp-sign", "verifies-both");
    let id = renewal["id"].as_i64().unwrap();
    assert_waits(&renewal, "sender-verifies-both");
    let new = kw.certificate("resp-sign", Some(2));
    *trusted.lock().unwrap() = vec![old, new.clone()];
    let renewal = kw.confirm(id, "sender-verifies-both", &[]);
    assert_waits(&renewal, "sender-removes-old");
    tokio::time::sleep(Duration::from_millis(300)).await;
    *trusted.lock().unwrap() = vec![new];
    let renewal = kw.confirm(id, "sender-removes-old", &[]);
    assert_completed(&renewal);
    let removal = step(&renewal, "schedule-removal");
    assert_eq!(removal["state"], "scheduled");
    let due = removal["due"].as_str().unwrap();
    assert!(due > renewal["created_at"].as_str().unwrap(), "{due}");
    assert!(kw.fails(&["keys", "delete", "resp-sign"]).contains("decrypt"), "the old key is kept");
    let sent = load.stop().await;
    assert_no_failure("004 verifies both", &sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_signing_sender_verifies_one_needs_downtime() {
    let (kw, _backend, old) = response_setup("none").await;
    let trusted = Arc::new(Mutex::new(vec![old]));
    let load = Load::start(kw.flow_url("order-status"), true, Some(response_check(Arc::clone(&trusted)))).await;
    let renewal = kw.start_renewal("resp-sign", "downtime");
    let id = renewal["id"].as_i64().unwrap();
    assert_waits(&renewal, "agree-downtime");
    let new = kw.certificate("resp-sign", Some(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let window_opens = Instant::now();
    let renewal = kw.json(&["renew", "schedule-downtime", &id.to_string(), "--from", "now", "--to", "+10"]);
    assert_waits(&renewal, "sender-stops");
    // The sender stops sending and exchanges the certificate.
    load.paused.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    *trusted.lock().unwrap() = vec![new];
    let renewal = kw.confirm(id, "sender-stops", &[]);
    assert_eq!(step(&renewal, "activate")["state"], "done", "{renewal:#}");
    assert_waits(&renewal, "sender-starts");
    tokio::time::sleep(Duration::from_millis(100)).await;
    load.paused.store(false, Ordering::Relaxed);
    let renewal = kw.confirm(id, "sender-starts", &[]);
    let window_closes = Instant::now();
    assert_completed(&renewal);
    let sent = load.stop().await;
    assert_failures_inside("004 downtime", &sent, window_opens, window_closes);
}

// ----- seed 000: platform-key activation -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_key_activation() {
    let kw = Kw::start();
    let platform_token = kw.platform_token();
    let platform = |args: &[&str]| kw.ok_as(&platform_token, args);
    let old_ca = Ca::new("Platform CA 2025");
    let new_ca = Ca::new("Platform CA 2026");
    let server_ca = Ca::new("Partner Server CA");
    issue_files(&kw.dir, &old_ca, "platform client", "p1");
    issue_files(&kw.dir, &new_ca, "platform client", "p2");
    platform(&["keys", "import", "platform-client", "--file", "p1.key", "--file", "p1.pem", "--staged"]);
    kw.ok(&["keys", "activate", "platform-client"]);
    kw.write("partner-ca.pem", server_ca.certificate.to_pem());
    kw.ok(&["keys", "import", "partner-ca", "--file", "partner-ca.pem"]);
    let partner = Partner::start_with(&server_ca, &[&old_ca.certificate]).await;
    kw.ok(&["partners", "add", "hooli", "--url", &partner.url("/in")]);
    kw.deploy(
        "payroll",
        &format!(
            "name = \"payroll\"\n[receiver]\nurl = \"{}\"\npartner = \"hooli\"\nclient_alias = \"platform-client\"\ntrust = [\"partner-ca\"]\n",
            partner.url("/in")
        ),
    );
    // The platform provides the new key, staged; the tenant sees it waiting.
    platform(&["keys", "import", "platform-client", "--file", "p2.key", "--file", "p2.pem", "--staged"]);
    assert!(kw.ok(&["keys", "list"]).contains("New keys waiting"));
    let load = Load::start(kw.flow_url("payroll"), true, None).await;
    let renewal = kw.start_renewal("platform-client", "activate");
    let id = renewal["id"].as_i64().unwrap();
    assert_eq!(step(&renewal, "announce")["state"], "done");
    assert_waits(&renewal, "agree-downtime");
    let window_opens = Instant::now();
    kw.json(&["renew", "schedule-downtime", &id.to_string(), "--from", "now", "--to", "+10"]);
    partner.set_client_cas(&[&old_ca.certificate, &new_ca.certificate]);
    let renewal = kw.confirm(id, "partner-imports", &[]);
    let window_closes = Instant::now();
    assert_eq!(step(&renewal, "probe-staged")["state"], "done", "{renewal:#}");
    assert_eq!(step(&renewal, "probe-active")["state"], "done", "{renewal:#}");
    assert_completed(&renewal);
    let sent = load.stop().await;
    assert_failures_inside("000 platform key", &sent, window_opens, window_closes);
    let (_, failed, _) = tally(&sent);
    assert_eq!(failed, 0, "the partner trusted both CAs before activation: no failure at all");
    let seen = partner.seen.lock().unwrap().clone();
    assert!(seen.last().unwrap().contains("platform client"));
}

// ----- abort, expiry, alerts, metrics ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_reverts_what_the_renewal_changed() {
    let s = signer_setup("two-signatures", 2, None).await;
    let kw = &s.kw;
    // A temporary alias added to the flow, then the renewal is aborted.
    let renewal = kw.start_renewal("signer", "temporary-alias");
    let id = renewal["id"].as_i64().unwrap();
    assert!(kw.ok(&["flows", "show", "orders"]).contains("signer.next"));
    let aborted = kw.json(&["renew", "abort", &id.to_string(), "--reason", "partner not ready"]);
    assert_eq!(aborted["state"], "aborted");
    assert!(!kw.ok(&["flows", "show", "orders"]).contains("signer.next"), "the temporary signer left the flow");
    assert!(kw.fails(&["keys", "show", "signer.next"]).contains("no entry"), "the temporary alias is gone");
    // A new renewal (the variant chosen by hand) gets past activation, then is aborted.
    let started = kw.json(&["renew", "start", "signer", "--variant", "verifies-both"]);
    let id = started["id"].as_i64().unwrap();
    // Confirmed without the partner having done it: the test message finds out.
    let renewal = kw.confirm(id, "partner-verifies-both", &[]);
    let probe = step(&renewal, "probe-message");
    assert_eq!(probe["state"], "failed", "{renewal:#}");
    assert!(probe["note"].as_str().unwrap().contains("globex") && probe["note"].as_str().unwrap().contains("not trusted"), "{probe:#}");
    assert_eq!(step(&renewal, "activate")["state"], "pending");
    let new = kw.certificate("signer", Some(2));
    s.partner.set_judge(verifier(&[&s.old, &new], 2));
    let renewal = kw.confirm(id, "probe-message", &[]);
    assert_eq!(step(&renewal, "activate")["state"], "done", "{renewal:#}");
    assert_eq!(kw.active_version("signer"), Some(2));
    let aborted = kw.json(&["renew", "abort", &id.to_string()]);
    assert_eq!(aborted["state"], "aborted");
    assert_eq!(kw.active_version("signer"), Some(1), "the old key is active again");
    let audit = kw.ok(&["audit", "list", "--limit", "200"]);
    assert!(audit.contains("renewals.abort") && audit.contains("partner not ready"), "{audit}");
    // Nothing runs any more: confirming a step of an aborted renewal is refused.
    assert!(kw.fails(&["renew", "confirm", &id.to_string(), "partner-removes-old"]).contains("aborted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_alerts_metrics_and_automatic_platform_key_activation() {
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&received);
    let webhook = HttpPartner::start(Arc::new(move |body: &[u8]| {
        sink.lock().unwrap().push(String::from_utf8_lossy(body).into_owned());
        Ok(b"thanks".to_vec())
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let url = webhook.url("/alerts");
    let server = Server::start_with_env(&d.join("data"), &[("KEYWARD_ALERT_WEBHOOK", url.as_str()), ("KEYWARD_EXPIRY_CHECK_SECONDS", "1")]);
    let token = admin_token(&d.join("data"));
    let kw = Kw { _dir: dir, dir: d, server, token };
    // A tenant key with 10 days left: critical, past the 30- and 14-day alerts.
    kw.ok(&["keys", "create", "short-lived", "--algorithm", "ec-p256", "--subject", "CN=short", "--days", "10"]);
    kw.ok(&["keys", "create", "long-lived", "--algorithm", "ec-p256", "--subject", "CN=long", "--days", "365"]);
    // A platform key whose active version expires within a day, with a new one waiting.
    let platform_token = kw.platform_token();
    let platform = |args: &[&str]| kw.ok_as(&platform_token, args);
    platform(&["keys", "create", "platform-tls", "--algorithm", "ec-p256", "--subject", "CN=platform", "--days", "1", "--staged"]);
    kw.ok(&["keys", "activate", "platform-tls"]);
    platform(&["keys", "create", "platform-tls", "--algorithm", "ec-p256", "--subject", "CN=platform", "--days", "365", "--staged"]);

    let deadline = Instant::now() + Duration::from_secs(20);
    while kw.active_version("platform-tls") != Some(2) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(kw.active_version("platform-tls"), Some(2), "activated automatically a day before expiry");
    let renewals = kw.json(&["renew", "list"]);
    let auto = &renewals[0];
    assert_eq!(auto["procedure"], "platform-key");
    assert_eq!(auto["state"], "completed", "{auto:#}");
    assert_eq!(auto["created_by"], "keyward:auto-activation");
    assert!(step(auto, "agree-downtime")["note"].as_str().unwrap().contains("automatic activation"), "{auto:#}");

    // Alerts: each once, to the webhook and the log.
    while received.lock().unwrap().len() < 6 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let alerts: Vec<Value> = received.lock().unwrap().iter().map(|b| serde_json::from_str(b).unwrap()).collect();
    let about = |alias: &str, kind: &str| alerts.iter().filter(|a| a["alias"] == alias && a["kind"] == kind).count();
    let thresholds: Vec<i64> = alerts
        .iter()
        .filter(|a| a["alias"] == "short-lived")
        .map(|a| a["threshold_days"].as_i64().unwrap())
        .collect();
    assert_eq!(thresholds.len(), 2, "30 and 14 days, each once: {alerts:#?}");
    assert!(thresholds.contains(&30) && thresholds.contains(&14));
    assert_eq!(about("long-lived", "expiry"), 0);
    assert_eq!(about("platform-tls", "new-key-waiting"), 1, "{alerts:#?}");
    assert_eq!(about("platform-tls", "auto-activated"), 1, "{alerts:#?}");

    let listed = kw.ok(&["keys", "list"]);
    let line = listed.lines().find(|l| l.starts_with("short-lived")).unwrap();
    assert!(line.contains("CRITICAL"), "{listed}");

    // Metrics, without a token.
    let metrics = reqwest::get(format!("{}/metrics", kw.server.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("keyward_certificate_expiration_timestamp_seconds{alias=\"short-lived\",version=\"1\",state=\"active\",owner=\"tenant\"}"), "{metrics}");
    assert!(metrics.contains("keyward_certificate_expiry_state{alias=\"short-lived\",state=\"critical\"} 1"), "{metrics}");
    assert!(metrics.contains("keyward_certificate_expiry_state{alias=\"long-lived\",state=\"valid\"} 1"), "{metrics}");
    assert!(metrics.contains("keyward_renewals{state=\"completed\"} 1"), "{metrics}");
    assert!(metrics.contains("keyward_node_sync_lag_changes{node=\"serve-"), "{metrics}");
}
