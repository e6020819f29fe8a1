//! Message security through the command line, checked against OpenSSL in both directions:
//! `openssl cms -verify` accepts what `keyward sign` makes (one and two signers, encapsulated
//! and detached), and `keyward verify` accepts what `openssl cms -sign` makes.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{Server, admin_token, keyward};

fn ok(output: Output, what: &str) -> String {
    assert!(output.status.success(), "{what} failed:\n{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is needed for this test")
}

#[test]
fn keyward_signatures_verify_in_openssl_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(&d.join("data"));
    let token = admin_token(&d.join("data"));
    let kw = |args: &[&str]| keyward(&server, &token, d, args);
    std::fs::write(d.join("payload.xml"), b"<order id=\"4711\">forty-two widgets</order>\n").unwrap();

    let aliases = [("signer-rsa", "rsa-2048"), ("signer-ec", "ec-p256"), ("signer-p384", "ec-p384"), ("signer-ed", "ed25519")];
    let mut bundle = String::new();
    for (alias, algorithm) in aliases {
        ok(kw(&["keys", "create", alias, "--algorithm", algorithm, "--subject", &format!("CN={alias}, O=Example AG")]), "create");
        ok(kw(&["keys", "export", alias, "--format", "pem", "--out", &format!("{alias}.pem")]), "export");
        bundle.push_str(&std::fs::read_to_string(d.join(format!("{alias}.pem"))).unwrap());
    }
    std::fs::write(d.join("trusted.pem"), bundle).unwrap();

    // (signers, extra sign options) — every algorithm, one and two signers, detached or not.
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["signer-rsa"], vec![]),
        (vec!["signer-rsa"], vec!["--algorithm", "sha384-pss"]),
        (vec!["signer-rsa"], vec!["--algorithm", "sha512"]),
        (vec!["signer-ec"], vec![]),
        (vec!["signer-p384"], vec![]),
        (vec!["signer-rsa", "signer-ec"], vec![]),
        (vec!["signer-ec", "signer-p384"], vec!["--detached"]),
        (vec!["signer-rsa", "signer-p384"], vec!["--detached", "--no-signing-time", "--certs", "chain"]),
    ];
    for (signers, options) in &cases {
        let mut args = vec!["sign", "--in", "payload.xml", "--out", "signed.p7m"];
        for signer in signers {
            args.extend(["--alias", signer]);
        }
        args.extend(options.iter().copied());
        ok(kw(&args), "keyward sign");
        let mut verify = vec!["cms", "-verify", "-inform", "DER", "-in", "signed.p7m", "-CAfile", "trusted.pem", "-purpose", "any", "-binary", "-out", "verified.xml"];
        if options.contains(&"--detached") {
            verify.extend(["-content", "payload.xml"]);
        }
        let result = openssl(d, &verify);
        assert!(result.status.success(), "openssl rejected {signers:?} {options:?}: {}", String::from_utf8_lossy(&result.stderr));
        assert_eq!(std::fs::read(d.join("verified.xml")).unwrap(), std::fs::read(d.join("payload.xml")).unwrap());

        // keyward verifies its own message too, against the signers' aliases.
        let mut own = vec!["verify", "--in", "signed.p7m"];
        for signer in signers {
            own.extend(["--trust", signer]);
        }
        if options.contains(&"--detached") {
            own.extend(["--content", "payload.xml"]);
        }
        let report = ok(kw(&own), "keyward verify");
        assert_eq!(report.matches(": valid").count(), signers.len(), "{report}");
    }

    // OpenSSL 3.0 has no Ed25519 in CMS (RFC 8419); keyward verifies its own, alone and
    // next to an ECDSA signature.
    ok(kw(&["sign", "--alias", "signer-ed", "--alias", "signer-ec", "--in", "payload.xml", "--out", "ed.p7m"]), "sign Ed25519");
    let report = ok(kw(&["verify", "--in", "ed.p7m", "--trust", "signer-ed", "--trust", "signer-ec"]), "verify Ed25519");
    assert_eq!(report.matches(": valid").count(), 2, "{report}");
    assert!(report.contains("sha512"), "{report}");

    // A tampered payload fails, with the reason, and exit code 1.
    ok(kw(&["sign", "--alias", "signer-ec", "--in", "payload.xml", "--out", "detached.p7m", "--detached"]), "sign");
    std::fs::write(d.join("tampered.xml"), b"<order id=\"4711\">forty-three widgets</order>\n").unwrap();
    let tampered = kw(&["verify", "--in", "detached.p7m", "--content", "tampered.xml", "--trust", "signer-ec"]);
    assert_eq!(tampered.status.code(), Some(1));
    let text = String::from_utf8_lossy(&tampered.stdout);
    assert!(text.contains("INVALID") && text.contains("NOT verified"), "{text}");
    server.stop();
}

#[test]
fn openssl_signatures_verify_in_keyward() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(&d.join("data"));
    let token = admin_token(&d.join("data"));
    let kw = |args: &[&str]| keyward(&server, &token, d, args);
    std::fs::write(d.join("payload.bin"), b"binary \x00\x01\x02 payload").unwrap();
    for (name, keygen) in [
        ("partner-rsa", vec!["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "partner-rsa.key"]),
        ("partner-ec", vec!["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "partner-ec.key"]),
    ] {
        assert!(openssl(d, &keygen).status.success());
        let cert = openssl(d, &["req", "-new", "-x509", "-key", &format!("{name}.key"), "-subj", &format!("/CN={name}"), "-days", "30", "-out", &format!("{name}.pem")]);
        assert!(cert.status.success());
        // keyward trusts the partner's certificate under an alias of its own.
        ok(kw(&["keys", "import", name, "--file", &format!("{name}.pem")]), "import partner certificate");
    }
    let sign = |extra: &[&str], out: &str| {
        let mut args = vec!["cms", "-sign", "-binary", "-outform", "DER", "-in", "payload.bin", "-out", out];
        args.extend(extra.iter().copied());
        let result = openssl(d, &args);
        assert!(result.status.success(), "openssl cms -sign {extra:?}: {}", String::from_utf8_lossy(&result.stderr));
    };
    sign(&["-nodetach", "-signer", "partner-rsa.pem", "-inkey", "partner-rsa.key", "-signer", "partner-ec.pem", "-inkey", "partner-ec.key"], "two.p7m");
    let report = ok(kw(&["verify", "--in", "two.p7m", "--trust", "partner-rsa", "--trust", "partner-ec", "--out", "content.bin"]), "verify two signers");
    assert_eq!(report.matches(": valid").count(), 2, "{report}");
    assert_eq!(std::fs::read(d.join("content.bin")).unwrap(), std::fs::read(d.join("payload.bin")).unwrap());

    sign(&["-signer", "partner-rsa.pem", "-inkey", "partner-rsa.key", "-md", "sha384", "-keyopt", "rsa_padding_mode:pss"], "pss-detached.p7m");
    let report = ok(kw(&["verify", "--in", "pss-detached.p7m", "--content", "payload.bin", "--trust", "partner-rsa"]), "verify PSS");
    assert!(report.contains("verified"), "{report}");

    // Trusting only one of two signers: `all` fails, `any` passes.
    let all = kw(&["verify", "--in", "two.p7m", "--trust", "partner-ec"]);
    assert_eq!(all.status.code(), Some(1), "{}", String::from_utf8_lossy(&all.stdout));
    ok(kw(&["verify", "--in", "two.p7m", "--trust", "partner-ec", "--require", "any"]), "verify any");
    server.stop();
}

#[test]
fn encryption_round_trips_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = Server::start(&d.join("data"));
    let token = admin_token(&d.join("data"));
    let kw = |args: &[&str]| keyward(&server, &token, d, args);
    std::fs::write(d.join("plain.txt"), b"salary data, quarterly\n").unwrap();
    ok(kw(&["keys", "create", "inbound", "--algorithm", "rsa-2048", "--subject", "CN=inbound"]), "create");
    ok(kw(&["keys", "export", "inbound", "--format", "pem", "--out", "inbound.pem"]), "export certificate");
    ok(kw(&["keys", "export", "inbound", "--format", "p12", "--password", "pw", "--out", "inbound.p12"]), "export p12");
    let key = openssl(d, &["pkcs12", "-in", "inbound.p12", "-passin", "pass:pw", "-nocerts", "-noenc", "-out", "inbound.key"]);
    assert!(key.status.success(), "{}", String::from_utf8_lossy(&key.stderr));

    // keyward encrypts, OpenSSL decrypts: every content encryption and key transport.
    for (transport, content) in [("rsa-oaep", "aes256-cbc"), ("rsa-pkcs1", "aes128-cbc"), ("rsa-oaep", "aes256-gcm"), ("rsa-oaep-sha1", "aes128-gcm")] {
        ok(kw(&["encrypt", "--recipient", "inbound", "--in", "plain.txt", "--out", "sealed.p7m", "--key-transport", transport, "--content-encryption", content]), "encrypt");
        let opened = openssl(d, &["cms", "-decrypt", "-inform", "DER", "-in", "sealed.p7m", "-recip", "inbound.pem", "-inkey", "inbound.key", "-out", "opened.txt"]);
        assert!(opened.status.success(), "openssl could not decrypt {transport}/{content}: {}", String::from_utf8_lossy(&opened.stderr));
        assert_eq!(std::fs::read(d.join("opened.txt")).unwrap(), std::fs::read(d.join("plain.txt")).unwrap());
    }

    // OpenSSL encrypts to two recipients, keyward decrypts with its key.
    ok(kw(&["keys", "create", "someone-else", "--algorithm", "rsa-2048", "--subject", "CN=else"]), "create");
    ok(kw(&["keys", "export", "someone-else", "--format", "pem", "--out", "else.pem"]), "export");
    let sealed = openssl(d, &["cms", "-encrypt", "-binary", "-outform", "DER", "-aes256", "-in", "plain.txt", "-out", "from-openssl.p7m", "else.pem", "inbound.pem"]);
    assert!(sealed.status.success(), "{}", String::from_utf8_lossy(&sealed.stderr));
    let decrypt = kw(&["decrypt", "--in", "from-openssl.p7m", "--out", "plain-again.txt"]);
    ok(decrypt.clone(), "decrypt");
    assert!(String::from_utf8_lossy(&decrypt.stderr).contains("decrypted with"), "{}", String::from_utf8_lossy(&decrypt.stderr));
    assert_eq!(std::fs::read(d.join("plain-again.txt")).unwrap(), std::fs::read(d.join("plain.txt")).unwrap());
    server.stop();
}
