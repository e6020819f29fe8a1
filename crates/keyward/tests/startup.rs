//! `keyward serve` start-up: the files it creates and their modes, the master key from the
//! environment, and a clear refusal when the master key of an existing keystore is missing.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use keyward_http::client::Client;
use keyward_http::wire::GenerateRequest;
use support::{Server, admin_token, serve_command};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn generate(alias: &str) -> GenerateRequest {
    GenerateRequest { algorithm: "ec-p256".into(), subject: format!("CN={alias}"), days: Some(10), staged: false }
}

#[tokio::test]
async fn first_start_creates_private_files_and_later_starts_reuse_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("master.key")), 0o600);
    assert_eq!(mode(&data.join("admin.token")), 0o600);
    let token = admin_token(&data);
    Client::new(&server.base, Some(token.clone())).unwrap().generate("k", &generate("k")).await.unwrap();
    server.stop();
    // The second start keeps the token and can open the key sealed by the first.
    let server = Server::start(&data);
    assert_eq!(admin_token(&data), token);
    let client = Client::new(&server.base, Some(token)).unwrap();
    client.export_pkcs12("k", "pw", None).await.unwrap();
    server.stop();
}

#[tokio::test]
async fn master_key_from_the_environment_is_used_and_a_lost_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let server = Server::start_with_env(&data, &[("KEYWARD_MASTER_KEY", key)]);
    assert!(!data.join("master.key").exists(), "with KEYWARD_MASTER_KEY no key file is written");
    let client = Client::new(&server.base, Some(admin_token(&data))).unwrap();
    client.generate("k", &generate("k")).await.unwrap();
    server.stop();

    let refused = serve_command(&data).output().unwrap();
    assert!(!refused.status.success(), "a keystore without its master key must not start");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("KEYWARD_MASTER_KEY") && stderr.contains("master.key is missing"), "{stderr}");

    let bad = serve_command(&data).env("KEYWARD_MASTER_KEY", "too-short").output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("32 bytes"), "{}", String::from_utf8_lossy(&bad.stderr));

    let another = "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=";
    let wrong = serve_command(&data).env("KEYWARD_MASTER_KEY", another).output().unwrap();
    assert!(!wrong.status.success(), "a master key that did not seal this keystore must be refused");
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("does not match this keystore"), "{stderr}");

    let server = Server::start_with_env(&data, &[("KEYWARD_MASTER_KEY", key)]);
    let client = Client::new(&server.base, Some(admin_token(&data))).unwrap();
    client.export_pkcs12("k", "pw", None).await.unwrap();
    server.stop();
}

#[tokio::test]
async fn the_operator_issues_platform_tokens_and_replaces_lost_admin_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let issue = |role: &str, name: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_keyward"))
            .args(["token", "issue", "--role", role, "--name", name, "--data-dir"])
            .arg(&data)
            .env_remove("KEYWARD_DATABASE_URL")
            .env_remove("KEYWARD_MASTER_KEY")
            .output()
            .unwrap()
    };
    let early = issue("platform", "too-early");
    assert!(!early.status.success(), "an uninitialised keystore must not take tokens");
    assert!(String::from_utf8_lossy(&early.stderr).contains("start `keyward serve`"));

    let server = Server::start(&data);
    let admin = Client::new(&server.base, Some(admin_token(&data))).unwrap();
    let refused = admin.create_token("ops", "platform").await.unwrap_err();
    assert_eq!(refused.status(), Some(403), "{refused}");

    let out = issue("platform", "provisioning");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let platform_token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let platform = Client::new(&server.base, Some(platform_token)).unwrap();
    let staged = GenerateRequest { staged: true, ..generate("platform-key") };
    platform.generate("platform-key", &staged).await.unwrap();
    let entry = admin.show("platform-key").await.unwrap();
    assert_eq!((entry.owner.as_str(), entry.versions[0].state.as_str()), ("platform", "staged"));

    // The admin token file is lost; the operator issues a new one.
    std::fs::remove_file(data.join("admin.token")).unwrap();
    let out = issue("admin", "admin-recovered");
    assert!(out.status.success());
    let recovered = Client::new(&server.base, Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())).unwrap();
    recovered.activate("platform-key", None).await.unwrap();
    let duplicate = issue("admin", "admin-recovered");
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));
    server.stop();
}
