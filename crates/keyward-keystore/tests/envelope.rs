//! Decryption with any valid key, against messages OpenSSL encrypts: a key retired 30 days
//! ago still decrypts (simulated clock), one retired beyond the retention period is refused
//! with an error that names it, and a configured longer retention keeps it usable.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use keyward_crypto::MasterKey;
use keyward_domain::{Actor, Alias, KeyAlgorithm, Role, Timestamp, VersionId, VersionState};
use keyward_keystore::{FixedClock, Keystore, PublicFormat};
use keyward_store::Store;

const START: Timestamp = Timestamp::from_seconds(1_795_428_000);

fn openssl_encrypt(dir: &Path, certificate_pem: &[u8], extra: &[&str]) -> Vec<u8> {
    std::fs::write(dir.join("recipient.pem"), certificate_pem).unwrap();
    std::fs::write(dir.join("plain.txt"), b"invoice 4711: 42 widgets").unwrap();
    let mut args = vec!["cms", "-encrypt", "-binary", "-outform", "DER", "-in", "plain.txt", "-out", "message.p7m"];
    // `-keyopt` applies to the `-recip` before it.
    args.extend(["-recip", "recipient.pem"]);
    args.extend(extra.iter().copied());
    let output = Command::new("openssl").args(&args).current_dir(dir).output().expect("openssl is needed for this test");
    assert!(output.status.success(), "openssl cms -encrypt {extra:?}: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::read(dir.join("message.p7m")).unwrap()
}

#[tokio::test]
async fn retired_keys_decrypt_within_the_retention_period_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("keyward.db")).await.unwrap();
    let clock = Arc::new(FixedClock::new(START));
    let keystore = Keystore::new(store, MasterKey::generate().unwrap(), clock.clone());
    let admin = Actor::new("alice", Role::Admin);
    let developer = Actor::new("flow", Role::Developer);
    let alias = Alias::parse("inbound-decryption").unwrap();
    keystore.generate(&admin, &alias, KeyAlgorithm::Rsa2048, "CN=inbound", 365, false).await.unwrap();
    let old_cert = keystore.export_public(&admin, &alias, Some(VersionId(1)), PublicFormat::CertificatePem).await.unwrap();

    // The partner encrypts to the current certificate, in several ways.
    let messages = [
        openssl_encrypt(dir.path(), &old_cert, &["-aes256"]),
        openssl_encrypt(dir.path(), &old_cert, &["-aes128", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"]),
        openssl_encrypt(dir.path(), &old_cert, &["-aes-256-gcm"]),
    ];
    for message in &messages {
        let opened = keystore.decrypt(&developer, message.clone()).await.unwrap();
        assert_eq!(opened.content, b"invoice 4711: 42 widgets");
        assert_eq!((opened.version, opened.state), (VersionId(1), VersionState::Active));
    }

    // The key is renewed; 30 days later the partner's old messages still decrypt.
    keystore.generate(&admin, &alias, KeyAlgorithm::Rsa2048, "CN=inbound", 365, false).await.unwrap();
    clock.advance_days(30);
    for message in &messages {
        let opened = keystore.decrypt(&developer, message.clone()).await.unwrap();
        assert_eq!((opened.version, opened.state), (VersionId(1), VersionState::Retired));
    }

    // Beyond 90 days the retired key is refused, and the error says which and why.
    clock.advance_days(61);
    let err = keystore.decrypt(&developer, messages[0].clone()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("inbound-decryption version 1") && text.contains("retired"), "{text}");

    // An admin keeps retired keys longer; shortening below 90 days needs a reason.
    keystore.set_retention(&admin, 120, None).await.unwrap();
    keystore.decrypt(&developer, messages[1].clone()).await.unwrap();
    assert!(keystore.set_retention(&admin, 30, None).await.is_err());
    keystore.set_retention(&admin, 30, Some("partner contract ended")).await.unwrap();
    let records = keystore.audit_list(&admin, 1, None).await.unwrap();
    assert_eq!(records[0].action, "settings.retention");
    assert!(records[0].detail.contains("partner contract ended"), "{}", records[0].detail);

    // Decryption needs a developer or admin; a viewer may only encrypt.
    let viewer = Actor::new("auditor", Role::Viewer);
    assert!(keystore.decrypt(&viewer, messages[0].clone()).await.is_err());
    let sealed = keystore
        .encrypt(&viewer, std::slice::from_ref(&alias), b"reply".to_vec(), "rsa-oaep".parse().unwrap(), "aes256-gcm".parse().unwrap())
        .await
        .unwrap();
    let opened = keystore.decrypt(&developer, sealed).await.unwrap();
    assert_eq!((opened.content.as_slice(), opened.version), (&b"reply"[..], VersionId(2)));
}
