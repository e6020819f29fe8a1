//! Interoperability through the command line: what `keyward keys export` writes is read by
//! OpenSSL and keytool, and what OpenSSL makes is imported by `keyward keys import` and
//! `keyward keys import-response`.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{Server, admin_token};

struct Cli<'a> {
    server: &'a Server,
    token: String,
    dir: &'a Path,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_keyward"))
            .args(args)
            .current_dir(self.dir)
            .env("KEYWARD_SERVER", &self.server.base)
            .env("KEYWARD_TOKEN", &self.token)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "keyward {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn tool(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed for this test and could not be run: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

#[test]
fn every_export_is_read_by_openssl_and_keytool() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let cli = Cli { token: admin_token(&dir.path().join("data")), server: &server, dir: dir.path() };
    let d = dir.path();
    for algorithm in ["rsa-2048", "rsa-3072", "rsa-4096", "ec-p256", "ec-p384", "ed25519"] {
        let alias = format!("client-{algorithm}");
        cli.ok(&["keys", "create", &alias, "--algorithm", algorithm, "--subject", "CN=interop, O=Example AG, C=DE"]);
        for format in ["pem", "der", "chain-pem", "p7b", "p7b-pem", "root-pem", "root-der"] {
            cli.ok(&["keys", "export", &alias, "--format", format, "--out", &format!("{alias}.{format}")]);
        }
        let text = tool(d, "openssl", &["x509", "-in", &format!("{alias}.pem"), "-noout", "-subject"]);
        assert!(text.contains("CN = interop"), "{text}");
        tool(d, "openssl", &["x509", "-inform", "DER", "-in", &format!("{alias}.der"), "-noout"]);
        tool(d, "openssl", &["x509", "-inform", "DER", "-in", &format!("{alias}.root-der"), "-noout"]);
        tool(d, "openssl", &["x509", "-in", &format!("{alias}.root-pem"), "-noout"]);
        let certs = tool(d, "openssl", &["pkcs7", "-inform", "DER", "-in", &format!("{alias}.p7b"), "-print_certs", "-noout"]);
        assert!(certs.contains("interop"), "{certs}");
        tool(d, "openssl", &["pkcs7", "-in", &format!("{alias}.p7b-pem"), "-print_certs", "-noout"]);
        cli.ok(&["keys", "export", &alias, "--format", "p12", "--password", "s3cret!", "--out", &format!("{alias}.p12")]);
        let info = tool(d, "openssl", &["pkcs12", "-info", "-in", &format!("{alias}.p12"), "-passin", "pass:s3cret!", "-noenc"]);
        assert!(info.contains("PRIVATE KEY"), "{info}");
        let list = tool(d, "keytool", &["-list", "-keystore", &format!("{alias}.p12"), "-storetype", "PKCS12", "-storepass", "s3cret!"]);
        assert!(list.contains("PrivateKeyEntry") && list.contains(&alias), "{list}");
        // And back: keyward imports its own PKCS#12 under a new alias.
        cli.ok(&["keys", "import", &format!("{alias}-copy"), "--file", &format!("{alias}.p12"), "--password", "s3cret!"]);
    }
    // Private keys only for admins, and never through the public export.
    let viewer = cli.ok(&["token", "create", "--role", "viewer", "--name", "viewer", "--output", "json"]);
    let viewer_token = viewer.split("\"token\": \"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let as_viewer = Cli { token: viewer_token, server: &server, dir: d };
    let refused = as_viewer.run(&["keys", "export", "client-ec-p256", "--format", "p12", "--password", "x", "--out", "v.p12"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("HTTP 403"));
    as_viewer.ok(&["keys", "export", "client-ec-p256", "--format", "der", "--out", "v.cer"]);
    server.stop();
}

#[test]
fn what_openssl_makes_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let cli = Cli { token: admin_token(&dir.path().join("data")), server: &server, dir: dir.path() };
    let d = dir.path();
    // Keys in every PEM flavour, each with its self-signed certificate in a separate file.
    let keys: [(&str, &[&str]); 5] = [
        ("rsa-pkcs8", &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa-pkcs8.key"]),
        ("rsa-pkcs1", &["genrsa", "-traditional", "-out", "rsa-pkcs1.key", "2048"]),
        ("ec-sec1", &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ec-sec1.key"]),
        ("ec384-sec1", &["ecparam", "-name", "secp384r1", "-genkey", "-noout", "-out", "ec384-sec1.key"]),
        ("ed25519", &["genpkey", "-algorithm", "ed25519", "-out", "ed25519.key"]),
    ];
    for (name, args) in keys {
        tool(d, "openssl", args);
        let key = format!("{name}.key");
        let cert = format!("{name}.crt");
        tool(d, "openssl", &["req", "-new", "-x509", "-key", &key, "-subj", &format!("/CN={name}"), "-days", "30", "-out", &cert]);
        let out = cli.ok(&["keys", "import", name, "--file", &key, "--file", &cert]);
        assert!(out.contains("version 1 is active"), "{out}");
        let shown = cli.ok(&["keys", "show", name, "--output", "json"]);
        assert!(shown.contains("\"has_private_key\": true"), "{shown}");
        // The certificate keyward serves is byte for byte the one OpenSSL made.
        cli.ok(&["keys", "export", name, "--format", "der", "--out", &format!("{name}.back.der")]);
        tool(d, "openssl", &["x509", "-in", &cert, "-outform", "DER", "-out", &format!("{name}.orig.der")]);
        assert_eq!(std::fs::read(d.join(format!("{name}.back.der"))).unwrap(), std::fs::read(d.join(format!("{name}.orig.der"))).unwrap());
    }
    // PKCS#12 from OpenSSL, modern and legacy encryption.
    for (name, extra) in [("p12-modern", None), ("p12-legacy", Some("-legacy"))] {
        let mut args = vec!["pkcs12", "-export", "-inkey", "rsa-pkcs8.key", "-in", "rsa-pkcs8.crt", "-passout", "pass:pw", "-out"];
        let file = format!("{name}.p12");
        args.push(&file);
        args.extend(extra);
        tool(d, "openssl", &args);
        let wrong = cli.run(&["keys", "import", name, "--file", &file, "--password", "nope"]);
        assert!(!wrong.status.success());
        assert!(String::from_utf8_lossy(&wrong.stderr).contains("password"), "{}", String::from_utf8_lossy(&wrong.stderr));
        cli.ok(&["keys", "import", name, "--file", &file, "--password", "pw"]);
    }
    // A DER certificate as a trusted certificate entry.
    cli.ok(&["keys", "import", "trusted-der", "--file", "ec-sec1.orig.der"]);
    // A CSR signed by an OpenSSL CA, the response given as a .p7b with the CA.
    tool(d, "openssl", &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=Interop CA", "-days", "30", "-keyout", "ca.key", "-out", "ca.pem"]);
    cli.ok(&["keys", "create", "csr-client", "--algorithm", "rsa-3072", "--subject", "CN=csr client, O=Example AG"]);
    cli.ok(&["keys", "csr", "csr-client", "--out", "client.csr"]);
    tool(d, "openssl", &["req", "-verify", "-in", "client.csr", "-noout"]);
    tool(d, "openssl", &["x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "20", "-out", "signed.pem"]);
    tool(d, "openssl", &["crl2pkcs7", "-nocrl", "-certfile", "signed.pem", "-certfile", "ca.pem", "-outform", "DER", "-out", "response.p7b"]);
    cli.ok(&["keys", "import-response", "csr-client", "--file", "response.p7b"]);
    let history = cli.ok(&["keys", "history", "csr-client", "--output", "json"]);
    let versions: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(versions[0]["state"], "active");
    assert_eq!(versions[0]["chain"][1]["subject"], "CN=Interop CA");
    assert_eq!(versions[1]["state"], "retired");
    // The chain export now holds the CA, and OpenSSL verifies the leaf against it.
    cli.ok(&["keys", "export", "csr-client", "--format", "root-pem", "--out", "root.pem"]);
    cli.ok(&["keys", "export", "csr-client", "--format", "pem", "--out", "leaf.pem"]);
    tool(d, "openssl", &["verify", "-CAfile", "root.pem", "leaf.pem"]);
    // A response signed for another key is refused and changes nothing.
    tool(d, "openssl", &["req", "-new", "-key", "ec-sec1.key", "-subj", "/CN=stranger", "-out", "stranger.csr"]);
    tool(d, "openssl", &["x509", "-req", "-in", "stranger.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-days", "20", "-out", "stranger.pem"]);
    let refused = cli.run(&["keys", "import-response", "csr-client", "--file", "stranger.pem"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("none of the private keys"));
    assert_eq!(cli.ok(&["keys", "history", "csr-client", "--output", "json"]), history);
    server.stop();
}
