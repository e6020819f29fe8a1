//! Interoperability of encrypted messages with OpenSSL 3 (`openssl cms`): OpenSSL decrypts
//! the `EnvelopedData` and `AuthEnvelopedData` keyward writes, and keyward decrypts what
//! OpenSSL encrypts (RSA PKCS#1 v1.5 and OAEP, AES-CBC and AES-GCM, two recipients, key
//! identifiers, BER streaming, PEM).
//!
//! The `openssl` program must be on the PATH; the tests fail, saying so, when it is not.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use keyward_cms::{
    CmsError, ContentEncryption, KeyTransport, OaepHash, RecipientId, decrypt, encrypt, recipients,
};
use keyward_crypto::{Certificate, KeyAlgorithm, PrivateKey, generate};
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
    name: &'static str,
    key: PrivateKey,
    certificate: Certificate,
}

impl Identity {
    /// A new RSA 2048 key and certificate, written as `{name}.pem` and `{name}.key`.
    fn new(dir: &Path, name: &'static str) -> Self {
        let (key, certificate) = generate(
            KeyAlgorithm::Rsa2048,
            &format!("CN={name}, O=Example AG"),
            30,
            now(),
        )
        .unwrap();
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
        Self {
            name,
            key,
            certificate,
        }
    }

    fn decrypts(&self, message: &[u8]) -> Result<Vec<u8>, CmsError> {
        decrypt(message, &self.key, &self.certificate)
    }
}

/// Asks `openssl cms -decrypt` to open `message` (DER) as `recipient`.
fn openssl_decrypts(dir: &Path, message: &[u8], recipient: &Identity) -> Vec<u8> {
    std::fs::write(dir.join("m.der"), message).unwrap();
    let _ = std::fs::remove_file(dir.join("out.bin"));
    let certificate = format!("{}.pem", recipient.name);
    let key = format!("{}.key", recipient.name);
    openssl(
        dir,
        &[
            "cms",
            "-decrypt",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "m.der",
            "-recip",
            &certificate,
            "-inkey",
            &key,
            "-out",
            "out.bin",
        ],
    );
    std::fs::read(dir.join("out.bin")).unwrap()
}

/// Asks `openssl cms -encrypt` to encrypt [`PAYLOAD`] with `options` (cipher, recipients,
/// key options) and returns what it writes.
fn openssl_encrypts(dir: &Path, options: &[&str]) -> Vec<u8> {
    std::fs::write(dir.join("data.bin"), PAYLOAD).unwrap();
    let _ = std::fs::remove_file(dir.join("m.out"));
    let mut args = vec![
        "cms", "-encrypt", "-binary", "-in", "data.bin", "-out", "m.out",
    ];
    if !options.contains(&"PEM") {
        args.extend(["-outform", "DER"]);
    }
    args.extend_from_slice(options);
    openssl(dir, &args);
    std::fs::read(dir.join("m.out")).unwrap()
}

/// What `openssl cms -cmsout -print` says about a message.
fn openssl_prints(dir: &Path, message: &[u8]) -> String {
    std::fs::write(dir.join("m.der"), message).unwrap();
    String::from_utf8(openssl(
        dir,
        &["cms", "-cmsout", "-print", "-inform", "DER", "-in", "m.der"],
    ))
    .unwrap()
}

#[test]
fn openssl_decrypts_what_keyward_encrypts() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Identity::new(dir.path(), "alice");
    let bob = Identity::new(dir.path(), "bob");
    let cases = [
        (KeyTransport::RsaPkcs1v15, ContentEncryption::Aes128Cbc),
        (KeyTransport::RsaPkcs1v15, ContentEncryption::Aes256Cbc),
        (
            KeyTransport::RsaOaep(OaepHash::Sha256),
            ContentEncryption::Aes128Cbc,
        ),
        (
            KeyTransport::RsaOaep(OaepHash::Sha256),
            ContentEncryption::Aes256Cbc,
        ),
        (
            KeyTransport::RsaOaep(OaepHash::Sha1),
            ContentEncryption::Aes256Cbc,
        ),
        (
            KeyTransport::RsaOaep(OaepHash::Sha384),
            ContentEncryption::Aes128Cbc,
        ),
        (
            KeyTransport::RsaOaep(OaepHash::Sha512),
            ContentEncryption::Aes256Cbc,
        ),
        (
            KeyTransport::RsaOaep(OaepHash::Sha256),
            ContentEncryption::Aes256Gcm,
        ),
        (
            KeyTransport::RsaOaep(OaepHash::Sha256),
            ContentEncryption::Aes128Gcm,
        ),
        (KeyTransport::RsaPkcs1v15, ContentEncryption::Aes256Gcm),
    ];
    for (transport, content) in cases {
        let message = encrypt(
            PAYLOAD,
            &[&alice.certificate, &bob.certificate],
            transport,
            content,
        )
        .unwrap();
        for recipient in [&alice, &bob] {
            assert_eq!(
                openssl_decrypts(dir.path(), &message, recipient),
                PAYLOAD,
                "{transport} {content} for {}",
                recipient.name
            );
        }
    }
}

#[test]
fn openssl_reads_the_algorithm_parameters_keyward_writes() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Identity::new(dir.path(), "alice");
    let message = encrypt(
        PAYLOAD,
        &[&alice.certificate],
        KeyTransport::RsaOaep(OaepHash::Sha384),
        ContentEncryption::Aes256Gcm,
    )
    .unwrap();
    let printed = openssl_prints(dir.path(), &message);
    assert_eq!(
        printed.matches("OBJECT            :sha384").count(),
        2,
        "{printed}"
    );
    for expected in [
        "contentType: id-smime-ct-authEnvelopedData",
        "algorithm: rsaesOaep",
        "OBJECT            :sha384",
        "OBJECT            :mgf1",
        "algorithm: aes-256-gcm",
        // GCMParameters: a 12-byte nonce and the tag length, 16 (hex 10).
        "prim:  OCTET STRING      [HEX DUMP]:",
        "prim:  INTEGER           :10",
    ] {
        assert!(
            printed.contains(expected),
            "{expected} missing in:\n{printed}"
        );
    }
}

#[test]
fn keyward_decrypts_what_openssl_encrypts() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Identity::new(dir.path(), "alice");
    let cases: [&[&str]; 8] = [
        &["-aes256", "-recip", "alice.pem"],
        &["-aes128", "-recip", "alice.pem"],
        &[
            "-aes256",
            "-recip",
            "alice.pem",
            "-keyopt",
            "rsa_padding_mode:oaep",
        ],
        &[
            "-aes256",
            "-recip",
            "alice.pem",
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha256",
        ],
        &[
            "-aes128",
            "-recip",
            "alice.pem",
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha512",
        ],
        &["-aes-256-gcm", "-recip", "alice.pem"],
        &[
            "-aes-128-gcm",
            "-recip",
            "alice.pem",
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha256",
        ],
        // Streaming: BER with indefinite lengths and the ciphertext in chunks.
        &["-aes256", "-stream", "-recip", "alice.pem"],
    ];
    for options in cases {
        let message = openssl_encrypts(dir.path(), options);
        assert_eq!(
            alice.decrypts(&message).unwrap(),
            PAYLOAD,
            "openssl cms -encrypt {}",
            options.join(" ")
        );
        let listed = recipients(&message).unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].matches(&alice.certificate), "{}", listed[0]);
    }
}

#[test]
fn keyward_decrypts_openssl_messages_for_two_recipients() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Identity::new(dir.path(), "alice");
    let bob = Identity::new(dir.path(), "bob");
    let carol = Identity::new(dir.path(), "carol");
    for cipher in ["-aes256", "-aes-256-gcm"] {
        let message = openssl_encrypts(
            dir.path(),
            &[
                cipher,
                "-recip",
                "alice.pem",
                "-recip",
                "bob.pem",
                "-keyopt",
                "rsa_padding_mode:oaep",
            ],
        );
        assert_eq!(alice.decrypts(&message).unwrap(), PAYLOAD, "{cipher}");
        assert_eq!(bob.decrypts(&message).unwrap(), PAYLOAD, "{cipher}");
        let err = carol.decrypts(&message).unwrap_err();
        assert!(matches!(err, CmsError::NotRecipient(_)), "{err}");
        let listed = recipients(&message).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|id| id.matches(&alice.certificate)));
        assert!(listed.iter().any(|id| id.matches(&bob.certificate)));
    }
}

#[test]
fn keyward_decrypts_openssl_messages_naming_key_identifiers_and_in_pem() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Identity::new(dir.path(), "alice");
    let message = openssl_encrypts(dir.path(), &["-aes256", "-keyid", "-recip", "alice.pem"]);
    let listed = recipients(&message).unwrap();
    assert!(
        matches!(listed.as_slice(), [RecipientId::SubjectKeyId(_)]),
        "{listed:?}"
    );
    assert!(listed[0].matches(&alice.certificate));
    assert_eq!(alice.decrypts(&message).unwrap(), PAYLOAD);

    let pem = openssl_encrypts(
        dir.path(),
        &["-aes-128-gcm", "-outform", "PEM", "-recip", "alice.pem"],
    );
    assert!(pem.starts_with(b"-----BEGIN CMS-----"));
    assert_eq!(alice.decrypts(&pem).unwrap(), PAYLOAD);
}

#[test]
fn openssl_messages_keyward_cannot_open_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let alice = Identity::new(dir.path(), "alice");
    let message = openssl_encrypts(dir.path(), &["-des3", "-recip", "alice.pem"]);
    let err = alice.decrypts(&message).unwrap_err();
    assert!(matches!(err, CmsError::Unsupported(_)), "{err}");
    assert!(
        err.to_string().contains("des-ede3-cbc is not supported"),
        "{err}"
    );
}
