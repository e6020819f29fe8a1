//! The connectivity test against real TLS servers on loopback: success with the details,
//! and each failure cause.

#![allow(clippy::unwrap_used)]



use std::time::Duration;

use keyward_domain::Timestamp;
use keyward_runtime::probe::{ProbeFailure, ProbeOptions, Target, probe};
use keyward_runtime::testing::{Ca, Partner};

fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    Timestamp::from_millis(i64::try_from(since_epoch.as_millis()).unwrap())
}

fn options(partner: &Partner, client: Option<keyward_keystore::KeyPairVersion>) -> ProbeOptions {
    ProbeOptions { client, trust: vec![partner.server_ca.clone()], timeout: Duration::from_secs(5) }
}

#[tokio::test]
async fn a_client_certificate_the_partner_accepts() {
    let client_ca = Ca::new("Client CA One");
    let partner = Partner::start(&[&client_ca.certificate]).await;
    let target = Target::parse(&partner.url("/health")).unwrap();
    let report = probe(&target, &options(&partner, Some(client_ca.client("tls-client", 3))), now()).await;
    assert_eq!(report.outcome, Ok(()), "{report:#?}");
    assert_eq!(report.http_status.as_deref(), Some("HTTP/1.1 200 OK"));
    assert_eq!(report.protocol.as_deref(), Some("TLSv1_3"));
    assert!(report.cipher_suite.as_deref().unwrap().starts_with("TLS13_"), "{report:?}");
    assert_eq!(report.server_trusted, Some(true));
    assert_eq!(report.server_chain.len(), 2);
    assert!(report.server_chain[0].subject.contains("CN=partner server"));
    assert!(report.server_chain.iter().all(|c| c.valid_now));
    let cas = report.acceptable_client_cas.unwrap();
    assert_eq!(cas.len(), 1);
    assert!(cas[0].contains("CN=Client CA One"), "{cas:?}");
    let presented = report.presented.unwrap();
    assert_eq!((presented.alias.as_str(), presented.version.0), ("tls-client", 3));
    assert_eq!(partner.seen.lock().unwrap().as_slice(), ["CN=tls-client v3, O=Test Partner".to_owned()]);
}

#[tokio::test]
async fn without_a_client_certificate_where_one_is_required() {
    let client_ca = Ca::new("Client CA One");
    let partner = Partner::start(&[&client_ca.certificate]).await;
    let target = Target::parse(&partner.url("/")).unwrap();
    let report = probe(&target, &options(&partner, None), now()).await;
    assert!(matches!(report.outcome, Err(ProbeFailure::ClientCertificateRequired(_))), "{report:#?}");
    assert!(partner.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_client_certificate_from_a_ca_the_partner_does_not_trust() {
    let trusted = Ca::new("Client CA One");
    let other = Ca::new("Client CA Two");
    let partner = Partner::start(&[&trusted.certificate]).await;
    let target = Target::parse(&partner.url("/")).unwrap();
    let report = probe(&target, &options(&partner, Some(other.client("tls-client", 2))), now()).await;
    match &report.outcome {
        Err(ProbeFailure::ClientCertificateRejected { presented, alert }) => {
            assert!(presented.contains("tls-client version 2"), "{presented}");
            assert!(!alert.is_empty());
        }
        other => panic!("{other:?}\n{report:#?}"),
    }
    // Any valid key: with only the other CA's key, nothing the partner accepts.
    let message = report.outcome.unwrap_err().to_string();
    assert!(message.contains("rejected the client certificate"), "{message}");
}

#[tokio::test]
async fn a_staged_version_from_the_new_ca_before_the_partner_accepts_it_and_after() {
    let old_ca = Ca::new("Client CA 2025");
    let new_ca = Ca::new("Client CA 2026");
    let active = old_ca.client("tls-client", 1);
    let staged = new_ca.client("tls-client", 2);
    let before = Partner::start(&[&old_ca.certificate]).await;
    let target = Target::parse(&before.url("/")).unwrap();
    assert_eq!(probe(&target, &options(&before, Some(active.clone())), now()).await.outcome, Ok(()));
    let report = probe(&target, &options(&before, Some(staged.clone())), now()).await;
    assert!(matches!(report.outcome, Err(ProbeFailure::ClientCertificateRejected { .. })), "{report:#?}");
    let both = Partner::start(&[&old_ca.certificate, &new_ca.certificate]).await;
    let target = Target::parse(&both.url("/")).unwrap();
    let report = probe(&target, &options(&both, Some(staged)), now()).await;
    assert_eq!(report.outcome, Ok(()), "{report:#?}");
    assert_eq!(report.acceptable_client_cas.unwrap().len(), 2);
}

#[tokio::test]
async fn a_server_certificate_for_another_name() {
    let partner = Partner::start(&[]).await;
    let target = Target::parse(&format!("https://localhost:{}/", partner.addr.port())).unwrap();
    let report = probe(&target, &options(&partner, None), now()).await;
    match &report.outcome {
        Err(ProbeFailure::NameMismatch { host, .. }) => assert_eq!(host, "localhost"),
        other => panic!("{other:?}"),
    }
    assert_eq!(report.server_trusted, Some(false));
    assert_eq!(report.server_chain.len(), 2, "the chain is reported even when refused");
}

#[tokio::test]
async fn a_server_certificate_from_an_untrusted_ca() {
    let partner = Partner::start(&[]).await;
    let target = Target::parse(&partner.url("/")).unwrap();
    let mut options = options(&partner, None);
    options.trust = vec![Ca::new("Someone Else").certificate];
    let report = probe(&target, &options, now()).await;
    assert!(matches!(report.outcome, Err(ProbeFailure::UntrustedServer(_))), "{report:#?}");
    assert!(report.server_chain[0].subject.contains("partner server"));
}

#[tokio::test]
async fn nothing_listening() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let target = Target::parse(&format!("https://127.0.0.1:{port}/")).unwrap();
    let options = ProbeOptions { client: None, trust: vec![Ca::new("Any").certificate], timeout: Duration::from_secs(2) };
    let report = probe(&target, &options, now()).await;
    assert!(matches!(report.outcome, Err(ProbeFailure::Refused(_))), "{report:#?}");
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            open.push(tcp);
        }
    });
    let target = Target::parse(&format!("https://127.0.0.1:{port}/")).unwrap();
    let options = ProbeOptions { client: None, trust: vec![Ca::new("Any").certificate], timeout: Duration::from_millis(300) };
    let report = probe(&target, &options, now()).await;
    match report.outcome {
        Err(ProbeFailure::Timeout { stage, limit_ms }) => {
            assert_eq!((stage, limit_ms), ("in the TLS handshake", 300));
        }
        other => panic!("{other:?}"),
    }
    silent.abort();
}

#[tokio::test]
async fn no_certificate_to_trust() {
    let target = Target::parse("https://127.0.0.1:9/").unwrap();
    let options = ProbeOptions { client: None, trust: Vec::new(), timeout: Duration::from_secs(1) };
    let report = probe(&target, &options, now()).await;
    match report.outcome {
        Err(ProbeFailure::Setup(message)) => assert!(message.contains("no certificate to trust"), "{message}"),
        other => panic!("{other:?}"),
    }
}
