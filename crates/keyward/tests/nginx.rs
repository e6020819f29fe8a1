//! nginx as the partner: it terminates mutual TLS (requiring client certificates from the
//! CAs it trusts) and passes each message, with the client certificate's subject, to a
//! plain HTTP backend. A flow signs with two aliases and posts to it; every message the
//! backend receives verifies in `openssl cms -verify`. Then the client certificate's
//! staged version (from a new CA nginx also trusts) is activated, and nginx sees it on the
//! next message.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyward_runtime::testing::{Ca, header, read_request};
use support::{Server, admin_token, issue_files, keyward, text};
use tokio::io::AsyncWriteExt;

/// What the backend received: the client certificate subject nginx passed on, and the body.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A plain HTTP/1.1 backend on 127.0.0.1 that records each request and answers 200 with
/// the subject nginx put in `X-Client-DN`.
async fn backend() -> (u16, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let recorded = Arc::clone(&recorded);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let Some((head, body)) = read_request(&mut tcp, &mut buffer).await else { return };
                    let subject = header(&head, "x-client-dn").unwrap_or_default();
                    recorded.lock().unwrap().push((subject.clone(), body));
                    let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{subject}", subject.len());
                    if tcp.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, received)
}

struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts nginx in `dir` on `port`, trusting `client_cas` for client certificates and
/// passing requests to the backend on `backend`.
fn nginx(dir: &Path, port: u16, backend: u16, server_ca: &Ca, client_cas: &[&Ca]) -> Nginx {
    let (key, chain) = server_ca.issue("nginx partner", Some("127.0.0.1"));
    std::fs::write(dir.join("server.key"), keyward_runtime::testing::pem_block("PRIVATE KEY", &key)).unwrap();
    std::fs::write(dir.join("server.pem"), chain.iter().map(|c| c.to_pem()).collect::<String>()).unwrap();
    std::fs::write(dir.join("client-cas.pem"), client_cas.iter().map(|ca| ca.certificate.to_pem()).collect::<String>()).unwrap();
    let d = dir.display();
    let config = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {d}/server.pem;\n    ssl_certificate_key {d}/server.key;\n    \
         ssl_client_certificate {d}/client-cas.pem;\n    ssl_verify_client on;\n    ssl_verify_depth 2;\n    \
         location / {{\n      proxy_pass http://127.0.0.1:{backend};\n      proxy_http_version 1.1;\n      \
         proxy_set_header Connection \"\";\n      proxy_set_header X-Client-DN $ssl_client_s_dn;\n    }}\n  }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), config).unwrap();
    let binary = if Path::new("/usr/sbin/nginx").exists() { "/usr/sbin/nginx" } else { "nginx" };
    let child = Command::new(binary)
        .args(["-e", &format!("{d}/error.log"), "-p"])
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx is needed for this test (.ci/run installs nginx-light)");
    let nginx = Nginx(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return nginx;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nginx did not start: {}", std::fs::read_to_string(dir.join("error.log")).unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_terminates_mutual_tls_for_a_flow_that_signs_twice() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old_ca = Ca::new("Client CA 2025");
    let new_ca = Ca::new("Client CA 2026");
    let server_ca = Ca::new("nginx Server CA");
    let (backend_port, received) = backend().await;
    let port = free_port();
    let _nginx = nginx(d, port, backend_port, &server_ca, &[&old_ca, &new_ca]);

    let server = Server::start(&d.join("data"));
    let token = admin_token(&d.join("data"));
    let ok = |args: &[&str]| {
        let output = keyward(&server, &token, d, args);
        assert!(output.status.success(), "{args:?} failed:\n{}", text(&output));
        text(&output)
    };
    std::fs::write(d.join("partner-ca.pem"), server_ca.certificate.to_pem()).unwrap();
    ok(&["keys", "import", "partner-ca", "--file", "partner-ca.pem"]);
    issue_files(d, &old_ca, "tls client 2025", "v1");
    ok(&["keys", "import", "tls-client", "--file", "v1.key", "--file", "v1.pem"]);
    issue_files(d, &new_ca, "tls client 2026", "v2");
    ok(&["keys", "import", "tls-client", "--file", "v2.key", "--file", "v2.pem", "--staged"]);
    ok(&["keys", "create", "sign-rsa", "--algorithm", "rsa-2048", "--subject", "CN=orders signing RSA"]);
    ok(&["keys", "create", "sign-ec", "--algorithm", "ec-p256", "--subject", "CN=orders signing EC"]);
    let flow = format!(
        "name = \"orders\"\n[[steps]]\ntype = \"sign\"\n  [[steps.signers]]\n  alias = \"sign-rsa\"\n  [[steps.signers]]\n  alias = \"sign-ec\"\n\n\
         [receiver]\nurl = \"https://127.0.0.1:{port}/in\"\nclient_alias = \"tls-client\"\ntrust = [\"partner-ca\"]\n"
    );
    std::fs::write(d.join("orders.toml"), flow).unwrap();
    ok(&["flows", "deploy", "orders.toml"]);

    let sender = reqwest::Client::new();
    let url = format!("{}/flows/orders", server.base);
    let send = |message: String| {
        let sender = sender.clone();
        let url = url.clone();
        async move {
            for _ in 0..50 {
                let answer = sender.post(&url).body(message.clone()).send().await.unwrap();
                if answer.status() != 404 {
                    return (answer.status().as_u16(), answer.text().await.unwrap());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("the flow never became available");
        }
    };
    for n in 0..5 {
        let (status, answer) = send(format!("<order id=\"{n}\"/>\n")).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains("CN=tls client 2025"), "{answer}");
    }
    ok(&["keys", "export", "sign-rsa", "--format", "pem", "--out", "sign-rsa.pem"]);
    ok(&["keys", "export", "sign-ec", "--format", "pem", "--out", "sign-ec.pem"]);
    let trusted = std::fs::read_to_string(d.join("sign-rsa.pem")).unwrap() + &std::fs::read_to_string(d.join("sign-ec.pem")).unwrap();
    std::fs::write(d.join("trusted.pem"), trusted).unwrap();
    let messages = received.lock().unwrap().clone();
    assert_eq!(messages.len(), 5);
    for (n, (subject, body)) in messages.iter().enumerate() {
        assert!(subject.contains("CN=tls client 2025"), "{subject}");
        std::fs::write(d.join("received.p7m"), body).unwrap();
        let verified = Command::new("openssl")
            .args(["cms", "-verify", "-inform", "DER", "-in", "received.p7m", "-CAfile", "trusted.pem", "-purpose", "any"])
            .args(["-binary", "-out", "content.xml", "-signer", "signers.pem"])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(verified.status.success(), "message {n}: {}", text(&verified));
        assert_eq!(std::fs::read_to_string(d.join("content.xml")).unwrap(), format!("<order id=\"{n}\"/>\n"));
        assert_eq!(std::fs::read_to_string(d.join("signers.pem")).unwrap().matches("BEGIN CERTIFICATE").count(), 2);
    }

    // The new client certificate, from the new CA nginx already trusts.
    ok(&["keys", "activate", "tls-client", "--version", "2"]);
    let mut answer = String::new();
    for _ in 0..50 {
        answer = send("<order id=\"after\"/>\n".into()).await.1;
        if answer.contains("2026") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(answer.contains("CN=tls client 2026"), "{answer}");
    server.stop();
}
