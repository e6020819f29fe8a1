//! Checking CMS `SignedData`: [`verify`] gives a [`SignerReport`] for every `SignerInfo`
//! and decides, by [`Require`], whether the message as a whole verifies.
//!
//! For each signer: its certificate is looked up by `IssuerAndSerialNumber` or
//! `SubjectKeyIdentifier` among the trusted certificates, then among the certificates in
//! the message; the messageDigest attribute is compared with the content's digest; the
//! signature is checked over the DER of the signed attributes (or over the content when
//! there are none); the certificate must be valid at `now`. A certificate that came only
//! with the message counts only when a trusted certificate issued it (its signature is
//! checked). Revocation is not checked.

use cms::cert::CertificateChoices;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode};
use keyward_crypto::Certificate;
use keyward_domain::Timestamp;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::time::Time;

use crate::algorithm::{
    DigestAlgorithm, ID_CONTENT_TYPE, ID_MESSAGE_DIGEST, ID_SIGNING_TIME, Require, SignatureCheck,
    oid_name, signature_check,
};
use crate::error::CmsError;
use crate::input;

/// The verdict for one `SignerInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerReport {
    /// The signer certificate's subject DN, empty when the certificate was not found.
    pub subject: String,
    /// The issuer DN of the signer certificate (from the signer identifier when the
    /// certificate was not found).
    pub issuer: String,
    /// The serial number as lowercase hex (empty when the signer is named by key identifier
    /// and its certificate was not found).
    pub serial: String,
    /// The digest algorithm, e.g. `sha256` (the dotted OID for unknown ones).
    pub digest: String,
    /// The signature algorithm as OpenSSL names it, e.g. `ecdsa-with-SHA256`, `rsassaPss`.
    pub signature_algorithm: String,
    /// The signingTime attribute, when present.
    pub signing_time: Option<Timestamp>,
    /// `None` when this signer is valid, otherwise why not.
    pub problem: Option<String>,
}

impl SignerReport {
    /// Whether this signer's signature is valid and trusted.
    pub fn is_valid(&self) -> bool {
        self.problem.is_none()
    }
}

/// The content of a verified message and the verdict for every signer, in the order of
/// the message's `SignerInfo`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The signed content (the encapsulated content, or the detached content given).
    pub content: Vec<u8>,
    /// One report per `SignerInfo`.
    pub signers: Vec<SignerReport>,
}

/// Verifies a CMS `SignedData` message (DER, BER, PEM or base64).
///
/// `detached_content` is the content of a detached message; `trusted` are the certificates
/// the caller trusts (signer certificates or their issuers); `now` is the time at which
/// certificates must be valid.
///
/// # Errors
/// [`CmsError::Malformed`] / [`CmsError::Unsupported`] for input that is not a readable
/// signed message, [`CmsError::DetachedContentMissing`] for a detached message without
/// content, [`CmsError::InvalidParameter`] when the message has its content and a different
/// one is given, and [`CmsError::Verification`] (carrying every report) when the signers do
/// not satisfy `require`.
pub fn verify(
    message: &[u8],
    detached_content: Option<&[u8]>,
    trusted: &[Certificate],
    require: Require,
    now: Timestamp,
) -> Result<Verification, CmsError> {
    let bytes = input::binary(message)?;
    let (signed, encapsulated) = input::signed_data(&bytes)?;
    let content = content(encapsulated, detached_content)?;
    let candidates = candidates(&signed, trusted);
    let signers: Vec<SignerReport> = signed
        .signer_infos
        .0
        .iter()
        .map(|info| {
            check_signer(
                info,
                &signed.encap_content_info.econtent_type,
                &content,
                &candidates,
                trusted,
                now,
            )
        })
        .collect();
    let valid = signers.iter().filter(|s| s.is_valid()).count();
    let satisfied = match require {
        Require::All => valid == signers.len() && valid > 0,
        Require::Any => valid > 0,
    };
    let verification = Verification { content, signers };
    if satisfied {
        Ok(verification)
    } else {
        Err(CmsError::Verification {
            summary: summary(&verification, require, valid),
            verification,
        })
    }
}

fn summary(verification: &Verification, require: Require, valid: usize) -> String {
    let total = verification.signers.len();
    if total == 0 {
        return "the CMS message verification failed: the message has no signers".to_owned();
    }
    let needed = match require {
        Require::All => "all are required",
        Require::Any => "at least one is required",
    };
    let problems: Vec<String> = verification
        .signers
        .iter()
        .enumerate()
        .filter_map(|(index, report)| {
            report.problem.as_ref().map(|problem| {
                let name = if report.subject.is_empty() {
                    format!("issuer={} serial={}", report.issuer, report.serial)
                } else {
                    format!("\"{}\"", report.subject)
                };
                format!("signer {} ({name}): {problem}", index + 1)
            })
        })
        .collect();
    format!(
        "the CMS message verification failed: {valid} of {total} signers valid, {needed}; {}",
        problems.join("; ")
    )
}

fn content(encapsulated: Option<Vec<u8>>, detached: Option<&[u8]>) -> Result<Vec<u8>, CmsError> {
    match (encapsulated, detached) {
        (Some(inner), None) => Ok(inner),
        (Some(inner), Some(given)) if inner.as_slice() == given => Ok(inner),
        (Some(_), Some(_)) => Err(CmsError::InvalidParameter(
            "the message contains its content, and the separate content given differs from it"
                .to_owned(),
        )),
        (None, Some(given)) => Ok(given.to_vec()),
        (None, None) => Err(CmsError::DetachedContentMissing),
    }
}

/// A certificate that may be a signer's, with what a signer identifier is matched against.
struct Candidate {
    certificate: Certificate,
    issuer_der: Vec<u8>,
    serial: Vec<u8>,
    key_identifier: Option<Vec<u8>>,
    trusted: bool,
}

fn candidates(signed: &SignedData, trusted: &[Certificate]) -> Vec<Candidate> {
    let from_message = signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|choice| match choice {
            CertificateChoices::Certificate(c) => c
                .to_der()
                .ok()
                .and_then(|der| Certificate::from_der(&der).ok()),
            CertificateChoices::Other(_) => None,
        });
    trusted
        .iter()
        .map(|c| (c.clone(), true))
        .chain(from_message.map(|c| (c, false)))
        .filter_map(|(certificate, trusted)| {
            let parsed = x509_cert::Certificate::from_der(certificate.der()).ok()?;
            let tbs = parsed.tbs_certificate();
            Some(Candidate {
                issuer_der: tbs.issuer().to_der().ok()?,
                serial: tbs.serial_number().as_bytes().to_vec(),
                key_identifier: tbs
                    .get_extension::<SubjectKeyIdentifier>()
                    .ok()
                    .flatten()
                    .map(|(_, id)| id.0.as_bytes().to_vec()),
                certificate,
                trusted,
            })
        })
        .collect()
}

fn check_signer(
    info: &SignerInfo,
    content_type: &ObjectIdentifier,
    content: &[u8],
    candidates: &[Candidate],
    trusted: &[Certificate],
    now: Timestamp,
) -> SignerReport {
    let digest = DigestAlgorithm::from_oid(&info.digest_alg.oid);
    let mut report = SignerReport {
        subject: String::new(),
        issuer: String::new(),
        serial: String::new(),
        digest: digest.map_or_else(|| info.digest_alg.oid.to_string(), |d| d.to_string()),
        signature_algorithm: oid_name(&info.signature_algorithm.oid),
        signing_time: None,
        problem: None,
    };
    let found = match &info.sid {
        SignerIdentifier::IssuerAndSerialNumber(id) => {
            report.issuer = id.issuer.to_string();
            report.serial = serial_hex(id.serial_number.as_bytes());
            let issuer_der = id.issuer.to_der().unwrap_or_default();
            candidates
                .iter()
                .find(|c| c.issuer_der == issuer_der && c.serial == id.serial_number.as_bytes())
        }
        SignerIdentifier::SubjectKeyIdentifier(id) => candidates
            .iter()
            .find(|c| c.key_identifier.as_deref() == Some(id.0.as_bytes())),
    };
    if let Some(candidate) = found {
        report.subject = candidate.certificate.subject();
        report.issuer = candidate.certificate.issuer();
        report.serial = candidate.certificate.serial_hex();
    }
    let signed_attributes = info.signed_attrs.as_ref();
    if let Some(attributes) = signed_attributes {
        report.signing_time = single_value(attributes, &ID_SIGNING_TIME)
            .and_then(|value| value.decode_as::<Time>().ok())
            .and_then(|time| {
                i64::try_from(time.to_unix_duration().as_millis())
                    .ok()
                    .map(Timestamp::from_millis)
            });
    }
    report.problem = problem(info, digest, found, content_type, content, trusted, now).err();
    report
}

/// `Ok(())` when the signer is valid and trusted, otherwise why not.
fn problem(
    info: &SignerInfo,
    digest: Option<DigestAlgorithm>,
    found: Option<&Candidate>,
    content_type: &ObjectIdentifier,
    content: &[u8],
    trusted: &[Certificate],
    now: Timestamp,
) -> Result<(), String> {
    let Some(candidate) = found else {
        return Err(match &info.sid {
            SignerIdentifier::IssuerAndSerialNumber(id) => format!(
                "no certificate for signer issuer={} serial={}",
                id.issuer,
                serial_hex(id.serial_number.as_bytes())
            ),
            SignerIdentifier::SubjectKeyIdentifier(id) => format!(
                "no certificate for signer subjectKeyIdentifier={}",
                hex_string(id.0.as_bytes())
            ),
        });
    };
    let digest = digest.ok_or_else(|| {
        format!(
            "the digest algorithm {} is not supported",
            info.digest_alg.oid
        )
    })?;
    let to_be_signed = match &info.signed_attrs {
        Some(attributes) => {
            let message_digest = single_value(attributes, &ID_MESSAGE_DIGEST)
                .ok_or("the signed attributes have no single messageDigest")?
                .decode_as::<OctetString>()
                .map_err(|_| "the messageDigest attribute is not an OCTET STRING")?;
            if message_digest.as_bytes() != digest.digest(content).as_slice() {
                return Err(
                    "the content does not match the signed digest (tampered payload?)".to_owned(),
                );
            }
            let signed_type = single_value(attributes, &ID_CONTENT_TYPE)
                .ok_or("the signed attributes have no single contentType")?
                .decode_as::<ObjectIdentifier>()
                .map_err(|_| "the contentType attribute is not an object identifier")?;
            if signed_type != *content_type {
                return Err(format!(
                    "the signed contentType {signed_type} differs from the content's type {content_type}"
                ));
            }
            der_encoding(attributes)?
        }
        None => content.to_vec(),
    };
    let check = signature_check(&info.signature_algorithm, Some(digest))?;
    check_signature(
        &candidate.certificate,
        check,
        &to_be_signed,
        info.signature.as_bytes(),
    )
    .map_err(|e| match e {
        keyward_crypto::CryptoError::SignatureInvalid(_) => "signature does not verify".to_owned(),
        other => other.to_string(),
    })?;
    let certificate = &candidate.certificate;
    if now < certificate.not_before() {
        return Err(format!("not valid before {}", certificate.not_before()));
    }
    if now > certificate.not_after() {
        return Err(format!(
            "certificate expired on {}",
            certificate.not_after()
        ));
    }
    if candidate.trusted || trusted.contains(certificate) {
        return Ok(());
    }
    if trusted.is_empty() {
        return Err(
            "signer certificate is not trusted (no trusted certificates were given)".to_owned(),
        );
    }
    if trusted
        .iter()
        .any(|issuer| certificate.is_issued_by(issuer) && issued_by(certificate, issuer))
    {
        Ok(())
    } else {
        Err("signer certificate is not trusted".to_owned())
    }
}

/// The DER of the signed attributes as RFC 5652 §5.4 signs them: a SET OF in DER order
/// (a BER message may list them in another order).
fn der_encoding(attributes: &SetOfVec<Attribute>) -> Result<Vec<u8>, String> {
    let sorted = SetOfVec::try_from(attributes.as_slice().to_vec())
        .map_err(|e| format!("the signed attributes cannot be encoded: {e}"))?;
    sorted
        .to_der()
        .map_err(|e| format!("the signed attributes cannot be encoded: {e}"))
}

fn check_signature(
    certificate: &Certificate,
    check: SignatureCheck,
    message: &[u8],
    signature: &[u8],
) -> Result<(), keyward_crypto::CryptoError> {
    match check {
        SignatureCheck::Scheme(scheme) => certificate.verify_signature(scheme, message, signature),
        SignatureCheck::RsaPss { hash, salt_length } => {
            certificate.verify_rsa_pss_signature(hash, salt_length, message, signature)
        }
    }
}

/// Whether `issuer`'s key signed `certificate`.
fn issued_by(certificate: &Certificate, issuer: &Certificate) -> bool {
    let Ok(parsed) = x509_cert::Certificate::from_der(certificate.der()) else {
        return false;
    };
    let Ok(to_be_signed) = parsed.tbs_certificate().to_der() else {
        return false;
    };
    let Some(signature) = parsed.signature().as_bytes() else {
        return false;
    };
    let identifier = parsed.signature_algorithm();
    match signature_check(identifier, None) {
        Ok(check) => check_signature(issuer, check, &to_be_signed, signature).is_ok(),
        Err(_) => false,
    }
}

fn single_value<'a>(
    attributes: &'a SetOfVec<Attribute>,
    oid: &ObjectIdentifier,
) -> Option<&'a der::Any> {
    let mut matching = attributes.iter().filter(|a| a.oid == *oid);
    let attribute = matching.next()?;
    if matching.next().is_some() || attribute.values.len() != 1 {
        return None;
    }
    attribute.values.get(0)
}

fn serial_hex(bytes: &[u8]) -> String {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    if start == bytes.len() {
        "00".to_owned()
    } else {
        hex_string(&bytes[start..])
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
