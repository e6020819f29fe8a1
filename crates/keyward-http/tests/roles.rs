//! The full role matrix: every endpoint, called as every role and with no or a wrong token,
//! against fresh entries, must answer with exactly the expected status.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::TestServer;
use serde_json::{Value, json};

const CALLERS: [&str; 6] = ["none", "wrong", "viewer", "developer", "admin", "platform"];

/// A request to make against a freshly prepared tenant entry `t` (versions: 1 retired,
/// 2 active, 3 staged) and platform entry `p` (1 active, 2 staged); `{t}`, `{p}` and `{new}`
/// in the path are replaced by their aliases.
struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: fn(&Fixture) -> Option<Value>,
    /// Expected status for viewer, developer, admin, platform (none/wrong are always 401).
    expect: [u16; 4],
}

struct Fixture {
    t: String,
    p: String,
    new: String,
    t_active_pem: String,
    /// A message signed by `t`, base64.
    signed: String,
    /// An RSA key pair shared by all cells (encryption needs RSA).
    rsa: String,
    /// A message encrypted to `rsa`, base64.
    encrypted: String,
}

fn no_body(_: &Fixture) -> Option<Value> {
    None
}

fn cases() -> Vec<Case> {
    vec![
        Case { name: "list entries", method: "GET", path: "/api/v1/keys", body: no_body, expect: [200, 200, 200, 200] },
        Case { name: "show entry", method: "GET", path: "/api/v1/keys/{t}", body: no_body, expect: [200, 200, 200, 200] },
        Case { name: "history", method: "GET", path: "/api/v1/keys/{t}/versions", body: no_body, expect: [200, 200, 200, 200] },
        Case { name: "download certificate", method: "GET", path: "/api/v1/keys/{t}/export?format=der", body: no_body, expect: [200, 200, 200, 200] },
        Case { name: "download chain p7b", method: "GET", path: "/api/v1/keys/{t}/export?format=p7b", body: no_body, expect: [200, 200, 200, 200] },
        Case { name: "csr of tenant key", method: "GET", path: "/api/v1/keys/{t}/csr", body: no_body, expect: [403, 403, 200, 403] },
        Case { name: "csr of platform key", method: "GET", path: "/api/v1/keys/{p}/csr", body: no_body, expect: [403, 403, 200, 200] },
        Case {
            name: "export private key",
            method: "POST",
            path: "/api/v1/keys/{t}/export/pkcs12",
            body: |_| Some(json!({"password": "changeit"})),
            expect: [403, 403, 200, 403],
        },
        Case {
            name: "generate new entry (staged)",
            method: "POST",
            path: "/api/v1/keys/{new}/generate",
            body: |_| Some(json!({"algorithm": "ec-p256", "subject": "CN=new", "staged": true})),
            expect: [403, 403, 201, 201],
        },
        Case {
            name: "generate active version of tenant entry",
            method: "POST",
            path: "/api/v1/keys/{t}/generate",
            body: |_| Some(json!({"algorithm": "ec-p256", "subject": "CN=t"})),
            expect: [403, 403, 201, 403],
        },
        Case {
            name: "stage version of platform entry",
            method: "POST",
            path: "/api/v1/keys/{p}/generate",
            body: |_| Some(json!({"algorithm": "ec-p256", "subject": "CN=p", "staged": true})),
            expect: [403, 403, 403, 201],
        },
        Case {
            name: "import certificate as new entry",
            method: "POST",
            path: "/api/v1/keys/{new}/import",
            body: |f| Some(json!({"data": STANDARD.encode(&f.t_active_pem), "staged": true})),
            expect: [403, 403, 201, 201],
        },
        Case {
            name: "import CSR response",
            method: "POST",
            path: "/api/v1/keys/{t}/response",
            body: |f| Some(json!({"data": STANDARD.encode(&f.t_active_pem), "staged": true})),
            expect: [403, 403, 201, 403],
        },
        Case {
            name: "activate tenant entry",
            method: "POST",
            path: "/api/v1/keys/{t}/activate",
            body: |_| Some(json!({})),
            expect: [403, 403, 200, 403],
        },
        Case {
            name: "activate platform entry",
            method: "POST",
            path: "/api/v1/keys/{p}/activate",
            body: |_| Some(json!({})),
            expect: [403, 403, 200, 403],
        },
        Case {
            name: "restore retired version",
            method: "POST",
            path: "/api/v1/keys/{t}/restore",
            body: |_| Some(json!({"version": 1})),
            expect: [403, 403, 200, 403],
        },
        Case {
            name: "delete tenant entry (forced)",
            method: "DELETE",
            path: "/api/v1/keys/{t}?force=true&reason=matrix",
            body: no_body,
            expect: [403, 403, 204, 403],
        },
        Case {
            name: "delete platform entry",
            method: "DELETE",
            path: "/api/v1/keys/{p}?force=true&reason=matrix",
            body: no_body,
            expect: [403, 403, 403, 403],
        },
        Case {
            name: "create token",
            method: "POST",
            path: "/api/v1/tokens",
            body: |f| Some(json!({"name": format!("token-{}", f.new), "role": "viewer"})),
            expect: [403, 403, 201, 403],
        },
        Case {
            name: "create platform token",
            method: "POST",
            path: "/api/v1/tokens",
            body: |f| Some(json!({"name": format!("another-platform-{}", f.new), "role": "platform"})),
            expect: [403, 403, 403, 201],
        },
        Case { name: "list tokens", method: "GET", path: "/api/v1/tokens", body: no_body, expect: [403, 403, 200, 403] },
        Case {
            name: "revoke a viewer token",
            method: "DELETE",
            path: "/api/v1/tokens/viewer-{new}",
            body: no_body,
            expect: [403, 403, 204, 403],
        },
        Case {
            name: "revoke a platform token",
            method: "DELETE",
            path: "/api/v1/tokens/platform-{new}",
            body: no_body,
            expect: [403, 403, 403, 204],
        },
        Case {
            name: "deploy a flow",
            method: "POST",
            path: "/api/v1/flows",
            body: |_| Some(json!({"source": "name = \"rolecheck\"\n[receiver]\nurl = \"http://127.0.0.1:9/in\"\n"})),
            expect: [403, 200, 200, 403],
        },
        Case { name: "list flows", method: "GET", path: "/api/v1/flows", body: no_body, expect: [200, 200, 200, 200] },
        Case {
            name: "stop an unknown flow",
            method: "POST",
            path: "/api/v1/flows/nosuch/stop",
            body: no_body,
            expect: [403, 404, 404, 403],
        },
        Case { name: "list nodes", method: "GET", path: "/api/v1/nodes", body: no_body, expect: [200, 200, 200, 200] },
        Case { name: "where an alias is used", method: "GET", path: "/api/v1/usage/{t}", body: no_body, expect: [200, 200, 200, 200] },
        Case {
            name: "connectivity test without a client certificate",
            method: "POST",
            path: "/api/v1/connectivity/tls",
            body: |f| Some(json!({"url": "https://127.0.0.1:9/", "trust": [f.t], "timeout_ms": 2000})),
            expect: [403, 200, 200, 403],
        },
        Case {
            name: "connectivity test with a staged tenant key",
            method: "POST",
            path: "/api/v1/connectivity/tls",
            body: |f| Some(json!({"url": "https://127.0.0.1:9/", "alias": f.t, "version": "staged", "trust": [f.t], "timeout_ms": 2000})),
            expect: [403, 200, 200, 403],
        },
        Case {
            name: "sign with a tenant key",
            method: "POST",
            path: "/api/v1/messages/sign",
            body: |f| Some(json!({"signers": [{"alias": f.t}], "data": STANDARD.encode("payload")})),
            expect: [403, 200, 200, 403],
        },
        Case {
            name: "sign with a platform key",
            method: "POST",
            path: "/api/v1/messages/sign",
            body: |f| Some(json!({"signers": [{"alias": f.p}], "data": STANDARD.encode("payload")})),
            expect: [403, 200, 200, 403],
        },
        Case {
            name: "verify a signed message",
            method: "POST",
            path: "/api/v1/messages/verify",
            body: |f| Some(json!({"message": f.signed, "trust": [f.t]})),
            expect: [200, 200, 200, 200],
        },
        Case {
            name: "encrypt to an RSA certificate",
            method: "POST",
            path: "/api/v1/messages/encrypt",
            body: |f| Some(json!({"recipients": [f.rsa], "data": STANDARD.encode("payload")})),
            expect: [200, 200, 200, 200],
        },
        Case {
            name: "decrypt with any valid key",
            method: "POST",
            path: "/api/v1/messages/decrypt",
            body: |f| Some(json!({"message": f.encrypted})),
            expect: [403, 200, 200, 403],
        },
        Case { name: "list partners", method: "GET", path: "/api/v1/partners", body: no_body, expect: [200, 200, 200, 200] },
        Case {
            name: "declare a partner",
            method: "POST",
            path: "/api/v1/partners",
            body: |f| Some(json!({"name": f.new, "capabilities": ["two-cas"]})),
            expect: [403, 403, 200, 403],
        },
        Case {
            name: "plan a renewal",
            method: "GET",
            path: "/api/v1/renewals/plan/{t}?procedure=cms-signer",
            body: no_body,
            expect: [200, 200, 200, 200],
        },
        Case {
            name: "start a renewal",
            method: "POST",
            path: "/api/v1/renewals",
            body: |f| Some(json!({"alias": f.t, "procedure": "cms-signer"})),
            expect: [403, 403, 200, 403],
        },
        Case { name: "list renewals", method: "GET", path: "/api/v1/renewals", body: no_body, expect: [200, 200, 200, 200] },
        Case { name: "renewal tasks", method: "GET", path: "/api/v1/renewals/tasks", body: no_body, expect: [200, 200, 200, 200] },
        Case {
            name: "abort an unknown renewal",
            method: "POST",
            path: "/api/v1/renewals/999/abort",
            body: |_| Some(json!({})),
            expect: [403, 403, 404, 403],
        },
        Case { name: "read the retention", method: "GET", path: "/api/v1/settings/retention", body: no_body, expect: [200, 200, 200, 200] },
        Case {
            name: "change the retention",
            method: "PUT",
            path: "/api/v1/settings/retention",
            body: |_| Some(json!({"days": 120})),
            expect: [403, 403, 200, 403],
        },
        Case { name: "audit list", method: "GET", path: "/api/v1/audit", body: no_body, expect: [403, 403, 200, 403] },
        Case { name: "audit verify", method: "GET", path: "/api/v1/audit/verify", body: no_body, expect: [403, 403, 200, 403] },
    ]
}

async fn prepare(server: &TestServer, cell: usize, shared: &(String, String)) -> Fixture {
    let t = format!("t-{cell}");
    let p = format!("p-{cell}");
    server.generate(&t, false).await;
    server.generate(&t, false).await; // version 1 retires
    server.generate(&t, true).await;
    let body = json!({"algorithm": "ec-p256", "subject": "CN=platform", "staged": true});
    server.as_role("platform", "POST", &format!("/api/v1/keys/{p}/generate"), Some(&body)).await;
    server.admin("POST", &format!("/api/v1/keys/{p}/activate"), Some(&json!({}))).await;
    server.as_role("platform", "POST", &format!("/api/v1/keys/{p}/generate"), Some(&body)).await;
    let t_active_pem = server.export_pem(&t, 2).await;
    // Tokens to revoke: one the admin issued, one the platform issued.
    let new = format!("new-{cell}");
    server.admin("POST", "/api/v1/tokens", Some(&json!({"name": format!("viewer-{new}"), "role": "viewer"}))).await;
    let platform_token = json!({"name": format!("platform-{new}"), "role": "platform"});
    server.as_role("platform", "POST", "/api/v1/tokens", Some(&platform_token)).await;
    let (status, signed) = server
        .call("admin", "POST", "/api/v1/messages/sign", Some(&json!({"signers": [{"alias": t}], "data": STANDARD.encode("m")})))
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&signed));
    let (rsa, encrypted) = shared.clone();
    Fixture { t, p, new, t_active_pem, signed: STANDARD.encode(signed), rsa, encrypted }
}

#[tokio::test]
async fn every_endpoint_with_every_role() {
    let server = TestServer::start().await;
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut cell = 0;
    let body = json!({"algorithm": "rsa-2048", "subject": "CN=rsa shared"});
    server.admin("POST", "/api/v1/keys/rsa-shared/generate", Some(&body)).await;
    let message = json!({"recipients": ["rsa-shared"], "data": STANDARD.encode("for the matrix")});
    let (status, encrypted) = server.call("admin", "POST", "/api/v1/messages/encrypt", Some(&message)).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&encrypted));
    let shared = ("rsa-shared".to_owned(), STANDARD.encode(encrypted));
    for case in cases() {
        for caller in CALLERS {
            cell += 1;
            let fixture = prepare(&server, cell, &shared).await;
            let path = case.path.replace("{t}", &fixture.t).replace("{p}", &fixture.p).replace("{new}", &fixture.new);
            let body = (case.body)(&fixture);
            let expected = match caller {
                "none" | "wrong" => 401,
                "viewer" => case.expect[0],
                "developer" => case.expect[1],
                "admin" => case.expect[2],
                _ => case.expect[3],
            };
            let (status, bytes) = server.call(caller, case.method, &path, body.as_ref()).await;
            checked += 1;
            if status != expected {
                failures.push(format!(
                    "{} as {caller}: expected {expected}, got {status}: {}",
                    case.name,
                    String::from_utf8_lossy(&bytes)
                ));
            }
            if status >= 400 {
                let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                if problem["status"] != status || problem["detail"].as_str().is_none_or(str::is_empty) {
                    failures.push(format!("{} as {caller}: error is not problem JSON: {problem}", case.name));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} cells wrong:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(checked, cases().len() * CALLERS.len());
}

#[tokio::test]
async fn openapi_document_is_public_and_lists_every_endpoint() {
    let server = TestServer::start().await;
    let (status, bytes) = server.call("none", "GET", "/api/openapi.json", None).await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/keys",
        "/api/v1/keys/{alias}",
        "/api/v1/keys/{alias}/versions",
        "/api/v1/keys/{alias}/generate",
        "/api/v1/keys/{alias}/import",
        "/api/v1/keys/{alias}/csr",
        "/api/v1/keys/{alias}/response",
        "/api/v1/keys/{alias}/activate",
        "/api/v1/keys/{alias}/restore",
        "/api/v1/keys/{alias}/export",
        "/api/v1/keys/{alias}/export/pkcs12",
        "/api/v1/tokens",
        "/api/v1/tokens/{name}",
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/messages/sign",
        "/api/v1/messages/verify",
        "/api/v1/messages/encrypt",
        "/api/v1/messages/decrypt",
        "/api/v1/settings/retention",
        "/api/v1/connectivity/tls",
        "/api/v1/flows",
        "/api/v1/flows/{name}",
        "/api/v1/flows/{name}/{operation}",
        "/api/v1/nodes",
        "/api/v1/usage/{alias}",
    ] {
        assert!(paths.contains_key(path), "OpenAPI document lacks {path}");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
