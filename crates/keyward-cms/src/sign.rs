//! Writing CMS `SignedData`: [`sign`] with one [`Signer`] per `SignerInfo`.
//!
//! Every `SignerInfo` is version 1 with an `IssuerAndSerialNumber` signer identifier and
//! carries the signed attributes contentType, messageDigest and, when asked, signingTime;
//! the signature covers the DER encoding of that SET OF attributes (RFC 5652 §5.4).
//! DER orders the members of a SET OF by their encoding, so the `SignerInfo`s, the digest
//! algorithms and the certificates appear in that order, not in the order given.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{Any, GeneralizedTime, OctetString, SetOfVec, UtcTime};
use der::{DateTime, Decode, Encode};
use keyward_crypto::{Chain, KeyKind, PrivateKey, key_mismatch};
use keyward_domain::Timestamp;
use x509_cert::attr::Attribute;
use x509_cert::time::Time;

use crate::algorithm::{
    DigestAlgorithm, ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNED_DATA, ID_SIGNING_TIME,
    IncludeCertificates, SignatureScheme, signature_identifier,
};
use crate::error::CmsError;

/// One signer of a message: a key, its certificate chain and how to sign.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The private key.
    pub key: &'a PrivateKey,
    /// The key's certificate chain; its leaf is the signer certificate.
    pub chain: &'a Chain,
    /// The digest algorithm. Ed25519 signers must use SHA-512 (RFC 8419); ECDSA signers
    /// use SHA-256 on P-256 and SHA-384 on P-384.
    pub digest: DigestAlgorithm,
    /// The signature scheme; `None` is the key's natural one (RSA: PKCS#1 v1.5, EC: ECDSA,
    /// Ed25519: Ed25519).
    pub scheme: Option<SignatureScheme>,
    /// Which certificates this signer adds to the message.
    pub include: IncludeCertificates,
    /// When set, written as the signed attribute signingTime.
    pub signing_time: Option<Timestamp>,
}

/// Signs `payload` and returns a DER `ContentInfo` holding a `SignedData` with one
/// `SignerInfo` per signer. With `detached`, the payload is not put into the message
/// (the verifier needs it separately).
///
/// The digestAlgorithms set holds each digest used once; the certificates set holds the
/// union of what each signer's [`IncludeCertificates`] asks for, each certificate once, and
/// is left out when empty.
///
/// # Errors
/// [`CmsError::InvalidParameter`] when there is no signer, a certificate does not belong
/// to its key, or a scheme or digest does not suit a key; [`CmsError::Crypto`] /
/// [`CmsError::Internal`] when signing or encoding fails.
pub fn sign(payload: &[u8], signers: &[Signer<'_>], detached: bool) -> Result<Vec<u8>, CmsError> {
    if signers.is_empty() {
        return Err(CmsError::InvalidParameter(
            "a signed message needs at least one signer".to_owned(),
        ));
    }
    let mut digest_algorithms = SetOfVec::new();
    let mut certificates: Vec<CertificateChoices> = Vec::new();
    let mut signer_infos = Vec::with_capacity(signers.len());
    for signer in signers {
        let identifier = signer.digest.identifier();
        if !digest_algorithms.iter().any(|known| known == &identifier) {
            digest_algorithms
                .insert(identifier)
                .map_err(CmsError::internal)?;
        }
        let included = match signer.include {
            IncludeCertificates::None => &[][..],
            IncludeCertificates::Signer => &signer.chain.certificates()[..1],
            IncludeCertificates::Chain => signer.chain.certificates(),
        };
        for certificate in included {
            let choice = CertificateChoices::Certificate(
                x509_cert::Certificate::from_der(certificate.der()).map_err(CmsError::internal)?,
            );
            if !certificates.contains(&choice) {
                certificates.push(choice);
            }
        }
        signer_infos.push(signer_info(payload, signer)?);
    }
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: if detached {
                None
            } else {
                Some(
                    Any::encode_from(&OctetString::new(payload).map_err(too_large)?)
                        .map_err(too_large)?,
                )
            },
        },
        certificates: if certificates.is_empty() {
            None
        } else {
            Some(CertificateSet(
                SetOfVec::try_from(certificates).map_err(CmsError::internal)?,
            ))
        },
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(signer_infos).map_err(CmsError::internal)?),
    };
    let info = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(too_large)?,
    };
    info.to_der().map_err(too_large)
}

pub(crate) fn too_large(e: der::Error) -> CmsError {
    if matches!(
        e.kind(),
        der::ErrorKind::Overflow | der::ErrorKind::Overlength
    ) {
        CmsError::InvalidParameter(format!("the payload is too large for a CMS message ({e})"))
    } else {
        CmsError::internal(e)
    }
}

fn signer_info(payload: &[u8], signer: &Signer<'_>) -> Result<SignerInfo, CmsError> {
    let leaf = signer.chain.leaf();
    if let Some(problem) = key_mismatch(signer.key, leaf) {
        return Err(CmsError::InvalidParameter(format!(
            "the signer certificate \"{}\" does not belong to the signing key: {problem}",
            leaf.subject()
        )));
    }
    let scheme = crypto_scheme(signer.key.algorithm(), signer.scheme, signer.digest)?;
    let parsed = x509_cert::Certificate::from_der(leaf.der()).map_err(CmsError::internal)?;
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: parsed.tbs_certificate().issuer().clone(),
        serial_number: parsed.tbs_certificate().serial_number().clone(),
    });

    let mut attributes = vec![
        attribute(ID_CONTENT_TYPE, Any::encode_from(&ID_DATA))?,
        attribute(
            ID_MESSAGE_DIGEST,
            Any::encode_from(
                &OctetString::new(signer.digest.digest(payload)).map_err(CmsError::internal)?,
            ),
        )?,
    ];
    if let Some(time) = signer.signing_time {
        attributes.push(attribute(
            ID_SIGNING_TIME,
            Any::encode_from(&signing_time(time)?),
        )?);
    }
    let signed_attributes = SetOfVec::try_from(attributes).map_err(CmsError::internal)?;
    let to_be_signed = signed_attributes.to_der().map_err(CmsError::internal)?;
    let signature = signer.key.sign_with(scheme, &to_be_signed)?;
    Ok(SignerInfo {
        version: CmsVersion::V1,
        sid,
        digest_alg: signer.digest.identifier(),
        signed_attrs: Some(signed_attributes),
        signature_algorithm: signature_identifier(scheme)?,
        signature: OctetString::new(signature).map_err(CmsError::internal)?,
        unsigned_attrs: None,
    })
}

fn attribute(
    oid: der::asn1::ObjectIdentifier,
    value: der::Result<Any>,
) -> Result<Attribute, CmsError> {
    let mut values = SetOfVec::new();
    values
        .insert(value.map_err(CmsError::internal)?)
        .map_err(CmsError::internal)?;
    Ok(Attribute { oid, values })
}

/// signingTime as RFC 5652 §11.3 asks: UTCTime from 1950 to 2049, GeneralizedTime otherwise.
fn signing_time(time: Timestamp) -> Result<Time, CmsError> {
    let out_of_range = || {
        CmsError::InvalidParameter(format!(
            "the signing time {time} cannot be written into a CMS message"
        ))
    };
    let seconds = u64::try_from(time.seconds()).map_err(|_| out_of_range())?;
    let date = DateTime::from_unix_duration(std::time::Duration::from_secs(seconds))
        .map_err(|_| out_of_range())?;
    if (1950..2050).contains(&date.year()) {
        Ok(Time::UtcTime(
            UtcTime::from_date_time(date).map_err(|_| out_of_range())?,
        ))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(date)))
    }
}

/// The keyward-crypto scheme for a key, the requested scheme and the digest, or why that
/// combination cannot sign.
fn crypto_scheme(
    kind: KeyKind,
    requested: Option<SignatureScheme>,
    digest: DigestAlgorithm,
) -> Result<keyward_crypto::SignatureScheme, CmsError> {
    use keyward_crypto::SignatureScheme as Scheme;
    let natural = match kind {
        KeyKind::Rsa { .. } => SignatureScheme::RsaPkcs1v15,
        KeyKind::EcP256 | KeyKind::EcP384 => SignatureScheme::Ecdsa,
        KeyKind::Ed25519 => SignatureScheme::Ed25519,
    };
    let scheme = requested.unwrap_or(natural);
    let hash = digest.hash();
    match (kind, scheme) {
        (KeyKind::Rsa { .. }, SignatureScheme::RsaPkcs1v15) => Ok(Scheme::RsaPkcs1v15(hash)),
        (KeyKind::Rsa { .. }, SignatureScheme::RsaPss) => Ok(Scheme::RsaPss(hash)),
        (KeyKind::EcP256, SignatureScheme::Ecdsa) if digest == DigestAlgorithm::Sha256 => {
            Ok(Scheme::Ecdsa(hash))
        }
        (KeyKind::EcP384, SignatureScheme::Ecdsa) if digest == DigestAlgorithm::Sha384 => {
            Ok(Scheme::Ecdsa(hash))
        }
        (KeyKind::EcP256 | KeyKind::EcP384, SignatureScheme::Ecdsa) => {
            let expected = if kind == KeyKind::EcP256 {
                DigestAlgorithm::Sha256
            } else {
                DigestAlgorithm::Sha384
            };
            Err(CmsError::InvalidParameter(format!(
                "an {kind} key signs with digest {expected}, not {digest}"
            )))
        }
        (KeyKind::Ed25519, SignatureScheme::Ed25519) if digest == DigestAlgorithm::Sha512 => {
            Ok(Scheme::Ed25519)
        }
        (KeyKind::Ed25519, SignatureScheme::Ed25519) => Err(CmsError::InvalidParameter(format!(
            "Ed25519 signers must use digest sha512 (RFC 8419), not {digest}"
        ))),
        _ => Err(CmsError::InvalidParameter(format!(
            "an {kind} key cannot sign with {scheme}"
        ))),
    }
}
