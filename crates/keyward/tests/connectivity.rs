//! `keyward test tls` against a partner HTTPS server on loopback that requires client
//! certificates: the active version is accepted, a staged version from a new CA is rejected
//! before the partner trusts that CA and accepted after, and the report says why.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;


use keyward_runtime::testing::{Ca, Partner};
use support::{Server, admin_token, issue_files, keyward, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_and_staged_client_certificates_against_a_partner() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old_ca = Ca::new("Client CA 2025");
    let new_ca = Ca::new("Client CA 2026");
    let server_ca = Ca::new("Partner Server CA");
    let partner = Partner::start_with(&server_ca, &[&old_ca.certificate]).await;
    let url = partner.url("/in");

    let server = Server::start(&d.join("data"));
    let token = admin_token(&d.join("data"));
    let kw = |args: &[&str]| keyward(&server, &token, d, args);
    let ok = |args: &[&str]| {
        let output = kw(args);
        assert!(output.status.success(), "{args:?} failed:\n{}", text(&output));
        text(&output)
    };
    std::fs::write(d.join("partner-ca.pem"), partner.server_ca.to_pem()).unwrap();
    ok(&["keys", "import", "partner-ca", "--file", "partner-ca.pem"]);
    issue_files(d, &old_ca, "tls client 2025", "v1");
    ok(&["keys", "import", "tls-client", "--file", "v1.key", "--file", "v1.pem"]);
    issue_files(d, &new_ca, "tls client 2026", "v2");
    ok(&["keys", "import", "tls-client", "--file", "v2.key", "--file", "v2.pem", "--staged"]);

    let report = ok(&["test", "tls", &url, "--alias", "tls-client", "--trust", "partner-ca"]);
    assert!(report.contains("answered HTTP/1.1 200 OK"), "{report}");
    assert!(report.contains("presented:     tls-client version 1"), "{report}");
    assert!(report.contains("CN=Client CA 2025"), "{report}");
    assert!(report.contains("(trusted)"), "{report}");

    // The staged version, before the partner trusts the new CA: refused, and why.
    let staged = kw(&["test", "tls", &url, "--alias", "tls-client", "--version", "staged", "--trust", "partner-ca"]);
    assert!(!staged.status.success());
    let report = text(&staged);
    assert!(report.contains("FAILED (client-certificate-rejected)"), "{report}");
    assert!(report.contains("presented:     tls-client version 2"), "{report}");

    // The partner adds the new CA: the staged version passes before it is activated.
    let both = Partner::start_with(&server_ca, &[&old_ca.certificate, &new_ca.certificate]).await;
    let report = ok(&["test", "tls", &both.url("/in"), "--alias", "tls-client", "--version", "2", "--trust", "partner-ca", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(json["ok"], true, "{report}");
    assert_eq!(json["presented"]["version"], 2);
    assert_eq!(json["acceptable_client_cas"].as_array().unwrap().len(), 2);

    // Without a client certificate; and a server certificate nobody trusts.
    let bare = kw(&["test", "tls", &url, "--trust", "partner-ca"]);
    assert!(text(&bare).contains("FAILED (client-certificate-required)"), "{}", text(&bare));
    let untrusted = kw(&["test", "tls", &url, "--alias", "tls-client", "--trust", "tls-client"]);
    assert!(text(&untrusted).contains("FAILED (untrusted-server)"), "{}", text(&untrusted));

    // Viewers cannot make the server connect out or use a key.
    let viewer = ok(&["token", "create", "--role", "viewer", "--name", "viewer", "--output", "json"]);
    let viewer_token = viewer.split("\"token\": \"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let refused = keyward(&server, &viewer_token, d, &["test", "tls", &url, "--trust", "partner-ca"]);
    assert!(text(&refused).contains("HTTP 403"), "{}", text(&refused));
    assert_eq!(partner.seen.lock().unwrap().len(), 1, "only the accepted handshake reached the partner's handler");
    server.stop();
}
