//! Making new key material: [`generate`] (a key with a self-signed certificate) and
//! [`certificate_request`] (a PKCS#10 CSR for a key, with the subject of an existing
//! certificate).
//!
//! Generated certificates are end-entity certificates for signing and client
//! authentication: key usage digitalSignature + nonRepudiation (+ keyEncipherment for
//! RSA), extended key usage clientAuth + emailProtection (so that S/MIME verifiers such as
//! `openssl cms -verify` accept them), basic constraints CA:FALSE, a random positive
//! 16-byte serial, and validity from one minute before `now` (clock skew) to `now` plus
//! the given days.
//!
//! Signing is done by aws-lc-rs through [`PrivateKey`]; the certificate encoding is rcgen's,
//! the CSR encoding uses the `x509-cert` types (so the CSR subject is byte for byte the
//! certificate's subject).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use der::asn1::BitString;
use der::{Decode, Encode};
use keyward_domain::{KeyAlgorithm, Timestamp};
use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, PublicKeyData, SerialNumber, SignatureAlgorithm, SigningKey,
};
use time::OffsetDateTime;
use x509_cert::request::{CertReq, CertReqInfo, Version};

use crate::certificate::Certificate;
use crate::dn::{DnAttribute, ValueEncoding, parse_dn};
use crate::error::CryptoError;
use crate::key::{KeyKind, PrivateKey};

/// The longest validity [`generate`] accepts, in days (about 100 years).
pub const MAX_VALIDITY_DAYS: u32 = 36_500;

/// Lets rcgen sign with a [`PrivateKey`] without handing it the key bytes.
struct KeySigner<'a> {
    key: &'a PrivateKey,
    public_key_bits: Vec<u8>,
    algorithm: &'static SignatureAlgorithm,
}

impl PublicKeyData for KeySigner<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key_bits
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm
    }
}

impl SigningKey for KeySigner<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.key
            .sign(msg)
            .map(|(_, signature)| signature)
            .map_err(|_| rcgen::Error::RingUnspecified)
    }
}

fn rcgen_name(attributes: &[DnAttribute]) -> Result<DistinguishedName, CryptoError> {
    let mut name = DistinguishedName::new();
    for attr in attributes {
        let value = match attr.attribute.encoding {
            ValueEncoding::Utf8 => DnValue::Utf8String(attr.value.clone()),
            // parse_dn has checked the character sets; a failure here is internal.
            ValueEncoding::Printable => DnValue::PrintableString(
                PrintableString::try_from(attr.value.as_str()).map_err(CryptoError::internal)?,
            ),
            ValueEncoding::Ia5 => DnValue::Ia5String(
                Ia5String::try_from(attr.value.as_str()).map_err(CryptoError::internal)?,
            ),
        };
        name.push(DnType::from_oid(attr.attribute.oid), value);
    }
    Ok(name)
}

fn offset_time(seconds: i64) -> Result<OffsetDateTime, CryptoError> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .filter(|t| (1950..=9999).contains(&t.year()))
        .ok_or_else(|| {
            CryptoError::InvalidParameter(format!(
                "the time {seconds} (seconds since 1970) is outside what a certificate can hold"
            ))
        })
}

fn random_serial() -> Result<[u8; 16], CryptoError> {
    let mut serial = [0u8; 16];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| CryptoError::internal("the random generator failed"))?;
    // Positive (high bit clear) and exactly 16 bytes (first byte not zero).
    serial[0] = (serial[0] & 0x7f).max(1);
    Ok(serial)
}

/// Generates a key and a self-signed certificate for it.
///
/// `subject_dn` is typed by a user, e.g. `CN=flow client, O=Example AG, C=DE` or
/// `/C=DE/O=Example AG/CN=flow client`; it must contain a CN.
///
/// # Errors
/// [`CryptoError::InvalidDn`] for a bad subject, [`CryptoError::InvalidParameter`] for a
/// validity of 0 or more than [`MAX_VALIDITY_DAYS`] days, [`CryptoError::Internal`] when
/// key generation or signing fails.
pub fn generate(
    algorithm: KeyAlgorithm,
    subject_dn: &str,
    validity_days: u32,
    now: Timestamp,
) -> Result<(PrivateKey, Certificate), CryptoError> {
    let attributes = parse_dn(subject_dn)?;
    if validity_days == 0 || validity_days > MAX_VALIDITY_DAYS {
        return Err(CryptoError::InvalidParameter(format!(
            "the validity must be between 1 and {MAX_VALIDITY_DAYS} days, not {validity_days}"
        )));
    }
    let not_before = offset_time(now.seconds().saturating_sub(60))?;
    let not_after = offset_time(now.plus_days(i64::from(validity_days)).seconds())?;

    let key = PrivateKey::generate(algorithm)?;
    let certificate = self_signed(&key, &attributes, not_before, not_after)?;
    Ok((key, certificate))
}

fn self_signed(
    key: &PrivateKey,
    attributes: &[DnAttribute],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Certificate, CryptoError> {
    let kind = key.algorithm();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen_name(attributes)?;
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    if matches!(kind, KeyKind::Rsa { .. }) {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::EmailProtection,
    ];

    let spki = key.spki()?;
    let signer = KeySigner {
        key,
        public_key_bits: spki.subject_public_key.raw_bytes().to_vec(),
        algorithm: match kind {
            KeyKind::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
            KeyKind::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyKind::Ed25519 => &rcgen::PKCS_ED25519,
        },
    };
    let cert = params
        .self_signed(&signer)
        .map_err(|e| CryptoError::internal(format!("building the certificate failed: {e}")))?;
    Certificate::from_der(cert.der()).map_err(|e| {
        CryptoError::internal(format!("the generated certificate does not parse: {e}"))
    })
}

/// Makes a PKCS#10 certificate signing request (PEM `CERTIFICATE REQUEST`) for `key`, with
/// the subject of `subject_from` copied exactly, signed by `key`.
///
/// # Errors
/// [`CryptoError::Internal`] when signing or encoding fails.
pub fn certificate_request(
    key: &PrivateKey,
    subject_from: &Certificate,
) -> Result<String, CryptoError> {
    let cert =
        x509_cert::Certificate::from_der(subject_from.der()).map_err(CryptoError::internal)?;
    let info = CertReqInfo {
        version: Version::V1,
        subject: cert.tbs_certificate().subject().clone(),
        public_key: key.spki()?,
        attributes: Default::default(),
    };
    let to_be_signed = info.to_der().map_err(CryptoError::internal)?;
    let (algorithm, signature) = key.sign(&to_be_signed)?;
    let request = CertReq {
        info,
        algorithm,
        signature: BitString::from_bytes(&signature).map_err(CryptoError::internal)?,
    };
    let der = request.to_der().map_err(CryptoError::internal)?;
    Ok(crate::pem::encode("CERTIFICATE REQUEST", &der))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::key::key_mismatch;

    const NOW: Timestamp = Timestamp::from_seconds(1_800_000_000);

    #[test]
    fn generated_certificate_has_the_promised_shape() {
        for algorithm in [
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384,
            KeyAlgorithm::Ed25519,
        ] {
            let (key, cert) = generate(
                algorithm,
                "CN=flow client, O=Example AG, OU=Integration, C=DE",
                30,
                NOW,
            )
            .unwrap();
            assert_eq!(key.algorithm(), KeyKind::from(algorithm));
            assert_eq!(key_mismatch(&key, &cert), None);
            let d = cert.details();
            assert_eq!(
                d.subject,
                "CN=flow client, O=Example AG, OU=Integration, C=DE"
            );
            assert_eq!(d.issuer, d.subject);
            assert!(d.self_signed && cert.is_self_signed());
            assert!(!d.is_ca);
            assert_eq!(d.serial_hex.len(), 32, "{}", d.serial_hex);
            assert!(u8::from_str_radix(&d.serial_hex[..2], 16).unwrap() < 0x80);
            assert_eq!(d.not_before, Timestamp::from_seconds(1_800_000_000 - 60));
            assert_eq!(d.not_after, NOW.plus_days(30));
            let expected_sig = match algorithm {
                KeyAlgorithm::EcP256 => "ecdsa-with-SHA256",
                KeyAlgorithm::EcP384 => "ecdsa-with-SHA384",
                KeyAlgorithm::Ed25519 => "Ed25519",
                _ => "sha256WithRSAEncryption",
            };
            assert_eq!(d.signature_algorithm, expected_sig);

            let (_, parsed) = x509_parser::parse_x509_certificate(cert.der()).unwrap();
            let extended_key_usage = parsed.extended_key_usage().unwrap().unwrap().value;
            assert!(
                extended_key_usage.client_auth
                    && extended_key_usage.email_protection
                    && !extended_key_usage.server_auth
            );
            let key_usage = parsed.key_usage().unwrap().unwrap().value;
            assert!(
                key_usage.digital_signature()
                    && key_usage.non_repudiation()
                    && !key_usage.key_cert_sign()
            );
            assert_eq!(
                key_usage.key_encipherment(),
                algorithm == KeyAlgorithm::Rsa2048
            );
            let basic_constraints = parsed.basic_constraints().unwrap().unwrap().value;
            assert!(!basic_constraints.ca);
        }
    }

    #[test]
    fn serials_differ() {
        let (_, a) = generate(KeyAlgorithm::EcP256, "CN=a", 1, NOW).unwrap();
        let (_, b) = generate(KeyAlgorithm::EcP256, "CN=a", 1, NOW).unwrap();
        assert_ne!(a.serial_hex(), b.serial_hex());
    }

    #[test]
    fn openssl_style_subject_gives_the_same_name() {
        let (_, a) = generate(KeyAlgorithm::Ed25519, "/C=DE/O=Example AG/CN=x", 1, NOW).unwrap();
        assert_eq!(a.subject(), "CN=x, O=Example AG, C=DE");
        let (_, b) = generate(KeyAlgorithm::Ed25519, r"CN=x\, y, O=Example AG", 1, NOW).unwrap();
        assert_eq!(b.subject(), r"CN=x\, y, O=Example AG");
    }

    #[test]
    fn bad_parameters_are_user_errors() {
        let err = generate(KeyAlgorithm::EcP256, "O=no cn", 1, NOW).unwrap_err();
        assert!(
            err.is_user_error() && err.to_string().contains("no CN"),
            "{err}"
        );
        let err = generate(KeyAlgorithm::EcP256, "CN=a", 0, NOW).unwrap_err();
        assert!(
            err.is_user_error() && err.to_string().contains("between 1 and 36500 days"),
            "{err}"
        );
        let err = generate(KeyAlgorithm::EcP256, "CN=a", 36_501, NOW).unwrap_err();
        assert!(err.to_string().contains("not 36501"), "{err}");
        let err = generate(
            KeyAlgorithm::EcP256,
            "CN=a",
            10,
            Timestamp::from_seconds(300_000_000_000),
        )
        .unwrap_err();
        assert!(
            err.is_user_error()
                && err
                    .to_string()
                    .contains("outside what a certificate can hold"),
            "{err}"
        );
    }

    #[test]
    fn csr_carries_subject_and_key() {
        let (key, cert) = generate(
            KeyAlgorithm::EcP384,
            "CN=csr test, O=Example AG, C=DE",
            5,
            NOW,
        )
        .unwrap();
        let pem = certificate_request(&key, &cert).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
        let blocks = crate::pem::parse_blocks(pem.as_bytes()).unwrap();
        let req = CertReq::from_der(&blocks[0].der).unwrap();
        assert_eq!(req.info.subject.to_der().unwrap(), cert.subject_der());
        assert_eq!(req.info.public_key.to_der().unwrap(), key.public_key_der());
        assert_eq!(req.algorithm.oid, crate::oids::ECDSA_WITH_SHA384);
    }
}
