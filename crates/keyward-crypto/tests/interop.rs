//! Interoperability with the real `openssl` (3.x) and `keytool` (JDK 17) on this machine:
//! what keyward writes, they read; what they write, keyward reads. Everything is made at
//! run time in temporary directories.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use keyward_crypto::{
    Chain, CryptoError, Imported, KeyAlgorithm, KeyKind, PrivateKey, certificate_request, generate,
    import, key_mismatch, p7b_der, p7b_pem, parse_certificates, pkcs12,
};
use keyward_domain::Timestamp;

fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis();
    Timestamp::from_millis(i64::try_from(millis).expect("millis fit"))
}

/// Runs a tool in `dir` and returns stdout + stderr; panics with both when it fails or is
/// missing.
fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).current_dir(dir).output().unwrap_or_else(|e| {
        panic!("`{program}` could not be started ({e}); this test needs {program} installed and on PATH")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "`{program} {}` failed:\n{text}",
        args.join(" ")
    );
    text
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    run(dir, "openssl", args)
}

fn keytool(dir: &Path, args: &[&str]) -> String {
    run(dir, "keytool", args)
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), bytes).expect("write temp file");
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).expect("read temp file")
}

/// `openssl pkey -pubout -outform DER` of a PEM private key file.
fn openssl_public_key_der(dir: &Path, key_file: &str) -> Vec<u8> {
    openssl(
        dir,
        &[
            "pkey", "-in", key_file, "-pubout", "-outform", "DER", "-out", "pub.der",
        ],
    );
    read(dir, "pub.der")
}

#[test]
fn generated_material_is_read_by_openssl_and_keytool() {
    for algorithm in KeyAlgorithm::ALL {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let cn = format!("interop {}", algorithm.as_str());
        let (key, cert) = generate(
            algorithm,
            &format!("CN={cn}, O=Example AG, OU=Integration, C=DE"),
            30,
            now(),
        )
        .unwrap();
        assert_eq!(key.algorithm(), KeyKind::from(algorithm));

        write(d, "cert.pem", cert.to_pem());
        let text = openssl(d, &["x509", "-in", "cert.pem", "-noout", "-text"]);
        assert!(
            text.contains(&format!(
                "Subject: C = DE, OU = Integration, O = Example AG, CN = {cn}"
            )),
            "{text}"
        );
        assert!(
            text.contains("TLS Web Client Authentication, E-mail Protection"),
            "{text}"
        );
        assert!(text.contains("CA:FALSE"), "{text}");
        assert!(
            text.to_lowercase()
                .contains(&cert.details().signature_algorithm.to_lowercase()),
            "{text}"
        );

        write(d, "cert.der", cert.der());
        let subject = openssl(
            d,
            &[
                "x509", "-inform", "DER", "-in", "cert.der", "-noout", "-subject",
            ],
        );
        assert!(subject.contains(&format!("CN = {cn}")), "{subject}");

        let chain = Chain::new(vec![cert.clone()]).unwrap();
        write(d, "chain.p7b", p7b_der(&chain));
        let listed = openssl(
            d,
            &[
                "pkcs7",
                "-inform",
                "DER",
                "-in",
                "chain.p7b",
                "-print_certs",
                "-noout",
            ],
        );
        assert!(
            listed.contains(&format!(
                "subject=C = DE, OU = Integration, O = Example AG, CN = {cn}"
            )),
            "{listed}"
        );
        write(d, "chain.p7b.pem", p7b_pem(&chain));
        let listed = openssl(
            d,
            &["pkcs7", "-in", "chain.p7b.pem", "-print_certs", "-noout"],
        );
        assert!(listed.contains(&format!("CN = {cn}")), "{listed}");

        write(
            d,
            "store.p12",
            pkcs12(&key, &chain, "my-alias", "s3cret pass").unwrap(),
        );
        let info = openssl(
            d,
            &[
                "pkcs12",
                "-info",
                "-nokeys",
                "-in",
                "store.p12",
                "-passin",
                "pass:s3cret pass",
            ],
        );
        assert!(
            info.contains(&format!(
                "subject=C = DE, OU = Integration, O = Example AG, CN = {cn}"
            )),
            "{info}"
        );
        openssl(
            d,
            &[
                "pkcs12",
                "-in",
                "store.p12",
                "-passin",
                "pass:s3cret pass",
                "-nocerts",
                "-noenc",
                "-out",
                "key.pem",
            ],
        );
        // The alias is the key's friendly name (what keytool shows as the alias).
        let key_text = String::from_utf8_lossy(&read(d, "key.pem")).into_owned();
        assert!(key_text.contains("friendlyName: my-alias"), "{key_text}");
        assert_eq!(
            openssl_public_key_der(d, "key.pem"),
            key.public_key_der(),
            "{algorithm:?}"
        );
        let wrong = Command::new("openssl")
            .args([
                "pkcs12",
                "-info",
                "-nokeys",
                "-in",
                "store.p12",
                "-passin",
                "pass:wrong",
            ])
            .current_dir(d)
            .output()
            .expect("openssl runs");
        assert!(
            !wrong.status.success(),
            "openssl accepted a wrong PKCS#12 password"
        );

        let listing = keytool(
            d,
            &[
                "-list",
                "-keystore",
                "store.p12",
                "-storetype",
                "PKCS12",
                "-storepass",
                "s3cret pass",
            ],
        );
        assert!(
            listing.contains("Your keystore contains 1 entry"),
            "{listing}"
        );
        assert!(
            listing.contains("my-alias") && listing.contains("PrivateKeyEntry"),
            "{listing}"
        );
    }
}

#[test]
fn csr_is_verified_and_signed_by_an_openssl_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-noenc",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/C=DE/O=Example AG/CN=Test CA",
        ],
    );
    let ca_pem = read(d, "ca.pem");
    for algorithm in [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::Ed25519,
    ] {
        let (key, cert) = generate(
            algorithm,
            "CN=renewal client, O=Example AG, C=DE",
            30,
            now(),
        )
        .unwrap();
        let csr = certificate_request(&key, &cert).unwrap();
        assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
        write(d, "csr.pem", &csr);
        let verified = openssl(d, &["req", "-in", "csr.pem", "-verify", "-noout"]);
        assert!(verified.contains("verify OK"), "{verified}");
        let subject = openssl(d, &["req", "-in", "csr.pem", "-noout", "-subject"]);
        assert!(
            subject.contains("subject=C = DE, O = Example AG, CN = renewal client"),
            "{subject}"
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-in",
                "csr.pem",
                "-out",
                "signed.pem",
            ],
        );
        let signed = read(d, "signed.pem");

        for bundle in [
            [signed.clone(), ca_pem.clone()].concat(),
            [ca_pem.clone(), signed.clone()].concat(),
        ] {
            let chain = parse_certificates(&bundle).unwrap();
            assert_eq!(chain.certificates().len(), 2);
            assert_eq!(
                chain.leaf().subject(),
                "CN=renewal client, O=Example AG, C=DE"
            );
            assert_eq!(chain.root().subject(), "CN=Test CA, O=Example AG, C=DE");
            assert!(chain.is_complete());
            assert_eq!(key_mismatch(&key, chain.leaf()), None, "{algorithm:?}");
            assert_eq!(key_mismatch(&key, &cert), None);
        }

        openssl(
            d,
            &[
                "crl2pkcs7",
                "-nocrl",
                "-certfile",
                "ca.pem",
                "-certfile",
                "signed.pem",
                "-outform",
                "DER",
                "-out",
                "chain.p7b",
            ],
        );
        openssl(
            d,
            &[
                "crl2pkcs7",
                "-nocrl",
                "-certfile",
                "ca.pem",
                "-certfile",
                "signed.pem",
                "-out",
                "chain.p7b.pem",
            ],
        );
        for file in ["chain.p7b", "chain.p7b.pem"] {
            let chain = parse_certificates(&read(d, file)).unwrap();
            assert_eq!(
                chain.leaf().subject(),
                "CN=renewal client, O=Example AG, C=DE",
                "{file}"
            );
            assert_eq!(
                chain.root().subject(),
                "CN=Test CA, O=Example AG, C=DE",
                "{file}"
            );
            assert_eq!(key_mismatch(&key, chain.leaf()), None);
        }
    }
}

struct OpensslKey {
    name: &'static str,
    commands: Vec<Vec<&'static str>>,
    kind: KeyKind,
    key_password: Option<&'static str>,
}

fn openssl_keys() -> Vec<OpensslKey> {
    vec![
        OpensslKey {
            name: "rsa-pkcs8",
            commands: vec![vec![
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "key.pem",
            ]],
            kind: KeyKind::Rsa { bits: 2048 },
            key_password: None,
        },
        OpensslKey {
            name: "rsa-pkcs1-genrsa",
            commands: vec![vec!["genrsa", "-traditional", "-out", "key.pem", "3072"]],
            kind: KeyKind::Rsa { bits: 3072 },
            key_password: None,
        },
        OpensslKey {
            name: "rsa-pkcs1-converted",
            commands: vec![
                vec![
                    "genpkey",
                    "-algorithm",
                    "RSA",
                    "-pkeyopt",
                    "rsa_keygen_bits:2048",
                    "-out",
                    "pkcs8.pem",
                ],
                vec!["rsa", "-in", "pkcs8.pem", "-traditional", "-out", "key.pem"],
            ],
            kind: KeyKind::Rsa { bits: 2048 },
            key_password: None,
        },
        OpensslKey {
            name: "ec-p256-sec1",
            commands: vec![vec![
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-out",
                "key.pem",
            ]],
            kind: KeyKind::EcP256,
            key_password: None,
        },
        OpensslKey {
            name: "ec-p384-sec1",
            commands: vec![vec![
                "ecparam",
                "-name",
                "secp384r1",
                "-genkey",
                "-out",
                "key.pem",
            ]],
            kind: KeyKind::EcP384,
            key_password: None,
        },
        OpensslKey {
            name: "ed25519",
            commands: vec![vec!["genpkey", "-algorithm", "ed25519", "-out", "key.pem"]],
            kind: KeyKind::Ed25519,
            key_password: None,
        },
        OpensslKey {
            name: "ec-p256-encrypted-pkcs8",
            commands: vec![vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-aes256",
                "-pass",
                "pass:keypw",
                "-out",
                "key.pem",
            ]],
            kind: KeyKind::EcP256,
            key_password: Some("keypw"),
        },
    ]
}

fn first_line_value(text: &str, prefix: &str) -> String {
    // OpenSSL's case varies between versions ("SHA1 Fingerprint=" / "sha1 Fingerprint=").
    text.lines()
        .map(str::trim)
        .find_map(|l| {
            let head = l.get(..prefix.len())?;
            head.eq_ignore_ascii_case(prefix)
                .then(|| &l[prefix.len()..])
        })
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {text}"))
        .trim()
        .to_owned()
}

#[test]
fn openssl_keys_certificates_and_pkcs12_are_imported() {
    for case in openssl_keys() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        for command in &case.commands {
            openssl(d, command);
        }
        let subject = format!("/O=Example AG/CN=openssl {}", case.name);
        let mut req = vec![
            "req", "-new", "-x509", "-key", "key.pem", "-subj", &subject, "-days", "10", "-out",
            "cert.pem",
        ];
        if case.key_password.is_some() {
            req.extend(["-passin", "pass:keypw"]);
        }
        openssl(d, &req);

        let key_pem = read(d, "key.pem");
        let cert_pem = read(d, "cert.pem");
        let bundle = [key_pem.clone(), cert_pem.clone()].concat();
        let Imported::KeyPair { key, chain } = import(&bundle, case.key_password).unwrap() else {
            panic!("{}: expected a key pair", case.name)
        };
        assert_eq!(key.algorithm(), case.kind, "{}", case.name);
        assert_eq!(key_mismatch(&key, chain.leaf()), None, "{}", case.name);
        assert_eq!(
            chain.leaf().subject(),
            format!("CN=openssl {}, O=Example AG", case.name)
        );
        assert!(chain.leaf().is_self_signed());

        if let Some(password) = case.key_password {
            assert_eq!(
                import(&bundle, Some("not the password")).unwrap_err(),
                CryptoError::WrongKeyPassword
            );
            let err = import(&bundle, None).unwrap_err();
            assert!(
                err.to_string()
                    .contains("is encrypted; a password is needed"),
                "{err}"
            );
            // Decrypt with openssl for the comparisons below.
            openssl(
                d,
                &[
                    "pkey",
                    "-in",
                    "key.pem",
                    "-passin",
                    &format!("pass:{password}"),
                    "-out",
                    "plain.pem",
                ],
            );
            openssl(
                d,
                &[
                    "pkey",
                    "-in",
                    "plain.pem",
                    "-pubout",
                    "-outform",
                    "DER",
                    "-out",
                    "pub.der",
                ],
            );
        } else {
            openssl(
                d,
                &[
                    "pkey", "-in", "key.pem", "-pubout", "-outform", "DER", "-out", "pub.der",
                ],
            );
        }
        assert_eq!(read(d, "pub.der"), key.public_key_der(), "{}", case.name);

        // Details as OpenSSL reports them.
        let details = chain.leaf().details();
        let sha1 = openssl(
            d,
            &["x509", "-in", "cert.pem", "-noout", "-fingerprint", "-sha1"],
        );
        assert_eq!(
            first_line_value(&sha1, "SHA1 Fingerprint="),
            details.sha1_fingerprint
        );
        let sha256 = openssl(
            d,
            &[
                "x509",
                "-in",
                "cert.pem",
                "-noout",
                "-fingerprint",
                "-sha256",
            ],
        );
        assert_eq!(
            first_line_value(&sha256, "SHA256 Fingerprint="),
            details.sha256_fingerprint
        );
        let serial = openssl(d, &["x509", "-in", "cert.pem", "-noout", "-serial"]);
        assert_eq!(
            first_line_value(&serial, "serial=").to_lowercase(),
            details.serial_hex
        );
        let text = openssl(d, &["x509", "-in", "cert.pem", "-noout", "-text"]);
        let expected_sig =
            format!("Signature Algorithm: {}", details.signature_algorithm).to_lowercase();
        assert!(
            text.to_lowercase().contains(&expected_sig),
            "{expected_sig} not in {text}"
        );
        let end = openssl(d, &["x509", "-in", "cert.pem", "-noout", "-enddate"]);
        let end = time::PrimitiveDateTime::parse(
            first_line_value(&end, "notAfter=").trim_end_matches(" GMT"),
            time::macros::format_description!(
                "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
            ),
        )
        .unwrap()
        .assume_utc();
        assert_eq!(details.not_after, Timestamp::from(end));
        assert_eq!(
            details.key_size_bits,
            match case.kind {
                KeyKind::Rsa { bits } => bits,
                KeyKind::EcP384 => 384,
                _ => 256,
            }
        );

        // DER certificate alone.
        openssl(
            d,
            &[
                "x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der",
            ],
        );
        let Imported::Certificates(only) = import(&read(d, "cert.der"), None).unwrap() else {
            panic!("{}: expected certificates", case.name)
        };
        assert_eq!(only.leaf(), chain.leaf());

        // PKCS#12, modern and legacy.
        let key_file = if case.key_password.is_some() {
            "plain.pem"
        } else {
            "key.pem"
        };
        for (file, legacy) in [("modern.p12", false), ("legacy.p12", true)] {
            let mut args = vec![
                "pkcs12", "-export", "-inkey", key_file, "-in", "cert.pem", "-name", "imported",
                "-passout", "pass:pw", "-out", file,
            ];
            if legacy {
                args.push("-legacy");
            }
            openssl(d, &args);
            let p12 = read(d, file);
            let Imported::KeyPair {
                key: p12_key,
                chain: p12_chain,
            } = import(&p12, Some("pw")).unwrap()
            else {
                panic!("{}: expected a key pair from {file}", case.name)
            };
            assert_eq!(p12_key.pkcs8_der(), key.pkcs8_der(), "{} {file}", case.name);
            assert_eq!(p12_chain.leaf(), chain.leaf());
            assert_eq!(
                import(&p12, Some("wrong")).unwrap_err(),
                CryptoError::WrongPassword,
                "{file}"
            );
            assert!(matches!(
                import(&p12, None).unwrap_err(),
                CryptoError::PasswordRequired(_)
            ));
        }
    }
}

#[test]
fn pkcs12_with_chain_round_trips_through_keytool() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-noenc",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=Chain CA",
        ],
    );
    let (key, cert) = generate(KeyAlgorithm::EcP384, "CN=chained", 30, now()).unwrap();
    write(d, "csr.pem", certificate_request(&key, &cert).unwrap());
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-in",
            "csr.pem",
            "-out",
            "signed.pem",
        ],
    );
    let chain = parse_certificates(&[read(d, "ca.pem"), read(d, "signed.pem")].concat()).unwrap();
    write(
        d,
        "chain.p12",
        pkcs12(&key, &chain, "chained", "pw123456").unwrap(),
    );
    let listing = keytool(
        d,
        &[
            "-list",
            "-v",
            "-keystore",
            "chain.p12",
            "-storetype",
            "PKCS12",
            "-storepass",
            "pw123456",
        ],
    );
    assert!(listing.contains("Certificate chain length: 2"), "{listing}");
    // keytool converts it to JKS and back to PKCS#12; keyward reads the result.
    keytool(
        d,
        &[
            "-importkeystore",
            "-srckeystore",
            "chain.p12",
            "-srcstoretype",
            "PKCS12",
            "-srcstorepass",
            "pw123456",
            "-destkeystore",
            "copy.p12",
            "-deststoretype",
            "PKCS12",
            "-deststorepass",
            "other-pw",
        ],
    );
    let Imported::KeyPair {
        key: copied,
        chain: copied_chain,
    } = import(&read(d, "copy.p12"), Some("other-pw")).unwrap()
    else {
        panic!("expected a key pair")
    };
    assert_eq!(copied.pkcs8_der(), key.pkcs8_der());
    assert_eq!(copied_chain.certificates(), chain.certificates());
    let _: &PrivateKey = &copied;
}
