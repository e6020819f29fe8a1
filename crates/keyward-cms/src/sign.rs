//! Writing CMS `SignedData`: [`sign`] with one [`Signer`] per `SignerInfo`.
//!
//! Every `SignerInfo` is version 1 with an `IssuerAndSerialNumber` signer identifier and
//! carries the signed attributes contentType, messageDigest and, when asked, signingTime;
//! the signature covers the DER encoding of that SET OF attributes (RFC 5652 §5.4).
//! DER orders the members of a SET OF by their encoding, so the `SignerInfo`s, the digest
//! algorithms and the certificates appear in that order, not in the order given.

use std::borrow::Cow;

use cms::content_info::CmsVersion;
use der::asn1::{AnyRef, GeneralizedTime, ObjectIdentifier, OctetStringRef, SetOfVec, UtcTime};
use der::{DateTime, Decode, Encode, Header, Length, Tag};
use keyward_crypto::{Certificate, Chain, KeyKind, PrivateKey, key_mismatch};
use keyward_domain::Timestamp;
use x509_cert::time::Time;

use crate::algorithm::{
    DigestAlgorithm, ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNED_DATA, ID_SIGNING_TIME,
    IncludeCertificates, SignatureScheme, signature_identifier,
};
use crate::error::CmsError;
use crate::signed_der::{
    ContentInfoRef, EncapsulatedContentInfoRef, IssuerAndSerialNumberRef, SignedDataRef,
    SignerInfoRef, signed_attributes,
};

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
    let mut digests = Digests::default();
    let mut certificates: Vec<Cow<'_, [u8]>> = Vec::new();
    let mut signer_infos = Vec::with_capacity(signers.len());
    for signer in signers {
        let included = match signer.include {
            IncludeCertificates::None => &[][..],
            IncludeCertificates::Signer => &signer.chain.certificates()[..1],
            IncludeCertificates::Chain => signer.chain.certificates(),
        };
        for certificate in included {
            let der = certificate_der(certificate)?;
            if !certificates.contains(&der) {
                certificates.push(der);
            }
        }
        signer_infos.push(signer_info(payload, signer, &mut digests)?);
    }
    let mut digest_algorithms = SetOfVec::new();
    for (algorithm, _) in &digests.0 {
        digest_algorithms
            .insert(algorithm.identifier())
            .map_err(CmsError::internal)?;
    }
    let certificates = if certificates.is_empty() {
        None
    } else {
        Some(encoded_set(&certificates)?)
    };
    let info = ContentInfoRef {
        content_type: ID_SIGNED_DATA,
        content: SignedDataRef {
            version: CmsVersion::V1,
            digest_algorithms,
            encap_content_info: EncapsulatedContentInfoRef {
                econtent_type: ID_DATA,
                econtent: if detached {
                    None
                } else {
                    Some(OctetStringRef::new(payload).map_err(too_large)?)
                },
            },
            certificates,
            signer_infos: encoded_set(&signer_infos)?,
        },
    };
    let length = usize::try_from(info.encoded_len().map_err(too_large)?)
        .map_err(|_| too_large(der::ErrorKind::Overflow.into()))?;
    // Appending to a Vec (through `std::io::Write`) instead of `encode_to_vec`, which fills
    // the buffer with zeros first.
    let mut message = Vec::with_capacity(length);
    info.encode(&mut message).map_err(too_large)?;
    Ok(message)
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

/// The content digests computed so far, one for each digest algorithm, in the order the
/// signers first use them.
#[derive(Default)]
struct Digests(Vec<(DigestAlgorithm, Vec<u8>)>);

impl Digests {
    /// The `algorithm` digest of `payload`, computed on first use.
    fn of(&mut self, algorithm: DigestAlgorithm, payload: &[u8]) -> &[u8] {
        let index = match self.0.iter().position(|(known, _)| *known == algorithm) {
            Some(index) => index,
            None => {
                self.0.push((algorithm, algorithm.digest(payload)));
                self.0.len() - 1
            }
        };
        &self.0[index].1
    }
}

/// A certificate's DER as it goes into the message: as stored when that is canonical DER
/// (nearly always), otherwise decoded and encoded again.
fn certificate_der(certificate: &Certificate) -> Result<Cow<'_, [u8]>, CmsError> {
    if certificate.is_canonical_der() {
        return Ok(Cow::Borrowed(certificate.der()));
    }
    let parsed = x509_cert::Certificate::from_der(certificate.der()).map_err(CmsError::internal)?;
    Ok(Cow::Owned(parsed.to_der().map_err(CmsError::internal)?))
}

/// A DER SET OF holding complete encodings, put in DER order.
fn encoded_set<'a, T: AsRef<[u8]>>(encodings: &'a [T]) -> Result<SetOfVec<AnyRef<'a>>, CmsError> {
    let members = encodings
        .iter()
        .map(|encoding| AnyRef::from_der(encoding.as_ref()))
        .collect::<der::Result<Vec<_>>>()
        .map_err(CmsError::internal)?;
    SetOfVec::try_from(members).map_err(CmsError::internal)
}

/// The DER of one signer's `SignerInfo`.
fn signer_info(
    payload: &[u8],
    signer: &Signer<'_>,
    digests: &mut Digests,
) -> Result<Vec<u8>, CmsError> {
    let leaf = signer.chain.leaf();
    if let Some(problem) = key_mismatch(signer.key, leaf) {
        return Err(CmsError::InvalidParameter(format!(
            "the signer certificate \"{}\" does not belong to the signing key: {problem}",
            leaf.subject()
        )));
    }
    let scheme = crypto_scheme(signer.key.algorithm(), signer.scheme, signer.digest)?;
    let sid = IssuerAndSerialNumberRef {
        issuer: AnyRef::from_der(leaf.issuer_der()).map_err(CmsError::internal)?,
        serial_number: AnyRef::from_der(leaf.serial_number_der()).map_err(CmsError::internal)?,
    };

    let digest =
        OctetStringRef::new(digests.of(signer.digest, payload)).map_err(CmsError::internal)?;
    let mut attributes = Vec::with_capacity(3);
    attributes.push(attribute(ID_CONTENT_TYPE, &ID_DATA)?);
    attributes.push(attribute(ID_MESSAGE_DIGEST, &digest)?);
    if let Some(time) = signer.signing_time {
        attributes.push(attribute(ID_SIGNING_TIME, &signing_time(time)?)?);
    }
    let to_be_signed = set_of(&mut attributes)?;
    let signature = signer.key.sign_with(scheme, &to_be_signed)?;
    let info = SignerInfoRef {
        version: CmsVersion::V1,
        sid,
        digest_algorithm: signer.digest.identifier(),
        signed_attributes: signed_attributes(&to_be_signed).map_err(CmsError::internal)?,
        signature_algorithm: signature_identifier(scheme)?,
        signature: OctetStringRef::new(&signature).map_err(CmsError::internal)?,
    };
    let mut encoded = Vec::with_capacity(signature.len() + to_be_signed.len() + 256);
    info.encode(&mut encoded).map_err(CmsError::internal)?;
    Ok(encoded)
}

/// The DER of an `Attribute` with one value.
fn attribute(oid: ObjectIdentifier, value: &impl Encode) -> Result<Vec<u8>, CmsError> {
    let values = value
        .encoded_len()
        .and_then(|length| length.for_tlv(Tag::Set))
        .map_err(CmsError::internal)?;
    let fields =
        (oid.encoded_len().map_err(CmsError::internal)? + values).map_err(CmsError::internal)?;
    let mut encoded = Vec::with_capacity(64);
    Header::new(Tag::Sequence, fields)
        .encode(&mut encoded)
        .and_then(|()| oid.encode(&mut encoded))
        .and_then(|()| Header::new(Tag::Set, value.encoded_len()?).encode(&mut encoded))
        .and_then(|()| value.encode(&mut encoded))
        .map_err(CmsError::internal)?;
    Ok(encoded)
}

/// The DER of a SET OF from the DER of its members, which it puts in DER order (X.690
/// §11.6: ascending as octet strings).
fn set_of(members: &mut [Vec<u8>]) -> Result<Vec<u8>, CmsError> {
    members.sort_unstable();
    let length = members.iter().map(Vec::len).sum::<usize>();
    let mut encoded = Vec::with_capacity(length + 8);
    Length::try_from(length)
        .and_then(|length| Header::new(Tag::Set, length).encode(&mut encoded))
        .map_err(CmsError::internal)?;
    for member in members.iter() {
        encoded.extend_from_slice(member);
    }
    Ok(encoded)
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
