//! Reading what users upload: [`import`] (a key pair with its chain, or certificates only)
//! and [`parse_certificates`] (certificates only, e.g. a CA's answer to a CSR).
//!
//! The format is detected from the bytes:
//! - PEM text with any mix of `CERTIFICATE`, `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY`
//!   (PKCS#1), `EC PRIVATE KEY` (SEC1), `ENCRYPTED PRIVATE KEY` (PKCS#8 with PBES2, needs
//!   the password) and `PKCS7` blocks; `EC PARAMETERS` blocks (from `openssl ecparam`) are
//!   skipped; other labels are refused by name.
//! - DER: an X.509 certificate, a certs-only PKCS#7 `SignedData` (.p7b), or PKCS#12 (needs
//!   the password; modern AES/PBES2 files and legacy 3DES/RC2 files).
//!
//! Whether the key matches the certificate is not checked here; see
//! [`crate::key_mismatch`].

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::{Decode, Encode, Reader, SliceReader};
use p12_keystore::Pkcs12Archive;
use p12_keystore::error::Error as P12Error;
use pkcs8::{EncryptedPrivateKeyInfoRef, PrivateKeyInfoRef};

use crate::certificate::Certificate;
use crate::chain::Chain;
use crate::error::CryptoError;
use crate::key::PrivateKey;
use crate::oids;
use crate::pem::{PemBlock, looks_like_pem, parse_blocks};

/// What an input held.
#[derive(Debug, Clone)]
pub enum Imported {
    /// Certificates only, ordered into a chain.
    Certificates(Chain),
    /// One private key with its certificate chain (the leaf is the key's certificate when
    /// they match; check with [`crate::key_mismatch`]).
    KeyPair {
        /// The private key, normalised to PKCS#8 v1.
        key: PrivateKey,
        /// The certificates, leaf first.
        chain: Chain,
    },
}

#[derive(Default)]
struct Collected {
    keys: Vec<PrivateKey>,
    certificates: Vec<Certificate>,
}

/// Reads a key pair or certificates from PEM, DER, PKCS#7 or PKCS#12 bytes.
///
/// # Errors
/// A [`CryptoError`] saying what is wrong with the input: unrecognised format, a damaged
/// PEM block (named by number and label), a missing or wrong password, a key without its
/// certificate, more than one key, or certificates that do not form one chain.
pub fn import(bytes: &[u8], password: Option<&str>) -> Result<Imported, CryptoError> {
    let mut collected = collect(bytes, password)?;
    if collected.keys.is_empty() && collected.certificates.is_empty() {
        return Err(CryptoError::NoCertificates(
            "the input holds no certificate and no private key".to_owned(),
        ));
    }
    match collected.keys.len() {
        0 => Ok(Imported::Certificates(Chain::new(collected.certificates)?)),
        1 => {
            if collected.certificates.is_empty() {
                return Err(CryptoError::KeyWithoutCertificate);
            }
            let chain = Chain::new(collected.certificates)?;
            let key = collected.keys.remove(0);
            Ok(Imported::KeyPair { key, chain })
        }
        n => Err(CryptoError::MultipleKeys(n)),
    }
}

/// Reads certificates (no keys) from PEM (certificates or PKCS#7), a DER certificate, or a
/// DER/PEM PKCS#7 bundle, and orders them into a chain.
///
/// # Errors
/// As [`import`]; a private key in the input is refused, as is a PKCS#12 file.
pub fn parse_certificates(bytes: &[u8]) -> Result<Chain, CryptoError> {
    if !looks_like_pem(bytes) && looks_like_pkcs12(bytes) {
        return Err(CryptoError::UnrecognizedFormat(
            "the input is a PKCS#12 file, but only certificates (PEM, DER or PKCS#7) are expected here".to_owned(),
        ));
    }
    let collected = collect(bytes, None)?;
    if collected.certificates.is_empty() && collected.keys.is_empty() {
        return Err(CryptoError::NoCertificates(
            "the input holds no certificate".to_owned(),
        ));
    }
    if !collected.keys.is_empty() {
        return Err(CryptoError::UnrecognizedFormat(
            "the input holds a private key, but only certificates are expected here".to_owned(),
        ));
    }
    Chain::new(collected.certificates)
}

fn collect(bytes: &[u8], password: Option<&str>) -> Result<Collected, CryptoError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(CryptoError::UnrecognizedFormat(
            "the input is empty".to_owned(),
        ));
    }
    if looks_like_pem(bytes) {
        return collect_pem(bytes, password);
    }
    collect_der(bytes, password)
}

/// Restates a key or certificate error with the PEM block it came from.
fn in_block(block: &PemBlock, error: CryptoError) -> CryptoError {
    let prefix = format!("PEM block {} ({})", block.number, block.label);
    match error {
        CryptoError::InvalidKey(m) => CryptoError::InvalidKey(format!("{prefix}: {m}")),
        CryptoError::UnsupportedKey(m) => CryptoError::UnsupportedKey(format!("{prefix}: {m}")),
        CryptoError::InvalidCertificate(m) => {
            CryptoError::InvalidCertificate(format!("{prefix}: {m}"))
        }
        CryptoError::NoCertificates(m) => CryptoError::NoCertificates(format!("{prefix}: {m}")),
        other => other,
    }
}

const EXPECTED_LABELS: &str =
    "CERTIFICATE, PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY, ENCRYPTED PRIVATE KEY or PKCS7";

fn collect_pem(bytes: &[u8], password: Option<&str>) -> Result<Collected, CryptoError> {
    let mut out = Collected::default();
    for block in parse_blocks(bytes)? {
        let number = block.number;
        let label = block.label.as_str();
        match label {
            "CERTIFICATE" | "X509 CERTIFICATE" => {
                let cert = Certificate::parse(&block.der).map_err(|reason| {
                    CryptoError::InvalidCertificate(format!(
                        "PEM block {number} ({label}) is not a valid certificate: {reason}"
                    ))
                })?;
                out.certificates.push(cert);
            }
            "PRIVATE KEY" => out
                .keys
                .push(PrivateKey::from_pkcs8_der(&block.der).map_err(|e| in_block(&block, e))?),
            "RSA PRIVATE KEY" => out
                .keys
                .push(PrivateKey::from_pkcs1_der(&block.der).map_err(|e| in_block(&block, e))?),
            "EC PRIVATE KEY" => out
                .keys
                .push(PrivateKey::from_sec1_der(&block.der).map_err(|e| in_block(&block, e))?),
            "ENCRYPTED PRIVATE KEY" => {
                let Some(password) = password else {
                    return Err(CryptoError::PasswordRequired(format!(
                        "PEM block {number} ({label}) is encrypted; a password is needed to read it"
                    )));
                };
                out.keys.push(decrypt_pkcs8(&block, password)?);
            }
            "PKCS7" | "CMS" => {
                let certs = p7_certificates(&block.der).map_err(|e| in_block(&block, e))?;
                out.certificates.extend(certs);
            }
            // `openssl ecparam -genkey` writes the curve before the key; the key names it too.
            "EC PARAMETERS" => {}
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => {
                return Err(CryptoError::InvalidPem(format!(
                    "PEM block {number} is a certificate signing request ({label}), not a certificate; send it to the CA and import the certificate it returns"
                )));
            }
            _ => {
                return Err(CryptoError::InvalidPem(format!(
                    "PEM block {number} has the label {label:?}, which keyward does not import; expected {EXPECTED_LABELS}"
                )));
            }
        }
    }
    Ok(out)
}

/// Most PBKDF2 iterations accepted for an encrypted key (OpenSSL uses 2048 by default;
/// password managers a few hundred thousand).
const MAX_PBKDF2_ITERATIONS: u32 = 1_000_000;
/// Most memory scrypt may use for an encrypted key: `128 * N * r * p` bytes.
const MAX_SCRYPT_BYTES: u64 = 256 * 1024 * 1024;

/// Refuses key-derivation parameters that would take minutes of CPU or gigabytes of memory
/// before the password is even checked: the file, not keyward, would decide the cost.
fn check_kdf_cost(number: usize, scheme: &pkcs5::EncryptionScheme) -> Result<(), CryptoError> {
    use pkcs5::pbes2::Kdf;
    let refuse = |what: String| {
        Err(CryptoError::UnsupportedKey(format!(
            "PEM block {number} (ENCRYPTED PRIVATE KEY) asks for {what}; re-encrypt it with `openssl pkcs8 -topk8 -v2 aes256`"
        )))
    };
    let Some(pbes2) = scheme.pbes2() else { return Ok(()) };
    match &pbes2.kdf {
        Kdf::Pbkdf2(params) if params.iteration_count == 0 || params.iteration_count > MAX_PBKDF2_ITERATIONS => refuse(
            format!("{} PBKDF2 iterations (keyward accepts 1 to {MAX_PBKDF2_ITERATIONS})", params.iteration_count),
        ),
        Kdf::Scrypt(params) => {
            let n = params.cost_parameter;
            let bytes = 128u64
                .saturating_mul(n)
                .saturating_mul(u64::from(params.block_size))
                .saturating_mul(u64::from(params.parallelization.max(1)));
            if n < 2 || !n.is_power_of_two() || params.block_size == 0 || params.parallelization == 0 || bytes > MAX_SCRYPT_BYTES {
                refuse(format!(
                    "scrypt with N={n}, r={}, p={} (keyward accepts N a power of two and at most {} MiB)",
                    params.block_size,
                    params.parallelization,
                    MAX_SCRYPT_BYTES / (1024 * 1024)
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

fn decrypt_pkcs8(block: &PemBlock, password: &str) -> Result<PrivateKey, CryptoError> {
    let number = block.number;
    let info = EncryptedPrivateKeyInfoRef::from_der(&block.der).map_err(|e| {
        CryptoError::InvalidKey(format!(
            "PEM block {number} (ENCRYPTED PRIVATE KEY) is not a valid encrypted PKCS#8 key: {e}"
        ))
    })?;
    check_kdf_cost(number, &info.encryption_algorithm)?;
    let plain = info.decrypt(password).map_err(|e| {
        let text = e.to_string();
        if text.contains("unsupported") || text.contains("Unsupported") {
            CryptoError::UnsupportedKey(format!(
                "PEM block {number} (ENCRYPTED PRIVATE KEY) uses an encryption scheme keyward does not support ({text}); re-encrypt it with `openssl pkcs8 -topk8 -v2 aes256`"
            ))
        } else {
            CryptoError::WrongKeyPassword
        }
    })?;
    // A wrong password sometimes decrypts to garbage with valid padding; the result then
    // is not a key.
    if PrivateKeyInfoRef::from_der(plain.as_bytes()).is_err() {
        return Err(CryptoError::WrongKeyPassword);
    }
    PrivateKey::from_pkcs8_der(plain.as_bytes()).map_err(|e| in_block(block, e))
}

/// Whether `bytes` have the outer shape of a PKCS#12 PFX: a SEQUENCE whose first element
/// is the INTEGER 3.
fn looks_like_pkcs12(bytes: &[u8]) -> bool {
    let check = || -> der::Result<bool> {
        let mut reader = SliceReader::new(bytes)?;
        let header = der::Header::decode(&mut reader)?;
        if header.tag() != der::Tag::Sequence {
            return Ok(false);
        }
        let version: u8 = reader.decode()?;
        Ok(version == 3)
    };
    check().unwrap_or(false)
}

fn collect_der(bytes: &[u8], password: Option<&str>) -> Result<Collected, CryptoError> {
    let mut out = Collected::default();
    let certificate_error = match Certificate::parse(bytes) {
        Ok(cert) => {
            out.certificates.push(cert);
            return Ok(out);
        }
        Err(reason) => reason,
    };
    // Binary .p7b files from Windows tools may use BER's indefinite lengths.
    if let Ok(info) = ContentInfo::from_der(bytes).or_else(|_| ContentInfo::from_ber(bytes)) {
        out.certificates = p7_certificates_from(info)?;
        return Ok(out);
    }
    if looks_like_pkcs12(bytes) {
        let Some(password) = password else {
            return Err(CryptoError::PasswordRequired(
                "the input is a PKCS#12 file; a password is needed to open it".to_owned(),
            ));
        };
        return collect_pkcs12(bytes, password);
    }
    if PrivateKeyInfoRef::from_der(bytes).is_ok()
        || EncryptedPrivateKeyInfoRef::from_der(bytes).is_ok()
    {
        return Err(CryptoError::KeyWithoutCertificate);
    }
    let start: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    Err(CryptoError::UnrecognizedFormat(format!(
        "the input is neither PEM text nor a DER certificate, PKCS#7 bundle or PKCS#12 file (it starts with bytes {}; read as a certificate: {certificate_error})",
        start.join(" ")
    )))
}

/// Certificates of a DER PKCS#7 `ContentInfo`.
fn p7_certificates(der: &[u8]) -> Result<Vec<Certificate>, CryptoError> {
    let info = ContentInfo::from_der(der)
        .or_else(|_| ContentInfo::from_ber(der))
        .map_err(|e| {
            CryptoError::InvalidCertificate(format!("the PKCS#7 data is not valid: {e}"))
        })?;
    p7_certificates_from(info)
}

fn p7_certificates_from(info: ContentInfo) -> Result<Vec<Certificate>, CryptoError> {
    if info.content_type != oids::ID_SIGNED_DATA {
        return Err(CryptoError::UnrecognizedFormat(format!(
            "the input is a PKCS#7/CMS message of type {}, not a certificate bundle (signedData)",
            info.content_type
        )));
    }
    let signed: SignedData = info.content.decode_as().map_err(|e| {
        CryptoError::InvalidCertificate(format!("the PKCS#7 SignedData is not valid: {e}"))
    })?;
    let mut certificates = Vec::new();
    if let Some(set) = signed.certificates {
        for (index, choice) in set.0.iter().enumerate() {
            if let CertificateChoices::Certificate(cert) = choice {
                let der = cert.to_der().map_err(CryptoError::internal)?;
                let cert = Certificate::parse(&der).map_err(|reason| {
                    CryptoError::InvalidCertificate(format!(
                        "certificate {} in the PKCS#7 bundle is not valid: {reason}",
                        index + 1
                    ))
                })?;
                certificates.push(cert);
            }
        }
    }
    if certificates.is_empty() {
        return Err(CryptoError::NoCertificates(
            "the PKCS#7 bundle holds no certificates".to_owned(),
        ));
    }
    Ok(certificates)
}

fn collect_pkcs12(bytes: &[u8], password: &str) -> Result<Collected, CryptoError> {
    let archive = Pkcs12Archive::from_pkcs12(bytes, password).map_err(|e| match e {
        P12Error::MacError(_) => CryptoError::WrongPassword,
        P12Error::UnpadError | P12Error::Pkcs5Error(_) => CryptoError::InvalidPkcs12(
            "decryption failed: the password is wrong or the file is damaged".to_owned(),
        ),
        P12Error::UnsupportedEncryptionScheme | P12Error::UnsupportedMacAlgorithm => {
            CryptoError::InvalidPkcs12(format!(
                "it uses an algorithm keyward does not support ({e})"
            ))
        }
        other => CryptoError::InvalidPkcs12(other.to_string()),
    })?;
    let mut out = Collected::default();
    for bag in &archive.keys {
        let key = PrivateKey::from_pkcs8_der(bag.key.as_der()).map_err(|e| match e {
            CryptoError::InvalidKey(m) => {
                CryptoError::InvalidKey(format!("the key in the PKCS#12 file: {m}"))
            }
            CryptoError::UnsupportedKey(m) => {
                CryptoError::UnsupportedKey(format!("the key in the PKCS#12 file: {m}"))
            }
            other => other,
        })?;
        out.keys.push(key);
    }
    for (index, bag) in archive.certs.iter().enumerate() {
        let cert = Certificate::parse(bag.cert.as_der()).map_err(|reason| {
            CryptoError::InvalidCertificate(format!(
                "certificate {} in the PKCS#12 file is not valid: {reason}",
                index + 1
            ))
        })?;
        out.certificates.push(cert);
    }
    if out.keys.is_empty() && out.certificates.is_empty() {
        return Err(CryptoError::NoCertificates(
            "the PKCS#12 file holds no key and no certificate".to_owned(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::export::{p7b_der, p7b_pem, pkcs12};
    use crate::issue::generate;
    use crate::pem::encode;
    use crate::testutil::{ca, leaf};
    use keyward_domain::{KeyAlgorithm, Timestamp};

    const NOW: Timestamp = Timestamp::from_seconds(1_800_000_000);

    /// An encrypted key whose parameters would cost `scheme`'s price; the ciphertext is junk
    /// because the cost check must refuse before any decryption is tried.
    fn encrypted_key_with(scheme: pkcs5::EncryptionScheme) -> String {
        use der::Encode;
        let info = pkcs8::EncryptedPrivateKeyInfoRef {
            encryption_algorithm: scheme,
            encrypted_data: der::asn1::OctetStringRef::new(&[0u8; 48]).unwrap(),
        };
        let (_, cert) = generate(KeyAlgorithm::EcP256, "CN=kdf", 1, NOW).unwrap();
        format!("{}{}", encode("ENCRYPTED PRIVATE KEY", &info.to_der().unwrap()), cert.to_pem())
    }

    #[test]
    fn key_derivation_costs_set_by_the_file_are_bounded() {
        use pkcs5::pbes2::{EncryptionScheme as Cipher, Kdf, Parameters, Pbkdf2Params, Pbkdf2Prf, Salt, ScryptParams};
        let salt = || Salt::new(b"saltsalt").unwrap();
        let cipher = Cipher::Aes256Cbc { iv: [7u8; 16] };
        let pbkdf2 = |iterations| -> pkcs5::EncryptionScheme {
            let kdf = Kdf::Pbkdf2(Pbkdf2Params {
                salt: salt(),
                iteration_count: iterations,
                key_length: None,
                prf: Pbkdf2Prf::HmacWithSha256,
            });
            Parameters { kdf, encryption: cipher }.into()
        };
        let scrypt = |n, r, p| -> pkcs5::EncryptionScheme {
            let kdf = Kdf::Scrypt(ScryptParams { salt: salt(), cost_parameter: n, block_size: r, parallelization: p, key_length: Some(32) });
            Parameters { kdf, encryption: cipher }.into()
        };
        let cases: Vec<(&str, pkcs5::EncryptionScheme, Option<&str>)> = vec![
            ("two million PBKDF2 iterations are refused", pbkdf2(2_000_000), Some("2000000 PBKDF2 iterations")),
            ("zero PBKDF2 iterations are refused", pbkdf2(0), Some("0 PBKDF2 iterations")),
            ("scrypt needing 1 GiB is refused", scrypt(1 << 20, 8, 1), Some("scrypt with N=1048576")),
            ("scrypt with N=0 is refused", scrypt(0, 8, 1), Some("scrypt with N=0")),
            ("scrypt with a huge p is refused", scrypt(1 << 14, 8, 60_000), Some("p=60000")),
            ("OpenSSL's default of 2048 iterations passes the check (and fails on the junk)", pbkdf2(2048), None),
            ("OpenSSL's scrypt default passes the check", scrypt(1 << 14, 8, 1), None),
        ];
        for (case, scheme, refusal) in cases {
            let text = error_text(encrypted_key_with(scheme).as_bytes(), Some("pw"));
            match refusal {
                Some(expected) => assert!(text.contains(expected), "{case}: {text}"),
                None => assert!(!text.contains("re-encrypt"), "{case}: {text}"),
            }
        }
    }

    #[test]
    fn der_that_contains_a_pem_header_is_still_der() {
        let (_, cert) = generate(KeyAlgorithm::EcP256, "CN=-----BEGIN CERTIFICATE-----", 1, NOW).unwrap();
        match import(cert.der(), None).unwrap() {
            Imported::Certificates(chain) => assert_eq!(chain.leaf(), &cert),
            Imported::KeyPair { .. } => panic!("no key was given"),
        }
    }

    fn error_text(bytes: &[u8], password: Option<&str>) -> String {
        let err = import(bytes, password).unwrap_err();
        assert!(err.is_user_error(), "{err:?}");
        err.to_string()
    }

    #[test]
    fn pem_mixtures_are_imported() {
        let (key, cert) = generate(KeyAlgorithm::EcP256, "CN=pem", 1, NOW).unwrap();
        let key_pem = encode("PRIVATE KEY", key.pkcs8_der());
        for text in [
            format!("{key_pem}{}", cert.to_pem()),
            format!("junk\n{}\n{key_pem}", cert.to_pem()),
        ] {
            match import(text.as_bytes(), None).unwrap() {
                Imported::KeyPair { key: k, chain } => {
                    assert_eq!(k.pkcs8_der(), key.pkcs8_der());
                    assert_eq!(chain.certificates(), std::slice::from_ref(&cert));
                }
                other => panic!("{other:?}"),
            }
        }
        match import(cert.der(), None).unwrap() {
            Imported::Certificates(chain) => assert_eq!(chain.leaf(), &cert),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_refusal_says_why() {
        let (key, cert) = generate(KeyAlgorithm::EcP256, "CN=errors", 1, NOW).unwrap();
        let (key2, _) = generate(KeyAlgorithm::Ed25519, "CN=errors", 1, NOW).unwrap();
        let key_pem = encode("PRIVATE KEY", key.pkcs8_der());
        let key2_pem = encode("PRIVATE KEY", key2.pkcs8_der());
        let cert_pem = cert.to_pem();
        let data_ci = ContentInfo {
            content_type: oids::ID_DATA,
            content: der::Any::encode_from(&der::asn1::OctetString::new(vec![1]).unwrap()).unwrap(),
        };
        let cases: Vec<(Vec<u8>, Option<&str>, &str)> = vec![
            (vec![], None, "the input is empty"),
            (b"  \n".to_vec(), None, "the input is empty"),
            (
                b"hello world".to_vec(),
                None,
                "neither PEM text nor a DER certificate",
            ),
            (
                vec![0x30, 0x03, 0x02, 0x01, 0x07],
                None,
                "starts with bytes 30 03 02 01",
            ),
            (
                encode("FOO", b"x").into_bytes(),
                None,
                "PEM block 1 has the label \"FOO\", which keyward does not import",
            ),
            (
                format!("{cert_pem}{}", encode("CERTIFICATE REQUEST", b"x")).into_bytes(),
                None,
                "PEM block 2 is a certificate signing request",
            ),
            (
                format!("{cert_pem}{}", encode("CERTIFICATE", b"junk")).into_bytes(),
                None,
                "PEM block 2 (CERTIFICATE) is not a valid certificate: ",
            ),
            (
                encode("PRIVATE KEY", b"junk").into_bytes(),
                None,
                "PEM block 1 (PRIVATE KEY): the private key is not valid PKCS#8",
            ),
            (
                encode("RSA PRIVATE KEY", b"junk").into_bytes(),
                None,
                "PEM block 1 (RSA PRIVATE KEY): the RSA private key is not valid",
            ),
            (
                encode("EC PRIVATE KEY", b"junk").into_bytes(),
                None,
                "PEM block 1 (EC PRIVATE KEY): the EC private key is not a valid SEC1 key",
            ),
            (
                encode("ENCRYPTED PRIVATE KEY", b"junk").into_bytes(),
                None,
                "PEM block 1 (ENCRYPTED PRIVATE KEY) is encrypted; a password is needed",
            ),
            (
                encode("ENCRYPTED PRIVATE KEY", b"junk").into_bytes(),
                Some("pw"),
                "is not a valid encrypted PKCS#8 key",
            ),
            (
                encode("PKCS7", b"junk").into_bytes(),
                None,
                "PEM block 1 (PKCS7): the PKCS#7 data is not valid",
            ),
            (
                key_pem.clone().into_bytes(),
                None,
                "a private key needs its certificate chain in the same input",
            ),
            (
                key.pkcs8_der().to_vec(),
                None,
                "a private key needs its certificate chain in the same input",
            ),
            (
                format!("{key_pem}{key2_pem}{cert_pem}").into_bytes(),
                None,
                "the input holds 2 private keys",
            ),
            (
                encode("EC PARAMETERS", b"x").into_bytes(),
                None,
                "holds no certificate and no private key",
            ),
            (data_ci.to_der().unwrap(), None, "not a certificate bundle"),
        ];
        for (input, password, needle) in cases {
            let text = error_text(&input, password);
            assert!(text.contains(needle), "expected {needle:?} in {text:?}");
        }
    }

    #[test]
    fn pkcs12_passwords() {
        let (key, cert) = generate(KeyAlgorithm::EcP384, "CN=p12", 1, NOW).unwrap();
        let chain = Chain::new(vec![cert.clone()]).unwrap();
        let p12 = pkcs12(&key, &chain, "alias", "right").unwrap();
        assert_eq!(
            error_text(&p12, None),
            "the input is a PKCS#12 file; a password is needed to open it"
        );
        assert_eq!(
            error_text(&p12, Some("wrong")),
            "the PKCS#12 password is wrong or the file is damaged (MAC check failed)"
        );
        match import(&p12, Some("right")).unwrap() {
            Imported::KeyPair { key: k, chain } => {
                assert_eq!(k.pkcs8_der(), key.pkcs8_der());
                assert_eq!(chain.certificates(), &[cert]);
            }
            other => panic!("{other:?}"),
        }
        let err = parse_certificates(&p12).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a PKCS#12 file, but only certificates"),
            "{err}"
        );
    }

    #[test]
    fn parse_certificates_reads_pkcs7_and_refuses_keys() {
        let root = ca("Root", None);
        let inter = ca("Intermediate", Some(&root));
        let end = leaf("End", &inter);
        let chain = Chain::new(vec![root.cert.clone(), end.clone(), inter.cert.clone()]).unwrap();
        let der = p7b_der(&chain);
        assert_eq!(parse_certificates(&der).unwrap(), chain);
        assert_eq!(
            parse_certificates(p7b_pem(&chain).as_bytes()).unwrap(),
            chain
        );
        assert_eq!(
            parse_certificates(chain.to_pem().as_bytes()).unwrap(),
            chain
        );
        match import(&der, None).unwrap() {
            Imported::Certificates(c) => assert_eq!(c, chain),
            other => panic!("{other:?}"),
        }

        let (key, cert) = generate(KeyAlgorithm::EcP256, "CN=k", 1, NOW).unwrap();
        let text = format!(
            "{}{}",
            cert.to_pem(),
            encode("PRIVATE KEY", key.pkcs8_der())
        );
        let err = parse_certificates(text.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .contains("holds a private key, but only certificates"),
            "{err}"
        );
        let err = parse_certificates(b"").unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn truncated_inputs_are_errors_not_panics() {
        let (key, cert) = generate(KeyAlgorithm::EcP256, "CN=cut", 1, NOW).unwrap();
        let chain = Chain::new(vec![cert.clone()]).unwrap();
        let p12 = pkcs12(&key, &chain, "a", "pw").unwrap();
        let p7b = p7b_der(&chain);
        let pem = format!(
            "{}{}",
            encode("PRIVATE KEY", key.pkcs8_der()),
            cert.to_pem()
        );
        // PEM without its final newline is still complete.
        let cases = [
            (p12.as_slice(), 0),
            (p7b.as_slice(), 0),
            (cert.der(), 0),
            (pem.as_bytes(), 1),
        ];
        for (whole, complete_before_end) in cases {
            for len in 0..whole.len() - complete_before_end {
                assert!(
                    import(&whole[..len], Some("pw")).is_err(),
                    "prefix of {len} bytes was accepted"
                );
            }
            assert!(import(whole, Some("pw")).is_ok());
        }
    }
}
