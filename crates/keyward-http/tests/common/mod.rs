//! A keyward server on 127.0.0.1:0 with one token per role, for the API tests.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;
use std::sync::Arc;

use keyward_crypto::MasterKey;
use keyward_domain::Role;
use keyward_keystore::tokens::generate_token;
use keyward_keystore::{Keystore, SystemClock};
use keyward_store::Store;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub struct TestServer {
    pub base: String,
    pub tokens: HashMap<&'static str, String>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl TestServer {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("keyward.db")).await.unwrap();
        let keystore = Keystore::new(store, MasterKey::generate().unwrap(), Arc::new(SystemClock));
        keystore.check_master_key().await.unwrap();
        // As on a server: the operator issues the first admin and the platform token, the
        // admin the rest.
        let mut tokens = HashMap::new();
        for role in [Role::Admin, Role::Platform] {
            let token = generate_token().unwrap();
            keystore.issue_token_as_operator(&format!("{role}-user"), role, &token).await.unwrap();
            tokens.insert(role.as_str(), token);
        }
        let admin = keystore.authenticate(&tokens["admin"]).await.unwrap().unwrap();
        for role in [Role::Viewer, Role::Developer] {
            let token = keystore.create_token(&admin, &format!("{role}-user"), role).await.unwrap();
            tokens.insert(role.as_str(), token);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(keyward_http::server::serve(listener, keystore, async move {
            let _ = stopped.await;
        }));
        Self { base, tokens, http: reqwest::Client::new(), _dir: dir, _stop: stop }
    }

    /// Sends a request as `who` ("none", "wrong" or a role name).
    pub async fn call(&self, who: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        match who {
            "none" => {}
            "wrong" => request = request.bearer_auth("kw_not-a-real-token"),
            role => request = request.bearer_auth(&self.tokens[role]),
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, bytes) = self.call("admin", method, path, body).await;
        assert!(status < 300, "{method} {path} -> {status}: {}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    pub async fn as_role(&self, role: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, bytes) = self.call(role, method, path, body).await;
        assert!(status < 300, "{role}: {method} {path} -> {status}: {}", String::from_utf8_lossy(&bytes));
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }

    /// Generates an EC P-256 key pair version as admin.
    pub async fn generate(&self, alias: &str, staged: bool) -> u32 {
        let body = json!({"algorithm": "ec-p256", "subject": format!("CN={alias}"), "days": 30, "staged": staged});
        self.admin("POST", &format!("/api/v1/keys/{alias}/generate"), Some(&body)).await["version"]
            .as_u64()
            .unwrap() as u32
    }

    pub async fn export_pem(&self, alias: &str, version: u32) -> String {
        let (status, bytes) =
            self.call("admin", "GET", &format!("/api/v1/keys/{alias}/export?format=pem&version={version}"), None).await;
        assert_eq!(status, 200);
        String::from_utf8(bytes).unwrap()
    }
}
