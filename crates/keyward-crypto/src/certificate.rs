//! X.509 certificates: [`Certificate`] (validated DER) and [`CertificateDetails`], the
//! facts keyward shows and stores about a certificate (names, serial, validity,
//! algorithms, fingerprints).
//!
//! A certificate is parsed once when it is created, with both `x509-cert` (names, exact
//! encodings) and `x509-parser` (extensions, public key, times); anything either parser
//! refuses is refused, so every accessor afterwards is infallible.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest::{SHA1_FOR_LEGACY_USE_ONLY, SHA256, digest};
use der::{Decode, Encode};
use keyward_domain::Timestamp;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::dn::format_name;
use crate::error::CryptoError;
use crate::key::{CertificateKey, KeyKind, certificate_key};
use crate::oids;

/// Facts about a certificate, for display and storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateDetails {
    /// Subject DN in RFC 4514 order, e.g. `CN=a, O=b, C=DE`.
    pub subject: String,
    /// Issuer DN, same form as `subject`.
    pub issuer: String,
    /// Serial number as lowercase hex without colons or leading zero bytes.
    pub serial_hex: String,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// Signature algorithm as OpenSSL names it, e.g. `sha256WithRSAEncryption`,
    /// `ecdsa-with-SHA256`, `Ed25519` (the dotted OID for unknown ones).
    pub signature_algorithm: String,
    /// Public key algorithm: `RSA`, `EC`, `Ed25519`, or another name or OID.
    pub key_algorithm: String,
    /// Public key size in bits (RSA modulus size, curve size, 256 for Ed25519).
    pub key_size_bits: u32,
    /// The curve for EC keys, e.g. `P-256`.
    pub curve: Option<String>,
    /// SHA-1 fingerprint of the DER, uppercase hex with colons (as `openssl x509 -fingerprint`).
    pub sha1_fingerprint: String,
    /// SHA-256 fingerprint of the DER, same form.
    pub sha256_fingerprint: String,
    /// Whether basic constraints mark it as a CA.
    pub is_ca: bool,
    /// Whether subject and issuer are the same (and key identifiers, when present, agree).
    pub self_signed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    details: CertificateDetails,
    subject_der: Vec<u8>,
    issuer_der: Vec<u8>,
    serial_number_der: Vec<u8>,
    is_canonical_der: bool,
    key: CertificateKey,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    key_kind: Option<KeyKind>,
}

/// An X.509 certificate (DER), known to parse.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    parsed: Arc<Parsed>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.parsed.details.subject)
            .field("issuer", &self.parsed.details.issuer)
            .field("serial", &self.parsed.details.serial_hex)
            .field("not_after", &self.parsed.details.not_after)
            .finish()
    }
}

/// Uppercase hex with colons between bytes.
pub(crate) fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Certificate {
    /// Reads a DER certificate.
    ///
    /// # Errors
    /// [`CryptoError::InvalidCertificate`] saying why the bytes are not a certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CryptoError> {
        Self::parse(der).map_err(|reason| {
            CryptoError::InvalidCertificate(format!("not a valid X.509 certificate: {reason}"))
        })
    }

    /// Reads a DER certificate; the error is only the reason, for callers that add where the
    /// certificate came from.
    pub(crate) fn parse(der: &[u8]) -> Result<Self, String> {
        let rc = x509_cert::Certificate::from_der(der).map_err(|e| e.to_string())?;
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!(
                "{} bytes of trailing data after the certificate",
                rest.len()
            ));
        }
        let tbs = rc.tbs_certificate();
        let subject_der = tbs.subject().to_der().map_err(|e| e.to_string())?;
        let issuer_der = tbs.issuer().to_der().map_err(|e| e.to_string())?;
        let serial_number_der = tbs.serial_number().to_der().map_err(|e| e.to_string())?;
        let is_canonical_der = rc.to_der().is_ok_and(|encoded| encoded == der);

        let mut subject_key_id = None;
        let mut authority_key_id = None;
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(id.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    authority_key_id = aki.key_identifier.as_ref().map(|id| id.0.to_vec());
                }
                _ => {}
            }
        }

        let serial = cert.raw_serial();
        let first_significant = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
        let serial_hex = if first_significant == serial.len() {
            "00".to_owned()
        } else {
            hex::encode(&serial[first_significant..])
        };

        let key = certificate_key(der);
        let (key_algorithm, key_size_bits, curve, key_kind) = match &key {
            CertificateKey::Known(kind, _) => match *kind {
                KeyKind::Rsa { bits } => ("RSA".to_owned(), bits, None, Some(*kind)),
                KeyKind::EcP256 => ("EC".to_owned(), 256, Some("P-256".to_owned()), Some(*kind)),
                KeyKind::EcP384 => ("EC".to_owned(), 384, Some("P-384".to_owned()), Some(*kind)),
                KeyKind::Ed25519 => ("Ed25519".to_owned(), 256, None, Some(*kind)),
            },
            CertificateKey::Other(name) => {
                let bits = cert
                    .public_key()
                    .parsed()
                    .map(|k| u32::try_from(k.key_size()).unwrap_or(0))
                    .unwrap_or(0);
                match name.strip_prefix("EC ") {
                    Some(curve) => ("EC".to_owned(), bits, Some(curve.to_owned()), None),
                    None => (name.clone(), bits, None, None),
                }
            }
        };

        let names_match = subject_der == issuer_der;
        let ids_agree = match (&subject_key_id, &authority_key_id) {
            (Some(s), Some(a)) => s == a,
            _ => true,
        };
        let details = CertificateDetails {
            subject: format_name(tbs.subject()),
            issuer: format_name(tbs.issuer()),
            serial_hex,
            not_before: Timestamp::from_seconds(cert.validity().not_before.timestamp()),
            not_after: Timestamp::from_seconds(cert.validity().not_after.timestamp()),
            signature_algorithm: oids::signature_algorithm_name(
                &cert.signature_algorithm.algorithm.to_id_string(),
            ),
            key_algorithm,
            key_size_bits,
            curve,
            sha1_fingerprint: colon_hex(digest(&SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()),
            sha256_fingerprint: colon_hex(digest(&SHA256, der).as_ref()),
            is_ca: cert.is_ca(),
            self_signed: names_match && ids_agree,
        };
        Ok(Self {
            der: der.to_vec(),
            parsed: Arc::new(Parsed {
                details,
                subject_der,
                issuer_der,
                serial_number_der,
                is_canonical_der,
                key,
                subject_key_id,
                authority_key_id,
                key_kind,
            }),
        })
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as one PEM `CERTIFICATE` block (LF line endings, trailing newline).
    pub fn to_pem(&self) -> String {
        crate::pem::encode("CERTIFICATE", &self.der)
    }

    /// All details at once.
    pub fn details(&self) -> CertificateDetails {
        self.parsed.details.clone()
    }

    /// Start of validity.
    pub fn not_before(&self) -> Timestamp {
        self.parsed.details.not_before
    }

    /// End of validity.
    pub fn not_after(&self) -> Timestamp {
        self.parsed.details.not_after
    }

    /// Subject DN in RFC 4514 order, e.g. `CN=a, O=b, C=DE`.
    pub fn subject(&self) -> String {
        self.parsed.details.subject.clone()
    }

    /// Issuer DN, same form as [`Certificate::subject`].
    pub fn issuer(&self) -> String {
        self.parsed.details.issuer.clone()
    }

    /// Serial number as lowercase hex without colons.
    pub fn serial_hex(&self) -> String {
        self.parsed.details.serial_hex.clone()
    }

    /// SHA-256 fingerprint, uppercase hex with colons.
    pub fn sha256_fingerprint(&self) -> String {
        self.parsed.details.sha256_fingerprint.clone()
    }

    /// Whether subject and issuer are the same (and key identifiers, when present, agree).
    pub fn is_self_signed(&self) -> bool {
        self.parsed.details.self_signed
    }

    /// Whether basic constraints mark it as a CA.
    pub fn is_ca(&self) -> bool {
        self.parsed.details.is_ca
    }

    /// The kind of public key, when it is one keyward supports.
    pub fn key_kind(&self) -> Option<KeyKind> {
        self.parsed.key_kind
    }

    /// Whether `issuer` may have issued this certificate: its subject is this certificate's
    /// issuer, and key identifiers, when both are present, agree. Signatures are not checked.
    pub fn is_issued_by(&self, issuer: &Certificate) -> bool {
        if self.parsed.issuer_der != issuer.parsed.subject_der {
            return false;
        }
        match (&self.parsed.authority_key_id, &issuer.parsed.subject_key_id) {
            (Some(a), Some(s)) => a == s,
            _ => true,
        }
    }

    /// The subject DN as DER.
    pub fn subject_der(&self) -> &[u8] {
        &self.parsed.subject_der
    }

    /// The issuer DN as DER.
    pub fn issuer_der(&self) -> &[u8] {
        &self.parsed.issuer_der
    }

    /// The serial number as a DER `INTEGER` (tag, length and value), as it appears in the
    /// certificate.
    pub fn serial_number_der(&self) -> &[u8] {
        &self.parsed.serial_number_der
    }

    /// Whether [`Certificate::der`] is exactly what a DER encoder writes for the
    /// certificate's fields, so that it can be copied into other DER structures unchanged.
    /// Certificates from conforming CAs are; a certificate that is not has to be decoded
    /// and encoded again first.
    pub fn is_canonical_der(&self) -> bool {
        self.parsed.is_canonical_der
    }

    /// The certificate's public key, for comparison with a private key.
    pub(crate) fn key(&self) -> &CertificateKey {
        &self.parsed.key
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_reason() {
        for input in [&b""[..], b"hello", &[0x30, 0x03, 0x02, 0x01, 0x01]] {
            let err = Certificate::from_der(input).unwrap_err();
            assert!(err.is_user_error());
            assert!(
                err.to_string()
                    .starts_with("not a valid X.509 certificate: "),
                "{err}"
            );
        }
    }

    #[test]
    fn colon_hex_is_uppercase() {
        assert_eq!(colon_hex(&[0x0a, 0xff, 0x00]), "0A:FF:00");
        assert_eq!(colon_hex(&[]), "");
    }
}
