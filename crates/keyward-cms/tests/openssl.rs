//! Interoperability with OpenSSL 3 (`openssl cms`): OpenSSL verifies what keyward signs,
//! and keyward verifies what OpenSSL signs (DER, BER streaming, text mode, RSA-PSS, other
//! digests, two signers, key identifiers, CA-issued signers).
//!
//! The `openssl` program must be on the PATH; the tests fail, saying so, when it is not.
//! OpenSSL 3.0 has no Ed25519 for CMS, so Ed25519 messages are checked by the unit tests.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use keyward_cms::{
    CmsError, DigestAlgorithm, IncludeCertificates, Require, SignatureScheme, Signer, sign, verify,
};
use keyward_crypto::{Certificate, Chain, KeyAlgorithm, PrivateKey, generate, parse_certificates};
use keyward_domain::Timestamp;

const PAYLOAD: &[u8] = b"partner invoice 4711\r\nsecond line\n\x00\x01\xfe\xff binary";

fn now() -> Timestamp {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp::from_seconds(i64::try_from(seconds).unwrap())
}

/// Runs openssl in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("the openssl program is needed for these tests and could not be run: {e}")
        });
    assert!(
        output.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

struct Identity {
    key: PrivateKey,
    certificate: Certificate,
    chain: Chain,
}

impl Identity {
    fn new(dir: &Path, algorithm: KeyAlgorithm, name: &str) -> Self {
        let (key, certificate) =
            generate(algorithm, &format!("CN={name}, O=Example AG"), 30, now()).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), certificate.to_pem()).unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(key.pkcs8_der());
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        std::fs::write(
            dir.join(format!("{name}.key")),
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                lines.join("\n")
            ),
        )
        .unwrap();
        let chain = Chain::new(vec![certificate.clone()]).unwrap();
        Self {
            key,
            certificate,
            chain,
        }
    }

    fn signer(&self, digest: DigestAlgorithm, scheme: Option<SignatureScheme>) -> Signer<'_> {
        Signer {
            key: &self.key,
            chain: &self.chain,
            digest,
            scheme,
            include: IncludeCertificates::Signer,
            signing_time: Some(now()),
        }
    }
}

struct Identities {
    rsa: Identity,
    p256: Identity,
    p384: Identity,
}

fn identities(dir: &Path) -> Identities {
    Identities {
        rsa: Identity::new(dir, KeyAlgorithm::Rsa2048, "rsa"),
        p256: Identity::new(dir, KeyAlgorithm::EcP256, "p256"),
        p384: Identity::new(dir, KeyAlgorithm::EcP384, "p384"),
    }
}

/// Asks `openssl cms -verify` to verify `message`, trusting the certificates of `names`,
/// and returns the content it writes.
fn openssl_verifies(dir: &Path, message: &[u8], names: &[&str], detached: bool) -> Vec<u8> {
    std::fs::write(dir.join("sig.der"), message).unwrap();
    std::fs::write(dir.join("data.bin"), PAYLOAD).unwrap();
    let trusted: String = names
        .iter()
        .map(|name| std::fs::read_to_string(dir.join(format!("{name}.pem"))).unwrap())
        .collect();
    std::fs::write(dir.join("trusted.pem"), trusted).unwrap();
    let _ = std::fs::remove_file(dir.join("out.bin"));
    let mut args = vec![
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        "sig.der",
        "-CAfile",
        "trusted.pem",
        "-purpose",
        "any",
        "-out",
        "out.bin",
    ];
    if detached {
        args.extend(["-content", "data.bin"]);
    }
    openssl(dir, &args);
    std::fs::read(dir.join("out.bin")).unwrap()
}

#[test]
fn openssl_verifies_keyward_signatures() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let ids = identities(dir);
    use DigestAlgorithm::{Sha256, Sha384, Sha512};
    use SignatureScheme::{RsaPkcs1v15, RsaPss};
    let single = [
        (ids.rsa.signer(Sha256, None), "rsa"),
        (ids.rsa.signer(Sha384, Some(RsaPkcs1v15)), "rsa"),
        (ids.rsa.signer(Sha512, Some(RsaPkcs1v15)), "rsa"),
        (ids.rsa.signer(Sha256, Some(RsaPss)), "rsa"),
        (ids.rsa.signer(Sha384, Some(RsaPss)), "rsa"),
        (ids.rsa.signer(Sha512, Some(RsaPss)), "rsa"),
        (ids.p256.signer(Sha256, None), "p256"),
        (ids.p384.signer(Sha384, None), "p384"),
    ];
    // OpenSSL 3.0 can neither sign nor verify Ed25519 in CMS ("invalid digest" in its
    // EdDSA provider; added in OpenSSL 3.2), so Ed25519 is checked by keyward's own tests.
    for detached in [false, true] {
        for (signer, name) in &single {
            let message = sign(PAYLOAD, &[*signer], detached).unwrap();
            let content = openssl_verifies(dir, &message, &[name], detached);
            assert_eq!(
                content, PAYLOAD,
                "{name} {:?} {:?}",
                signer.digest, signer.scheme
            );
        }
        let pairs = [
            (
                [
                    ids.rsa.signer(Sha384, Some(RsaPss)),
                    ids.p256.signer(Sha256, None),
                ],
                ["rsa", "p256"],
            ),
            (
                [ids.rsa.signer(Sha512, None), ids.p384.signer(Sha384, None)],
                ["rsa", "p384"],
            ),
        ];
        for (signers, names) in pairs {
            let message = sign(PAYLOAD, &signers, detached).unwrap();
            let content = openssl_verifies(dir, &message, &names, detached);
            assert_eq!(content, PAYLOAD);
        }
    }
    // OpenSSL refuses a tampered payload too: the test above could fail.
    let message = sign(PAYLOAD, &[ids.p256.signer(Sha256, None)], true).unwrap();
    std::fs::write(dir.join("sig.der"), &message).unwrap();
    std::fs::write(dir.join("other.bin"), b"other").unwrap();
    let status = Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "sig.der",
            "-CAfile",
            "p256.pem",
            "-purpose",
            "any",
            "-content",
            "other.bin",
            "-out",
            "out.bin",
        ])
        .current_dir(dir)
        .output()
        .unwrap()
        .status;
    assert!(!status.success());
}

/// Signs `data.bin` with OpenSSL: `-signer`/`-inkey` for each name, then `extra` options.
fn openssl_signs(dir: &Path, names: &[&str], extra: &[&str]) -> Vec<u8> {
    std::fs::write(dir.join("data.bin"), PAYLOAD).unwrap();
    let mut args: Vec<String> = ["cms", "-sign", "-outform", "DER", "-in", "data.bin"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for name in names {
        args.extend([
            "-signer".to_owned(),
            format!("{name}.pem"),
            "-inkey".to_owned(),
            format!("{name}.key"),
        ]);
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args.extend(["-out".to_owned(), "openssl.der".to_owned()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    openssl(dir, &refs);
    std::fs::read(dir.join("openssl.der")).unwrap()
}

#[test]
fn keyward_verifies_openssl_signatures() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let ids = identities(dir);
    let everyone = [
        ids.rsa.certificate.clone(),
        ids.p256.certificate.clone(),
        ids.p384.certificate.clone(),
    ];
    let cases: &[(&[&str], &[&str], &[&str])] = &[
        // names, options, expected signature algorithms
        (&["rsa"], &["-binary"], &["rsaEncryption"]),
        (&["rsa"], &["-binary", "-nodetach"], &["rsaEncryption"]),
        (
            &["p256"],
            &["-binary", "-md", "sha384"],
            &["ecdsa-with-SHA384"],
        ),
        // OpenSSL's default digest is SHA-256 for every key, P-384 included.
        (&["p384"], &["-binary", "-nodetach"], &["ecdsa-with-SHA256"]),
        (
            &["p384"],
            &["-binary", "-md", "sha384"],
            &["ecdsa-with-SHA384"],
        ),
        (&["rsa"], &["-binary", "-md", "sha512"], &["rsaEncryption"]),
        (
            &["rsa"],
            &["-binary", "-nodetach", "-keyopt", "rsa_padding_mode:pss"],
            &["rsassaPss"],
        ),
        (
            &["rsa"],
            &[
                "-binary",
                "-md",
                "sha384",
                "-keyopt",
                "rsa_padding_mode:pss",
            ],
            &["rsassaPss"],
        ),
        (
            &["rsa", "p256"],
            &["-binary", "-nodetach"],
            &["rsaEncryption", "ecdsa-with-SHA256"],
        ),
        (
            &["rsa", "p384"],
            &["-binary"],
            &["rsaEncryption", "ecdsa-with-SHA256"],
        ),
        (
            &["p256"],
            &["-binary", "-nodetach", "-keyid"],
            &["ecdsa-with-SHA256"],
        ),
        (
            &["p384"],
            &["-binary", "-nodetach", "-stream"],
            &["ecdsa-with-SHA256"],
        ),
    ];
    for (names, options, algorithms) in cases {
        let message = openssl_signs(dir, names, options);
        let detached = !options.contains(&"-nodetach");
        let content = detached.then_some(PAYLOAD);
        let verification = verify(&message, content, &everyone, Require::All, now())
            .unwrap_or_else(|e| panic!("{names:?} {options:?}: {e}"));
        assert_eq!(verification.content, PAYLOAD, "{names:?} {options:?}");
        let mut found: Vec<&str> = verification
            .signers
            .iter()
            .map(|s| s.signature_algorithm.as_str())
            .collect();
        found.sort_unstable();
        let mut expected = algorithms.to_vec();
        expected.sort_unstable();
        assert_eq!(found, expected, "{names:?} {options:?}");
        assert!(
            verification
                .signers
                .iter()
                .all(|s| s.signing_time.is_some())
        );
        let digest = options
            .iter()
            .position(|o| *o == "-md")
            .map_or("sha256", |at| options[at + 1]);
        assert!(
            verification.signers.iter().all(|s| s.digest == digest),
            "{names:?} {options:?}"
        );

        // Without the signer trusted, keyward says so.
        let error = verify(&message, content, &[], Require::Any, now()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("signer certificate is not trusted"),
            "{error}"
        );
        // A changed payload is caught.
        if detached {
            let error =
                verify(&message, Some(b"changed"), &everyone, Require::Any, now()).unwrap_err();
            assert!(error.to_string().contains("tampered payload"), "{error}");
        }
    }
}

#[test]
fn keyward_reads_openssl_text_mode_and_streamed_ber() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let p256 = Identity::new(dir, KeyAlgorithm::EcP256, "p256");
    let trusted = [p256.certificate.clone()];
    // Without -binary OpenSSL signs the text with CRLF line endings (S/MIME canonical form).
    std::fs::write(dir.join("text.txt"), b"line one\nline two\n").unwrap();
    let canonical = b"line one\r\nline two\r\n";
    for extra in [&[][..], &["-stream"][..]] {
        let mut args = vec![
            "cms",
            "-sign",
            "-outform",
            "DER",
            "-in",
            "text.txt",
            "-signer",
            "p256.pem",
            "-inkey",
            "p256.key",
            "-nodetach",
            "-out",
            "text.der",
        ];
        args.extend(extra);
        openssl(dir, &args);
        let message = std::fs::read(dir.join("text.der")).unwrap();
        let verification = verify(&message, None, &trusted, Require::All, now()).unwrap();
        assert_eq!(verification.content, canonical);
        if extra.contains(&"-stream") {
            // Indefinite lengths: BER, not DER.
            assert_eq!(&message[..2], &[0x30, 0x80]);
            for length in 0..message.len() {
                let result = verify(&message[..length], None, &trusted, Require::All, now());
                assert!(result.is_err(), "a message cut at {length} bytes verified");
            }
        }
    }
    // Detached text mode: the detached content is the canonical text.
    openssl(
        dir,
        &[
            "cms", "-sign", "-outform", "DER", "-in", "text.txt", "-signer", "p256.pem", "-inkey",
            "p256.key", "-out", "text.der",
        ],
    );
    let message = std::fs::read(dir.join("text.der")).unwrap();
    verify(&message, Some(canonical), &trusted, Require::All, now()).unwrap();
    // PEM output of OpenSSL.
    openssl(
        dir,
        &[
            "cms",
            "-sign",
            "-binary",
            "-outform",
            "PEM",
            "-in",
            "text.txt",
            "-signer",
            "p256.pem",
            "-inkey",
            "p256.key",
            "-nodetach",
            "-out",
            "text.pem",
        ],
    );
    let message = std::fs::read(dir.join("text.pem")).unwrap();
    let verification = verify(&message, None, &trusted, Require::All, now()).unwrap();
    assert_eq!(verification.content, b"line one\nline two\n");
}

#[test]
fn signer_issued_by_a_trusted_ca_is_trusted() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=Partner CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=partner signer",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "30",
            "-out", "leaf.pem",
        ],
    );
    std::fs::write(dir.join("data.bin"), PAYLOAD).unwrap();
    openssl(
        dir,
        &[
            "cms",
            "-sign",
            "-binary",
            "-nodetach",
            "-outform",
            "DER",
            "-in",
            "data.bin",
            "-signer",
            "leaf.pem",
            "-inkey",
            "leaf.key",
            "-out",
            "signed.der",
        ],
    );
    let message = std::fs::read(dir.join("signed.der")).unwrap();
    let ca = parse_certificates(&std::fs::read(dir.join("ca.pem")).unwrap())
        .unwrap()
        .leaf()
        .clone();
    let verification = verify(&message, None, &[ca], Require::All, now()).unwrap();
    assert_eq!(verification.signers[0].subject, "CN=partner signer");
    assert_eq!(verification.signers[0].issuer, "CN=Partner CA");

    // Another CA with the same name did not issue it: its signature check fails.
    let other = tempfile::tempdir().unwrap();
    openssl(
        other.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=Partner CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    let impostor = parse_certificates(&std::fs::read(other.path().join("ca.pem")).unwrap())
        .unwrap()
        .leaf()
        .clone();
    let error = verify(&message, None, &[impostor], Require::All, now()).unwrap_err();
    match error {
        CmsError::Verification { verification, .. } => assert_eq!(
            verification.signers[0].problem.as_deref(),
            Some("signer certificate is not trusted")
        ),
        other => panic!("expected a verification failure, got {other:?}"),
    }
}
