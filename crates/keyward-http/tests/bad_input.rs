//! The bad-input corpus: every kind of broken request gets a 4xx problem whose detail says
//! what was wrong, and leaves the keystore and the audit log exactly as they were.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::TestServer;
use keyward_domain::{KeyAlgorithm, Timestamp};
use serde_json::{Value, json};

struct Bad {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Body,
    status: u16,
    /// A piece of the detail message (case-insensitive).
    says: &'static str,
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    STANDARD.encode(bytes)
}

fn import(name: &'static str, alias: &str, data: impl AsRef<[u8]>, password: Option<&str>, status: u16, says: &'static str) -> Bad {
    Bad {
        name,
        method: "POST",
        path: format!("/api/v1/keys/{alias}/import"),
        body: Body::Json(json!({"data": b64(data), "password": password})),
        status,
        says,
    }
}

fn post(name: &'static str, path: &str, body: Value, status: u16, says: &'static str) -> Bad {
    Bad { name, method: "POST", path: path.to_owned(), body: Body::Json(body), status, says }
}

fn get(name: &'static str, path: &str, status: u16, says: &'static str) -> Bad {
    Bad { name, method: "GET", path: path.to_owned(), body: Body::None, status, says }
}

#[tokio::test]
async fn bad_input_corpus() {
    let server = TestServer::start().await;
    // The keystore the corpus runs against.
    server.generate("kp", false).await; // kp: v1 active
    server.generate("kp", false).await; // v1 retired, v2 active
    server.generate("other", false).await;
    let cert_pem = server.export_pem("kp", 2).await;
    let other_pem = server.export_pem("other", 1).await;
    server.admin("POST", "/api/v1/keys/trusted/import", Some(&json!({"data": b64(&other_pem)}))).await;
    let (status, p12) =
        server.call("admin", "POST", "/api/v1/keys/kp/export/pkcs12", Some(&json!({"password": "right"}))).await;
    assert_eq!(status, 200);
    let (status, cert_der) = server.call("admin", "GET", "/api/v1/keys/kp/export?format=der", None).await;
    assert_eq!(status, 200);
    let (status, p7b) = server.call("admin", "GET", "/api/v1/keys/kp/export?format=p7b", None).await;
    assert_eq!(status, 200);
    let now = Timestamp::from_seconds(1_795_428_000);
    let (key, key_cert) = keyward_crypto::generate(KeyAlgorithm::EcP256, "CN=loose", 10, now).unwrap();
    let (key2, _) = keyward_crypto::generate(KeyAlgorithm::EcP256, "CN=loose2", 10, now).unwrap();
    let key_pem = pem("PRIVATE KEY", key.pkcs8_der());
    let key2_pem = pem("PRIVATE KEY", key2.pkcs8_der());
    let (_, stranger) = keyward_crypto::generate(KeyAlgorithm::Rsa2048, "CN=stranger", 10, now).unwrap();
    let transport = "rsa-oaep".parse().unwrap();
    let cipher = "aes256-cbc".parse().unwrap();
    let for_stranger = keyward_cms::encrypt(b"not for us", &[&stranger], transport, cipher).unwrap();
    let mismatched = format!("{key_pem}{cert_pem}");
    let two_keys = format!("{key_pem}{key2_pem}{}", key_cert.to_pem());
    let broken_cert_pem = cert_pem.replacen("MII", "MIX", 1);
    let empty_pem = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
    let long_alias = "a".repeat(251);

    let corpus: Vec<Bad> = vec![
        // --- import: broken material
        post("data is not base64", "/api/v1/keys/x1/import", json!({"data": "%%%not base64%%%"}), 400, "base64"),
        post("data is empty", "/api/v1/keys/x1/import", json!({"data": ""}), 400, "empty"),
        import("random bytes", "x1", [0x13u8, 0x37, 0x00, 0xff, 0x42, 0x99, 0x01], None, 400, ""),
        import("plain text", "x1", "hello, keystore", None, 400, ""),
        import("broken base64 inside a PEM certificate", "x1", &broken_cert_pem, None, 400, "certificate"),
        import("empty PEM certificate block", "x1", empty_pem, None, 400, ""),
        import("unknown PEM label", "x1", "-----BEGIN FOO BAR-----\nAAAA\n-----END FOO BAR-----\n", None, 400, "FOO BAR"),
        import("truncated DER certificate", "x1", &cert_der[..cert_der.len() / 2], None, 400, ""),
        import("DER certificate with trailing garbage", "x1", [cert_der.as_slice(), b"garbage"].concat(), None, 400, ""),
        import("truncated PKCS#7", "x1", &p7b[..p7b.len() - 20], None, 400, ""),
        import("private key without certificate", "x1", &key_pem, None, 400, "certificate"),
        import("private key with someone else's certificate", "x1", &mismatched, None, 400, "does not match"),
        import("two private keys", "x1", &two_keys, None, 400, "key"),
        import("broken PKCS#1 key", "x1", format!("-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\n{cert_pem}"), None, 400, ""),
        import("broken SEC1 key", "x1", format!("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----\n{cert_pem}"), None, 400, ""),
        import("broken PKCS#8 key", "x1", format!("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n{cert_pem}"), None, 400, ""),
        import("PKCS#12 with a wrong password", "x1", &p12, Some("wrong"), 400, "password"),
        import("PKCS#12 without a password", "x1", &p12, None, 400, "password"),
        import("truncated PKCS#12", "x1", &p12[..p12.len() / 2], Some("right"), 400, ""),
        import("key pair into a certificate entry", "trusted", format!("{key_pem}{}", key_cert.to_pem()), None, 400, "certificate"),
        import("certificate into a key-pair entry", "kp", &other_pem, None, 400, "key-pair"),
        // --- request bodies
        Bad { name: "body is not JSON", method: "POST", path: "/api/v1/keys/x1/import".into(), body: Body::Raw("application/json", b"{not json".to_vec()), status: 400, says: "not valid" },
        Bad { name: "body without content type", method: "POST", path: "/api/v1/keys/x1/import".into(), body: Body::Raw("text/plain", b"{}".to_vec()), status: 415, says: "JSON" },
        post("import without data field", "/api/v1/keys/x1/import", json!({"password": "x"}), 422, "data"),
        Bad { name: "oversized body", method: "POST", path: "/api/v1/keys/x1/import".into(), body: Body::Raw("application/json", format!("{{\"data\": \"{}\"}}", "A".repeat(2 * 1024 * 1024)).into_bytes()), status: 413, says: "larger than" },
        // --- aliases
        post("alias with a space", "/api/v1/keys/bad%20alias/generate", json!({"algorithm": "ec-p256", "subject": "CN=x"}), 400, "not allowed"),
        post("alias with a quote", "/api/v1/keys/bad'alias/generate", json!({"algorithm": "ec-p256", "subject": "CN=x"}), 400, "not allowed"),
        post("alias too long", &format!("/api/v1/keys/{long_alias}/generate"), json!({"algorithm": "ec-p256", "subject": "CN=x"}), 400, "at most 250"),
        post("alias starting with a dash", "/api/v1/keys/-dash/generate", json!({"algorithm": "ec-p256", "subject": "CN=x"}), 400, "start with"),
        post("alias with non-ASCII letters", "/api/v1/keys/schl%C3%BCssel/generate", json!({"algorithm": "ec-p256", "subject": "CN=x"}), 400, "not allowed"),
        get("show with a bad alias", "/api/v1/keys/a%2Fb", 400, "not allowed"),
        // --- generate
        post("unknown algorithm", "/api/v1/keys/x1/generate", json!({"algorithm": "rsa-1024", "subject": "CN=x"}), 400, "rsa-2048"),
        post("empty subject", "/api/v1/keys/x1/generate", json!({"algorithm": "ec-p256", "subject": ""}), 400, "subject"),
        post("subject with an unknown attribute", "/api/v1/keys/x1/generate", json!({"algorithm": "ec-p256", "subject": "XYZ=foo"}), 400, "XYZ"),
        post("subject without attribute names", "/api/v1/keys/x1/generate", json!({"algorithm": "ec-p256", "subject": "just words"}), 400, ""),
        post("zero days of validity", "/api/v1/keys/x1/generate", json!({"algorithm": "ec-p256", "subject": "CN=x", "days": 0}), 400, "validity"),
        post("a hundred thousand days", "/api/v1/keys/x1/generate", json!({"algorithm": "ec-p256", "subject": "CN=x", "days": 100000}), 400, "validity"),
        post("negative days", "/api/v1/keys/x1/generate", json!({"algorithm": "ec-p256", "subject": "CN=x", "days": -5}), 422, "days"),
        post("key pair onto a certificate entry", "/api/v1/keys/trusted/generate", json!({"algorithm": "ec-p256", "subject": "CN=x"}), 400, "certificate"),
        // --- CSR responses
        post("response for an unknown alias", "/api/v1/keys/nobody/response", json!({"data": b64(&cert_pem)}), 404, "nobody"),
        post("response that matches no key", "/api/v1/keys/kp/response", json!({"data": b64(&other_pem)}), 400, "none of the private keys"),
        post("response that is garbage", "/api/v1/keys/kp/response", json!({"data": b64("garbage")}), 400, ""),
        post("response for a certificate entry", "/api/v1/keys/trusted/response", json!({"data": b64(&other_pem)}), 400, "certificate"),
        // --- activate, restore
        post("activate an unknown alias", "/api/v1/keys/nobody/activate", json!({}), 404, "nobody"),
        post("activate an unknown version", "/api/v1/keys/kp/activate", json!({"version": 99}), 404, "version 99"),
        post("activate the active version", "/api/v1/keys/kp/activate", json!({"version": 2}), 409, "active"),
        post("activate a retired version", "/api/v1/keys/kp/activate", json!({"version": 1}), 409, "retired"),
        post("activate with nothing staged", "/api/v1/keys/kp/activate", json!({}), 409, "no staged version"),
        post("activate with a string version", "/api/v1/keys/kp/activate", json!({"version": "two"}), 422, "version"),
        post("restore the active version", "/api/v1/keys/kp/restore", json!({"version": 2}), 409, "must be retired"),
        post("restore an unknown version", "/api/v1/keys/kp/restore", json!({"version": 42}), 404, "version 42"),
        post("restore without a version", "/api/v1/keys/kp/restore", json!({}), 422, "version"),
        // --- delete
        Bad { name: "delete an unknown alias", method: "DELETE", path: "/api/v1/keys/nobody".into(), body: Body::None, status: 404, says: "nobody" },
        Bad { name: "delete a key pair retired minutes ago", method: "DELETE", path: "/api/v1/keys/kp".into(), body: Body::None, status: 409, says: "needed to decrypt" },
        Bad { name: "forced delete without a reason", method: "DELETE", path: "/api/v1/keys/kp?force=true".into(), body: Body::None, status: 400, says: "reason" },
        Bad { name: "forced delete with a blank reason", method: "DELETE", path: "/api/v1/keys/kp?force=true&reason=%20".into(), body: Body::None, status: 400, says: "reason" },
        // --- export
        get("unknown export format", "/api/v1/keys/kp/export?format=jpeg", 400, "p7b"),
        get("export of an unknown version", "/api/v1/keys/kp/export?version=9", 404, "version 9"),
        get("export of an unknown alias", "/api/v1/keys/nobody/export", 404, "nobody"),
        post("PKCS#12 of a certificate entry", "/api/v1/keys/trusted/export/pkcs12", json!({"password": "x"}), 400, "no private key"),
        post("PKCS#12 with an empty password", "/api/v1/keys/kp/export/pkcs12", json!({"password": ""}), 400, "password"),
        get("CSR for a certificate entry", "/api/v1/keys/trusted/csr", 400, "key pair"),
        // --- tokens
        post("token with an unknown role", "/api/v1/tokens", json!({"name": "n", "role": "root"}), 400, "unknown role"),
        post("token with an empty name", "/api/v1/tokens", json!({"name": " ", "role": "viewer"}), 400, "name"),
        post("token with a taken name", "/api/v1/tokens", json!({"name": "viewer-user", "role": "viewer"}), 409, "already exists"),
        Bad { name: "revoke an unknown token", method: "DELETE", path: "/api/v1/tokens/nobody".into(), body: Body::None, status: 404, says: "no token named" },
        Bad { name: "revoke a platform token as admin", method: "DELETE", path: "/api/v1/tokens/platform-user".into(), body: Body::None, status: 403, says: "platform tokens" },
        // --- messages
        post("sign with an unknown alias", "/api/v1/messages/sign", json!({"signers": [{"alias": "nobody"}], "data": b64("x")}), 404, "nobody"),
        post("sign with a certificate entry", "/api/v1/messages/sign", json!({"signers": [{"alias": "trusted"}], "data": b64("x")}), 400, "certificate entry"),
        post("sign with no signers", "/api/v1/messages/sign", json!({"signers": [], "data": b64("x")}), 400, "1 to 16"),
        post("sign with MD5", "/api/v1/messages/sign", json!({"signers": [{"alias": "kp", "digest": "md5"}], "data": b64("x")}), 400, "digest"),
        post("sign with an unknown scheme", "/api/v1/messages/sign", json!({"signers": [{"alias": "kp", "scheme": "dsa"}], "data": b64("x")}), 400, "scheme"),
        post("sign with unknown certificate inclusion", "/api/v1/messages/sign", json!({"signers": [{"alias": "kp", "certs": "all"}], "data": b64("x")}), 400, "certs"),
        post("sign with a bad alias", "/api/v1/messages/sign", json!({"signers": [{"alias": "a b"}], "data": b64("x")}), 400, "not allowed"),
        post("verify garbage", "/api/v1/messages/verify", json!({"message": b64("not a CMS message at all")}), 400, ""),
        post("verify a certificate instead of a message", "/api/v1/messages/verify", json!({"message": b64(&cert_der)}), 400, ""),
        post("verify with an unknown trusted alias", "/api/v1/messages/verify", json!({"message": b64(&p7b), "trust": ["nobody"]}), 404, "nobody"),
        post("verify with an unknown requirement", "/api/v1/messages/verify", json!({"message": b64(&p7b), "require": "most"}), 400, "require"),
        post("tls test of an http URL", "/api/v1/connectivity/tls", json!({"url": "http://127.0.0.1:9/"}), 400, "https://"),
        post("tls test of a URL without host", "/api/v1/connectivity/tls", json!({"url": "https:///x"}), 400, "names no host"),
        post("tls test with a bad port", "/api/v1/connectivity/tls", json!({"url": "https://127.0.0.1:70000/"}), 400, "port"),
        post("tls test with a version but no alias", "/api/v1/connectivity/tls", json!({"url": "https://127.0.0.1:9/", "version": "staged"}), 400, "needs an alias"),
        post("tls test with a bad version", "/api/v1/connectivity/tls", json!({"url": "https://127.0.0.1:9/", "alias": "kp", "version": "newest"}), 400, "version"),
        post("tls test with timeout 0", "/api/v1/connectivity/tls", json!({"url": "https://127.0.0.1:9/", "timeout_ms": 0}), 400, "timeout_ms"),
        post("tls test with an unknown alias", "/api/v1/connectivity/tls", json!({"url": "https://127.0.0.1:9/", "alias": "nobody"}), 404, "nobody"),
        post("tls test with a certificate entry as client", "/api/v1/connectivity/tls", json!({"url": "https://127.0.0.1:9/", "alias": "trusted"}), 400, "certificate entry"),
        post("tls test of a version that does not exist", "/api/v1/connectivity/tls", json!({"url": "https://127.0.0.1:9/", "alias": "kp", "version": "9"}), 404, ""),
        post("encrypt to an unknown alias", "/api/v1/messages/encrypt", json!({"recipients": ["nobody"], "data": b64("x")}), 404, "nobody"),
        post("encrypt to an EC certificate", "/api/v1/messages/encrypt", json!({"recipients": ["kp"], "data": b64("x")}), 400, "RSA"),
        post("encrypt with an unknown key transport", "/api/v1/messages/encrypt", json!({"recipients": ["kp"], "data": b64("x"), "key_transport": "rsa-magic"}), 400, "key_transport"),
        post("encrypt with an unknown cipher", "/api/v1/messages/encrypt", json!({"recipients": ["kp"], "data": b64("x"), "content_encryption": "des"}), 400, "content_encryption"),
        post("encrypt to nobody", "/api/v1/messages/encrypt", json!({"recipients": [], "data": b64("x")}), 400, "1 to 16"),
        post("decrypt garbage", "/api/v1/messages/decrypt", json!({"message": b64("definitely not CMS")}), 400, ""),
        post("decrypt a message for a stranger", "/api/v1/messages/decrypt", json!({"message": b64(&for_stranger)}), 400, "none of this keystore's keys"),
        post("decrypt a signed message", "/api/v1/messages/decrypt", json!({"message": b64(&p7b)}), 400, ""),
        Bad { name: "retention below 90 days without a reason", method: "PUT", path: "/api/v1/settings/retention".into(), body: Body::Json(json!({"days": 30})), status: 400, says: "reason" },
        Bad { name: "retention of zero days", method: "PUT", path: "/api/v1/settings/retention".into(), body: Body::Json(json!({"days": 0, "reason": "x"})), status: 400, says: "1 to 3650" },
        // --- list and show
        get("list with an unknown owner", "/api/v1/keys?owner=someone", 400, "owner"),
        get("list with an unknown kind", "/api/v1/keys?kind=secret", 400, "kind"),
        get("list with negative days", "/api/v1/keys?expiring_within=-1", 400, "negative"),
        get("list with non-numeric days", "/api/v1/keys?expiring_within=soon", 400, "expiring_within"),
        get("show an unknown alias", "/api/v1/keys/nobody", 404, "nobody"),
        get("an endpoint that does not exist", "/api/v1/nothing", 404, "no such"),
        // --- partners and renewals
        Bad { name: "partner with an unknown capability", method: "POST", path: "/api/v1/partners".into(), body: Body::Json(json!({"name": "p1", "capabilities": ["three-cas"]})), status: 400, says: "three-cas" },
        Bad { name: "partner with a bad name", method: "POST", path: "/api/v1/partners".into(), body: Body::Json(json!({"name": "A B"})), status: 400, says: "partner name" },
        Bad { name: "partner with an ftp URL", method: "POST", path: "/api/v1/partners".into(), body: Body::Json(json!({"name": "p2", "url": "ftp://x"})), status: 400, says: "https://" },
        Bad { name: "update an unknown partner", method: "PATCH", path: "/api/v1/partners/nobody".into(), body: Body::Json(json!({})), status: 404, says: "no partner" },
        get("plan for an unknown alias", "/api/v1/renewals/plan/nobody", 404, "nobody"),
        get("plan with an unknown procedure", "/api/v1/renewals/plan/nobody?procedure=magic", 400, "unknown procedure"),
        get("show an unknown renewal", "/api/v1/renewals/999", 404, "no renewal 999"),
        get("tasks for an unknown actor", "/api/v1/renewals/tasks?role=boss", 400, "step actor"),
        Bad { name: "start a renewal of an unknown alias", method: "POST", path: "/api/v1/renewals".into(), body: Body::Json(json!({"alias": "nobody"})), status: 404, says: "nobody" },
        Bad { name: "confirm a step of an unknown renewal", method: "POST", path: "/api/v1/renewals/999/steps/1/confirm".into(), body: Body::Json(json!({})), status: 404, says: "no renewal 999" },
        Bad { name: "downtime with an unreadable time", method: "POST", path: "/api/v1/renewals/999/downtime".into(), body: Body::Json(json!({"from": "yesterday", "to": "2030-01-01T00:00:00Z"})), status: 400, says: "from" },
        Bad { name: "abort an unknown renewal", method: "POST", path: "/api/v1/renewals/999/abort".into(), body: Body::Json(json!({})), status: 404, says: "no renewal 999" },
    ];
    assert!(corpus.len() >= 50, "the corpus has only {} inputs", corpus.len());

    let before = snapshot(&server).await;
    let mut failures = Vec::new();
    for bad in &corpus {
        let mut request = server
            .http
            .request(reqwest::Method::from_bytes(bad.method.as_bytes()).unwrap(), format!("{}{}", server.base, bad.path))
            .bearer_auth(&server.tokens["admin"]);
        request = match &bad.body {
            Body::None => request,
            Body::Json(value) => request.json(value),
            Body::Raw(content_type, bytes) => request.header("content-type", *content_type).body(bytes.clone()),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let detail = body["detail"].as_str().unwrap_or_default();
        if status != bad.status {
            failures.push(format!("{}: expected {}, got {status}: {detail}", bad.name, bad.status));
        } else if content_type.as_deref() != Some("application/problem+json") || detail.len() < 10 {
            failures.push(format!("{}: not a problem with a message: {content_type:?} {body}", bad.name));
        } else if !detail.to_lowercase().contains(&bad.says.to_lowercase()) {
            failures.push(format!("{}: detail {detail:?} does not mention {:?}", bad.name, bad.says));
        }
    }
    assert!(failures.is_empty(), "{} of {} inputs handled wrongly:\n{}", failures.len(), corpus.len(), failures.join("\n"));
    assert_eq!(snapshot(&server).await, before, "a refused request changed the keystore or the audit log");
}

/// Everything a refused request could have changed: every entry in full and the audit log.
async fn snapshot(server: &TestServer) -> Value {
    let list = server.admin("GET", "/api/v1/keys", None).await;
    let mut entries = Vec::new();
    for entry in list.as_array().unwrap() {
        let alias = entry["alias"].as_str().unwrap();
        entries.push(server.admin("GET", &format!("/api/v1/keys/{alias}"), None).await);
    }
    let audit = server.admin("GET", "/api/v1/audit?limit=1000", None).await;
    json!({"entries": entries, "audit": audit})
}
