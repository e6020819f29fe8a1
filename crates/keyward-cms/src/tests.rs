//! Round trips through [`crate::sign`] and [`crate::verify`], and what verification says
//! about damaged, foreign and untrusted messages.

use std::sync::OnceLock;

use base64::Engine as _;
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::{Decode, Encode};
use keyward_crypto::{Certificate, Chain, KeyAlgorithm, PrivateKey, generate};
use keyward_domain::Timestamp;

use crate::{
    CmsError, DigestAlgorithm, IncludeCertificates, Require, SignatureScheme, Signer, sign, verify,
};

const NOW: Timestamp = Timestamp::from_seconds(1_800_000_000);
const PAYLOAD: &[u8] = b"invoice 4711\r\nline two\n\x00\xff binary tail";

struct Identity {
    key: PrivateKey,
    certificate: Certificate,
    chain: Chain,
}

fn identity(algorithm: KeyAlgorithm, name: &str) -> Identity {
    let (key, certificate) =
        generate(algorithm, &format!("CN={name}, O=Example AG"), 30, NOW).unwrap();
    let chain = Chain::new(vec![certificate.clone()]).unwrap();
    Identity {
        key,
        certificate,
        chain,
    }
}

fn rsa() -> &'static Identity {
    static CELL: OnceLock<Identity> = OnceLock::new();
    CELL.get_or_init(|| identity(KeyAlgorithm::Rsa2048, "rsa signer"))
}

fn p256() -> &'static Identity {
    static CELL: OnceLock<Identity> = OnceLock::new();
    CELL.get_or_init(|| identity(KeyAlgorithm::EcP256, "p256 signer"))
}

fn p384() -> &'static Identity {
    static CELL: OnceLock<Identity> = OnceLock::new();
    CELL.get_or_init(|| identity(KeyAlgorithm::EcP384, "p384 signer"))
}

fn ed25519() -> &'static Identity {
    static CELL: OnceLock<Identity> = OnceLock::new();
    CELL.get_or_init(|| identity(KeyAlgorithm::Ed25519, "ed25519 signer"))
}

fn signer<'a>(
    identity: &'a Identity,
    digest: DigestAlgorithm,
    scheme: Option<SignatureScheme>,
) -> Signer<'a> {
    Signer {
        key: &identity.key,
        chain: &identity.chain,
        digest,
        scheme,
        include: IncludeCertificates::Signer,
        signing_time: None,
    }
}

/// Every algorithm keyward signs with, and the signatureAlgorithm name it writes.
fn every_algorithm() -> Vec<(Signer<'static>, &'static str)> {
    use DigestAlgorithm::{Sha256, Sha384, Sha512};
    use SignatureScheme::{RsaPkcs1v15, RsaPss};
    vec![
        (signer(rsa(), Sha256, None), "sha256WithRSAEncryption"),
        (
            signer(rsa(), Sha384, Some(RsaPkcs1v15)),
            "sha384WithRSAEncryption",
        ),
        (
            signer(rsa(), Sha512, Some(RsaPkcs1v15)),
            "sha512WithRSAEncryption",
        ),
        (signer(rsa(), Sha256, Some(RsaPss)), "rsassaPss"),
        (signer(rsa(), Sha384, Some(RsaPss)), "rsassaPss"),
        (signer(rsa(), Sha512, Some(RsaPss)), "rsassaPss"),
        (signer(p256(), Sha256, None), "ecdsa-with-SHA256"),
        (
            signer(p384(), Sha384, Some(SignatureScheme::Ecdsa)),
            "ecdsa-with-SHA384",
        ),
        (signer(ed25519(), Sha512, None), "Ed25519"),
    ]
}

fn problems(verification: &crate::Verification) -> Vec<Option<String>> {
    verification
        .signers
        .iter()
        .map(|s| s.problem.clone())
        .collect()
}

fn verification_failure(result: Result<crate::Verification, CmsError>) -> crate::Verification {
    match result {
        Err(CmsError::Verification { verification, .. }) => verification,
        other => panic!("expected a verification failure, got {other:?}"),
    }
}

fn signed_data(message: &[u8]) -> SignedData {
    ContentInfo::from_der(message)
        .unwrap()
        .content
        .decode_as::<SignedData>()
        .unwrap()
}

#[test]
fn every_algorithm_round_trips_encapsulated_and_detached() {
    for (one, algorithm_name) in every_algorithm() {
        let trusted = [one.chain.leaf().clone()];
        let signed = sign(PAYLOAD, &[one], false).unwrap();
        let verification = verify(&signed, None, &trusted, Require::All, NOW).unwrap();
        assert_eq!(verification.content, PAYLOAD);
        let report = &verification.signers[0];
        assert_eq!(report.problem, None, "{algorithm_name}");
        assert_eq!(report.signature_algorithm, algorithm_name);
        assert_eq!(report.digest, one.digest.to_string());
        assert_eq!(report.subject, one.chain.leaf().subject());
        assert_eq!(report.serial, one.chain.leaf().serial_hex());

        let detached = sign(PAYLOAD, &[one], true).unwrap();
        assert!(signed_data(&detached).encap_content_info.econtent.is_none());
        assert!(detached.len() < signed.len());
        let verification = verify(&detached, Some(PAYLOAD), &trusted, Require::All, NOW).unwrap();
        assert_eq!(verification.content, PAYLOAD);
        let err = verify(&detached, None, &trusted, Require::All, NOW).unwrap_err();
        assert_eq!(err, CmsError::DetachedContentMissing);
        assert!(err.is_user_error());
    }
}

#[test]
fn message_structure_follows_rfc_5652() {
    let mut with_time = signer(p256(), DigestAlgorithm::Sha256, None);
    with_time.signing_time = Some(NOW);
    let message = sign(PAYLOAD, &[with_time], false).unwrap();
    let signed = signed_data(&message);
    assert_eq!(signed.version, cms::content_info::CmsVersion::V1);
    assert_eq!(signed.digest_algorithms.len(), 1);
    let info = signed.signer_infos.0.get(0).unwrap();
    assert_eq!(info.version, cms::content_info::CmsVersion::V1);
    assert!(matches!(
        info.sid,
        cms::signed_data::SignerIdentifier::IssuerAndSerialNumber(_)
    ));
    let attributes: Vec<String> = info
        .signed_attrs
        .as_ref()
        .unwrap()
        .iter()
        .map(|a| a.oid.to_string())
        .collect();
    for oid in [
        "1.2.840.113549.1.9.3",
        "1.2.840.113549.1.9.4",
        "1.2.840.113549.1.9.5",
    ] {
        assert!(attributes.contains(&oid.to_owned()), "{attributes:?}");
    }
    // The message is DER: decoding and encoding again gives the same bytes.
    assert_eq!(
        ContentInfo::from_der(&message).unwrap().to_der().unwrap(),
        message
    );
    let verification = verify(
        &message,
        None,
        &[p256().certificate.clone()],
        Require::All,
        NOW,
    )
    .unwrap();
    assert_eq!(verification.signers[0].signing_time, Some(NOW));
}

#[test]
fn signing_time_after_2049_is_written_and_read() {
    let later = Timestamp::from_seconds(2_600_000_000);
    let mut one = signer(ed25519(), DigestAlgorithm::Sha512, None);
    one.signing_time = Some(later);
    let message = sign(b"x", &[one], false).unwrap();
    let verification = verify(
        &message,
        None,
        &[ed25519().certificate.clone()],
        Require::All,
        NOW,
    )
    .unwrap();
    assert_eq!(verification.signers[0].signing_time, Some(later));
}

#[test]
fn two_signers_with_mixed_algorithms() {
    let signers = [
        signer(
            rsa(),
            DigestAlgorithm::Sha384,
            Some(SignatureScheme::RsaPss),
        ),
        signer(ed25519(), DigestAlgorithm::Sha512, None),
    ];
    let trusted = [rsa().certificate.clone(), ed25519().certificate.clone()];
    for detached in [false, true] {
        let message = sign(PAYLOAD, &signers, detached).unwrap();
        let signed = signed_data(&message);
        assert_eq!(signed.signer_infos.0.len(), 2);
        assert_eq!(signed.digest_algorithms.len(), 2);
        assert_eq!(signed.certificates.as_ref().unwrap().0.len(), 2);
        let content = detached.then_some(PAYLOAD);
        let verification = verify(&message, content, &trusted, Require::All, NOW).unwrap();
        assert_eq!(problems(&verification), vec![None, None]);
        let mut subjects: Vec<String> = verification
            .signers
            .iter()
            .map(|s| s.subject.clone())
            .collect();
        subjects.sort();
        assert_eq!(
            subjects,
            vec![
                "CN=ed25519 signer, O=Example AG".to_owned(),
                "CN=rsa signer, O=Example AG".to_owned()
            ]
        );
    }
}

#[test]
fn same_digest_and_same_certificate_appear_once() {
    let mut first = signer(p256(), DigestAlgorithm::Sha256, None);
    first.include = IncludeCertificates::Chain;
    let second = signer(p256(), DigestAlgorithm::Sha256, None);
    let message = sign(PAYLOAD, &[first, second], false).unwrap();
    let signed = signed_data(&message);
    assert_eq!(signed.digest_algorithms.len(), 1);
    assert_eq!(signed.certificates.unwrap().0.len(), 1);
}

#[test]
fn include_options_decide_what_the_message_carries() {
    let cases = [
        (IncludeCertificates::None, 0),
        (IncludeCertificates::Signer, 1),
        (IncludeCertificates::Chain, 1),
    ];
    for (include, count) in cases {
        let mut one = signer(p384(), DigestAlgorithm::Sha384, None);
        one.include = include;
        let message = sign(PAYLOAD, &[one], false).unwrap();
        let signed = signed_data(&message);
        assert_eq!(
            signed.certificates.map_or(0, |set| set.0.len()),
            count,
            "{include}"
        );
        // With the signer's certificate trusted, every option verifies.
        verify(
            &message,
            None,
            &[p384().certificate.clone()],
            Require::All,
            NOW,
        )
        .unwrap();
        // Without trusted certificates, nothing does, and the report says why.
        let report = verification_failure(verify(&message, None, &[], Require::All, NOW));
        let problem = report.signers[0].problem.clone().unwrap();
        if count == 0 {
            assert!(
                problem.starts_with(
                    "no certificate for signer issuer=CN=p384 signer,O=Example AG serial="
                ),
                "{problem}"
            );
            assert!(
                problem.ends_with(&p384().certificate.serial_hex()),
                "{problem}"
            );
        } else {
            assert_eq!(
                problem,
                "signer certificate is not trusted (no trusted certificates were given)"
            );
        }
    }
}

#[test]
fn certificate_from_the_message_is_not_trusted_by_itself() {
    let message = sign(
        PAYLOAD,
        &[signer(p256(), DigestAlgorithm::Sha256, None)],
        false,
    )
    .unwrap();
    let report = verification_failure(verify(
        &message,
        None,
        &[p384().certificate.clone()],
        Require::All,
        NOW,
    ));
    assert_eq!(
        problems(&report),
        vec![Some("signer certificate is not trusted".to_owned())]
    );
    // The signer itself is reported even though it is not trusted.
    assert_eq!(report.signers[0].subject, "CN=p256 signer, O=Example AG");
}

#[test]
fn tampered_payload_is_detected() {
    let one = signer(rsa(), DigestAlgorithm::Sha256, None);
    let trusted = [rsa().certificate.clone()];
    let detached = sign(PAYLOAD, &[one], true).unwrap();
    let report = verification_failure(verify(
        &detached,
        Some(b"invoice 4712"),
        &trusted,
        Require::All,
        NOW,
    ));
    assert_eq!(
        problems(&report),
        vec![Some(
            "the content does not match the signed digest (tampered payload?)".to_owned()
        )]
    );
    assert_eq!(report.content, b"invoice 4712");

    let mut encapsulated = sign(PAYLOAD, &[one], false).unwrap();
    let at = encapsulated
        .windows(PAYLOAD.len())
        .position(|w| w == PAYLOAD)
        .unwrap();
    encapsulated[at + 8] ^= 0x01;
    let error = verify(&encapsulated, None, &trusted, Require::All, NOW).unwrap_err();
    assert!(error.to_string().contains("tampered payload"), "{error}");
    assert!(error.is_user_error());
}

#[test]
fn tampered_signature_is_detected() {
    for (one, name) in every_algorithm() {
        let mut message = sign(PAYLOAD, &[one], false).unwrap();
        // With one signer and no unsigned attributes the signature ends the message.
        let last = message.len() - 1;
        message[last] ^= 0x01;
        let report = verification_failure(verify(
            &message,
            None,
            &[one.chain.leaf().clone()],
            Require::All,
            NOW,
        ));
        assert_eq!(
            problems(&report),
            vec![Some("signature does not verify".to_owned())],
            "{name}"
        );
    }
}

#[test]
fn unknown_signer_is_named() {
    let mut one = signer(ed25519(), DigestAlgorithm::Sha512, None);
    one.include = IncludeCertificates::None;
    let message = sign(PAYLOAD, &[one], false).unwrap();
    let error = verify(
        &message,
        None,
        &[rsa().certificate.clone()],
        Require::Any,
        NOW,
    )
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("no certificate for signer issuer=CN=ed25519 signer,O=Example AG serial="),
        "{text}"
    );
    let report = verification_failure(Err(error));
    assert_eq!(report.signers[0].subject, "");
    assert_eq!(report.signers[0].serial, ed25519().certificate.serial_hex());
}

#[test]
fn certificate_validity_is_checked_at_now() {
    let message = sign(
        PAYLOAD,
        &[signer(p256(), DigestAlgorithm::Sha256, None)],
        false,
    )
    .unwrap();
    let trusted = [p256().certificate.clone()];
    let report = verification_failure(verify(
        &message,
        None,
        &trusted,
        Require::All,
        NOW.plus_days(3650),
    ));
    assert_eq!(
        problems(&report),
        vec![Some(format!(
            "certificate expired on {}",
            p256().certificate.not_after()
        ))]
    );
    let report = verification_failure(verify(
        &message,
        None,
        &trusted,
        Require::All,
        NOW.plus_days(-3650),
    ));
    assert_eq!(
        problems(&report),
        vec![Some(format!(
            "not valid before {}",
            p256().certificate.not_before()
        ))]
    );
}

#[test]
fn require_any_accepts_one_good_signer_and_all_does_not() {
    let mut unknown = signer(p384(), DigestAlgorithm::Sha384, None);
    unknown.include = IncludeCertificates::None;
    let signers = [signer(p256(), DigestAlgorithm::Sha256, None), unknown];
    let message = sign(PAYLOAD, &signers, false).unwrap();
    let trusted = [p256().certificate.clone()];

    let verification = verify(&message, None, &trusted, Require::Any, NOW).unwrap();
    assert_eq!(verification.signers.len(), 2);
    assert_eq!(
        verification.signers.iter().filter(|s| s.is_valid()).count(),
        1
    );

    let error = verify(&message, None, &trusted, Require::All, NOW).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with(
            "the CMS message verification failed: 1 of 2 signers valid, all are required; signer "
        ),
        "{text}"
    );
    assert!(text.contains("no certificate for signer"), "{text}");
    let report = verification_failure(Err(error));
    assert_eq!(report.content, PAYLOAD);

    // Neither signer trusted: Any fails too.
    let report = verification_failure(verify(&message, None, &[], Require::Any, NOW));
    assert!(report.signers.iter().all(|s| !s.is_valid()));
}

#[test]
fn unsuitable_options_are_refused() {
    use DigestAlgorithm::{Sha256, Sha384, Sha512};
    let cases = [
        (
            signer(ed25519(), Sha256, None),
            "Ed25519 signers must use digest sha512 (RFC 8419), not sha256",
        ),
        (
            signer(p256(), Sha384, None),
            "an EC P-256 key signs with digest sha256, not sha384",
        ),
        (
            signer(p384(), Sha512, None),
            "an EC P-384 key signs with digest sha384, not sha512",
        ),
        (
            signer(rsa(), Sha256, Some(SignatureScheme::Ecdsa)),
            "an RSA 2048 key cannot sign with ecdsa",
        ),
        (
            signer(p256(), Sha256, Some(SignatureScheme::RsaPss)),
            "an EC P-256 key cannot sign with rsa-pss",
        ),
    ];
    for (one, expected) in cases {
        let error = sign(PAYLOAD, &[one], false).unwrap_err();
        assert!(error.is_user_error());
        assert_eq!(error.to_string(), expected);
    }
    let error = sign(PAYLOAD, &[], false).unwrap_err();
    assert_eq!(
        error.to_string(),
        "a signed message needs at least one signer"
    );
    let mismatched = Signer {
        key: &p256().key,
        chain: &rsa().chain,
        ..signer(p256(), Sha256, None)
    };
    let error = sign(PAYLOAD, &[mismatched], false).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("does not belong to the signing key"),
        "{error}"
    );
}

#[test]
fn pem_and_base64_are_read() {
    let message = sign(
        PAYLOAD,
        &[signer(p256(), DigestAlgorithm::Sha256, None)],
        false,
    )
    .unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&message);
    let wrapped: Vec<String> = encoded
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    let trusted = [p256().certificate.clone()];
    for label in ["CMS", "PKCS7"] {
        let pem = format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            wrapped.join("\n")
        );
        let verification = verify(pem.as_bytes(), None, &trusted, Require::All, NOW).unwrap();
        assert_eq!(verification.content, PAYLOAD);
    }
    let verification = verify(encoded.as_bytes(), None, &trusted, Require::All, NOW).unwrap();
    assert_eq!(verification.content, PAYLOAD);

    let error = verify(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        None,
        &trusted,
        Require::All,
        NOW,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("labelled \"CERTIFICATE\""),
        "{error}"
    );
    let error = verify(
        b"-----BEGIN CMS-----\nMIIB\n",
        None,
        &trusted,
        Require::All,
        NOW,
    )
    .unwrap_err();
    assert!(error.to_string().contains("truncated"), "{error}");
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let mut one = signer(ed25519(), DigestAlgorithm::Sha512, None);
    one.include = IncludeCertificates::None;
    let message = sign(b"short", &[one], false).unwrap();
    let trusted = [ed25519().certificate.clone()];
    verify(&message, None, &trusted, Require::All, NOW).unwrap();
    for length in 0..message.len() {
        let error = verify(&message[..length], None, &trusted, Require::All, NOW).unwrap_err();
        assert!(error.is_user_error(), "{length}: {error}");
        assert!(
            matches!(error, CmsError::Malformed(_)),
            "{length}: {error:?}"
        );
    }
}

#[test]
fn random_bytes_are_errors_not_panics() {
    // A fixed linear congruential generator: the same inputs on every run.
    let mut state: u64 = 0x5eed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u8
    };
    let template = sign(
        b"x",
        &[signer(p256(), DigestAlgorithm::Sha256, None)],
        false,
    )
    .unwrap();
    for round in 0..400 {
        let length = usize::from(next()) * 4;
        let mut bytes: Vec<u8> = (0..length).map(|_| next()).collect();
        if round % 2 == 0 && !bytes.is_empty() {
            bytes[0] = 0x30;
        }
        assert!(verify(&bytes, None, &[], Require::Any, NOW).is_err());
        // The real message with random bytes changed.
        let mut damaged = template.clone();
        for _ in 0..3 {
            let at = usize::from(next()) * template.len() / 256;
            damaged[at] = next();
        }
        let _ = verify(&damaged, Some(b"x"), &[], Require::Any, NOW);
    }
}

#[test]
fn certs_only_message_has_no_signers() {
    let p7b = keyward_crypto::p7b_der(&p256().chain);
    let error = verify(&p7b, None, &[], Require::Any, NOW).unwrap_err();
    assert_eq!(error, CmsError::DetachedContentMissing);
    let error = verify(&p7b, Some(b"x"), &[], Require::Any, NOW).unwrap_err();
    assert!(error.to_string().contains("has no signers"), "{error}");
}
