//! The keystore service end to end on a real SQLite database: encryption at rest, the
//! retention rule with a moving clock, CSR responses, and platform keys.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;

use keyward_crypto::{Imported, MasterKey};
use keyward_domain::{Actor, Alias, ErrorClass, KeyAlgorithm, Role, Timestamp, VersionId, VersionState};
use keyward_keystore::{FixedClock, Keystore, KeystoreError, PublicFormat};
use keyward_store::Store;

const START: Timestamp = Timestamp::from_seconds(1_795_428_000); // 2026-11-23T10:00:00Z

struct Fixture {
    keystore: Keystore,
    clock: Arc<FixedClock>,
    dir: tempfile::TempDir,
    admin: Actor,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("keyward.db")).await.unwrap();
    let clock = Arc::new(FixedClock::new(START));
    let keystore = Keystore::new(store, MasterKey::generate().unwrap(), clock.clone());
    Fixture { keystore, clock, dir, admin: Actor::new("alice", Role::Admin) }
}

fn alias(name: &str) -> Alias {
    Alias::parse(name).unwrap()
}

fn class(result: Result<impl Sized, KeystoreError>) -> Option<ErrorClass> {
    result.err().map(|e| e.class().expect("a user error"))
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

#[tokio::test]
async fn private_keys_and_tokens_are_not_in_the_database_files() {
    let f = fixture().await;
    let token = keyward_keystore::tokens::generate_token().unwrap();
    f.keystore.issue_token_as_operator("admin", Role::Admin, &token).await.unwrap();
    // A key whose bytes we know, imported as PEM, plus generated keys of every algorithm.
    let (key, cert) = keyward_crypto::generate(KeyAlgorithm::EcP384, "CN=known", 30, START).unwrap();
    let input = format!("{}{}", pem("PRIVATE KEY", key.pkcs8_der()), cert.to_pem());
    f.keystore.import(&f.admin, &alias("known"), input.as_bytes(), None, false).await.unwrap();
    for algorithm in KeyAlgorithm::ALL {
        let name = format!("gen-{algorithm}");
        f.keystore.generate(&f.admin, &alias(&name), algorithm, "CN=gen", 30, false).await.unwrap();
    }
    // Everything that SQLite may have written: the database, its WAL and shared memory.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(f.dir.path()).unwrap() {
        stored.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(stored.len() > 10_000, "the database files are suspiciously small");
    let contains = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    // The certificate is stored in the clear, which shows the search works.
    assert!(contains(cert.der()), "the certificate should be stored as DER");
    let der = key.pkcs8_der();
    assert!(!contains(der), "the PKCS#8 private key is stored in the clear");
    // No 16-byte window of its secret part either: PKCS#8 also carries the public key and
    // algorithm identifiers, which the certificate holds too, so those windows are skipped.
    let public = cert.der();
    let secret_windows: Vec<&[u8]> =
        der.windows(16).filter(|w| !public.windows(16).any(|p| p == *w)).collect();
    assert!(secret_windows.len() >= 32, "the private scalar should give many secret windows");
    for window in secret_windows {
        assert!(!contains(window), "a piece of the private key is stored in the clear");
    }
    assert!(!contains(input.as_bytes()), "the imported PEM is stored in the clear");
    assert!(!contains(token.as_bytes()), "the admin token is stored in the clear");
}

#[tokio::test]
async fn sealed_keys_do_not_open_under_another_master_key() {
    let f = fixture().await;
    f.keystore.generate(&f.admin, &alias("k"), KeyAlgorithm::EcP256, "CN=k", 30, false).await.unwrap();
    let store = Store::open_sqlite(&f.dir.path().join("keyward.db")).await.unwrap();
    let other = Keystore::new(store, MasterKey::generate().unwrap(), f.clock.clone());
    let err = other.export_pkcs12(&f.admin, &alias("k"), None, "pw").await.unwrap_err();
    assert_eq!(err.class(), None, "a wrong master key is an internal error, not the caller's");
    assert!(err.to_string().contains("master key"), "{err}");
    // The start-up check catches it before any key is touched.
    f.keystore.check_master_key().await.unwrap();
    let err = other.check_master_key().await.unwrap_err();
    assert!(err.to_string().contains("does not match this keystore"), "{err}");
    f.keystore.check_master_key().await.unwrap();
}

#[tokio::test]
async fn retired_key_pairs_are_kept_for_90_days() {
    let f = fixture().await;
    let a = alias("partner-b");
    f.keystore.generate(&f.admin, &a, KeyAlgorithm::EcP256, "CN=b", 365, false).await.unwrap();
    f.keystore.generate(&f.admin, &a, KeyAlgorithm::EcP256, "CN=b", 365, true).await.unwrap();
    f.keystore.activate(&f.admin, &a, None).await.unwrap();
    f.clock.advance_days(30);
    assert_eq!(class(f.keystore.delete(&f.admin, &a, false, None).await), Some(ErrorClass::Conflict));
    f.clock.advance_days(59);
    assert_eq!(class(f.keystore.delete(&f.admin, &a, false, None).await), Some(ErrorClass::Conflict));
    f.clock.advance_days(2);
    f.keystore.delete(&f.admin, &a, false, None).await.unwrap();
    assert!(f.keystore.show(&f.admin, &a).await.is_err());
}

#[tokio::test]
async fn forced_deletion_is_audited_with_its_reason() {
    let f = fixture().await;
    let a = alias("compromised");
    f.keystore.generate(&f.admin, &a, KeyAlgorithm::EcP256, "CN=c", 365, false).await.unwrap();
    f.keystore.generate(&f.admin, &a, KeyAlgorithm::EcP256, "CN=c", 365, false).await.unwrap();
    f.keystore.delete(&f.admin, &a, true, Some("key leaked in ticket 4711")).await.unwrap();
    let records = f.keystore.audit_list(&f.admin, 1, None).await.unwrap();
    assert_eq!(records[0].action, "keys.delete");
    assert!(records[0].detail.contains("key leaked in ticket 4711"), "{}", records[0].detail);
    assert!(records[0].detail.contains("forced"));
}

#[tokio::test]
async fn csr_response_from_a_staged_key_stays_staged_and_keeps_the_key() {
    let f = fixture().await;
    let a = alias("renewed");
    f.keystore.generate(&f.admin, &a, KeyAlgorithm::Rsa2048, "CN=renewed, O=Example", 365, false).await.unwrap();
    f.keystore.generate(&f.admin, &a, KeyAlgorithm::EcP256, "CN=renewed, O=Example", 365, true).await.unwrap();
    let csr = f.keystore.certificate_request(&f.admin, &a, None).await.unwrap();
    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    // A CA response for version 2's key: here the version's own certificate stands in for it.
    let response = f.keystore.export_public(&f.admin, &a, Some(VersionId(2)), PublicFormat::CertificatePem).await.unwrap();
    let version = f.keystore.import_response(&f.admin, &a, &response, false).await.unwrap();
    assert_eq!(version, VersionId(3));
    let view = f.keystore.show(&f.admin, &a).await.unwrap();
    assert_eq!(view.versions[2].version.state, VersionState::Staged);
    assert_eq!(view.versions[2].key_algorithm.as_deref(), Some("EC P-256"));
    // The new version holds the same private key as version 2.
    let p12_v2 = f.keystore.export_pkcs12(&f.admin, &a, Some(VersionId(2)), "pw").await.unwrap();
    let p12_v3 = f.keystore.export_pkcs12(&f.admin, &a, Some(VersionId(3)), "pw").await.unwrap();
    let key_of = |p12: &[u8]| match keyward_crypto::import(p12, Some("pw")).unwrap() {
        Imported::KeyPair { key, .. } => key.pkcs8_der().to_vec(),
        Imported::Certificates(_) => panic!("no key"),
    };
    assert_eq!(key_of(&p12_v2), key_of(&p12_v3));
    // Private-key exports are audited with their version, and change nothing.
    let records = f.keystore.audit_list(&f.admin, 2, None).await.unwrap();
    assert_eq!(records[0].action, "keys.export-private");
    assert_eq!(records[0].version, Some(3));
    let revision = f.keystore.show(&f.admin, &a).await.unwrap().entry.revision;
    f.keystore.export_pkcs12(&f.admin, &a, None, "pw").await.unwrap();
    assert_eq!(f.keystore.show(&f.admin, &a).await.unwrap().entry.revision, revision);
}

#[tokio::test]
async fn platform_keys_are_staged_by_the_platform_and_activated_by_the_tenant() {
    let f = fixture().await;
    let platform = Actor::new("provisioning", Role::Platform);
    let a = alias("sap_cloudintegrationcertificate");
    f.keystore.generate(&platform, &a, KeyAlgorithm::Rsa2048, "CN=platform", 365, true).await.unwrap();
    assert_eq!(
        class(f.keystore.generate(&platform, &a, KeyAlgorithm::Rsa2048, "CN=platform", 365, false).await),
        Some(ErrorClass::Forbidden)
    );
    assert_eq!(class(f.keystore.activate(&platform, &a, None).await), Some(ErrorClass::Forbidden));
    f.keystore.activate(&f.admin, &a, None).await.unwrap();
    assert_eq!(
        class(f.keystore.generate(&f.admin, &a, KeyAlgorithm::Rsa2048, "CN=tenant", 365, true).await),
        Some(ErrorClass::Forbidden)
    );
    let entries = f.keystore.list(&f.admin, &Default::default()).await.unwrap();
    assert_eq!(entries[0].owner, keyward_domain::Owner::Platform);
    assert_eq!(entries[0].active, Some(VersionId(1)));
}

#[tokio::test]
async fn revoked_tokens_no_longer_authenticate() {
    let f = fixture().await;
    let token = f.keystore.create_token(&f.admin, "ci-pipeline", Role::Developer).await.unwrap();
    assert_eq!(f.keystore.authenticate(&token).await.unwrap().map(|a| a.role), Some(Role::Developer));
    let names: Vec<String> = f.keystore.list_tokens(&f.admin).await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["ci-pipeline"]);
    f.keystore.revoke_token(&f.admin, "ci-pipeline").await.unwrap();
    assert_eq!(f.keystore.authenticate(&token).await.unwrap(), None);
    assert_eq!(class(f.keystore.revoke_token(&f.admin, "ci-pipeline").await), Some(ErrorClass::NotFound));
    let records = f.keystore.audit_list(&f.admin, 1, None).await.unwrap();
    assert_eq!((records[0].action.as_str(), records[0].detail.as_str()), ("tokens.revoke", "revoked token ci-pipeline"));
}

#[tokio::test]
async fn signatures_follow_the_active_version_and_need_a_signing_role() {
    use keyward_cms::{IncludeCertificates, Require};
    use keyward_keystore::SignerRequest;
    let f = fixture().await;
    let a = alias("outbound-signer");
    f.keystore.generate(&f.admin, &a, KeyAlgorithm::EcP256, "CN=signer", 365, false).await.unwrap();
    f.keystore.generate(&f.admin, &a, KeyAlgorithm::EcP256, "CN=signer", 365, true).await.unwrap();
    let request = [SignerRequest {
        alias: a.clone(),
        digest: None,
        scheme: None,
        include: IncludeCertificates::Signer,
        signing_time: true,
    }];
    let serial_of = |version: u32| {
        let keystore = f.keystore.clone();
        let (admin, a) = (f.admin.clone(), a.clone());
        async move {
            let view = keystore.show(&admin, &a).await.unwrap();
            view.versions[version as usize - 1].chain[0].serial_hex.clone()
        }
    };
    let before = f.keystore.sign(&f.admin, &request, b"order 1".to_vec(), false).await.unwrap();
    f.keystore.activate(&f.admin, &a, None).await.unwrap();
    let after = f.keystore.sign(&f.admin, &request, b"order 2".to_vec(), false).await.unwrap();
    for (message, version) in [(before, 1), (after, 2)] {
        let (report, verified) =
            f.keystore.verify(&f.admin, message, None, std::slice::from_ref(&a), Require::All).await.unwrap();
        assert!(verified, "{:?}", report.signers);
        assert_eq!(report.signers[0].serial.to_lowercase().replace(':', ""), serial_of(version).await);
    }
    // Beyond the retention period the retired version is no longer trusted.
    let old = f.keystore.sign(&f.admin, &request, b"order 3".to_vec(), false).await.unwrap();
    f.keystore.generate(&f.admin, &a, KeyAlgorithm::EcP256, "CN=signer", 365, false).await.unwrap();
    f.clock.advance_days(91);
    let (report, verified) = f.keystore.verify(&f.admin, old, None, std::slice::from_ref(&a), Require::All).await.unwrap();
    assert!(!verified);
    assert_eq!(report.signers[0].problem.as_deref(), Some("signer certificate is not trusted"));

    let viewer = Actor::new("auditor", Role::Viewer);
    assert_eq!(class(f.keystore.sign(&viewer, &request, b"x".to_vec(), false).await), Some(ErrorClass::Forbidden));
    let platform = Actor::new("ops", Role::Platform);
    assert_eq!(class(f.keystore.sign(&platform, &request, b"x".to_vec(), false).await), Some(ErrorClass::Forbidden));
}
