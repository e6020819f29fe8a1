//! Writing CMS `SignedData`: [`sign`] with one [`Signer`] per `SignerInfo`.
//!
//! Every `SignerInfo` is version 1 with an `IssuerAndSerialNumber` signer identifier and
//! carries the signed attributes contentType, messageDigest and, when asked, signingTime;
//! the signature covers the DER encoding of that SET OF attributes (RFC 5652 §5.4).
//! DER orders the members of a SET OF by their encoding, so the `SignerInfo`s, the digest
//! algorithms and the certificates appear in that order, not in the order given.

use std::borrow::Cow;
use std::sync::LazyLock;

use der::asn1::{GeneralizedTime, ObjectIdentifier, OctetStringRef, UtcTime};
use der::{DateTime, Decode, Encode, Header, Length, Tag};
use keyward_crypto::{Certificate, Chain, HashAlgorithm, KeyKind, PrivateKey, key_mismatch};
use keyward_domain::Timestamp;
use x509_cert::time::Time;

use crate::algorithm::{
    DigestAlgorithm, ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNING_TIME,
    IncludeCertificates, SignatureScheme, signature_identifier,
};
use crate::error::CmsError;
use crate::signed_der::{self, SignedDataParts, SignerInfoParts};

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
    let mut digest_algorithms: Vec<&[u8]> = digests
        .0
        .iter()
        .map(|(algorithm, _)| digest_identifier_der(*algorithm))
        .collect::<Result<Vec<_>, _>>()?;
    digest_algorithms.sort_unstable();
    certificates.sort_unstable();
    signer_infos.sort_unstable();
    signed_der::content_info(&SignedDataParts {
        digest_algorithms: &digest_algorithms,
        content: (!detached).then_some(payload),
        certificates: &certificates,
        signer_infos: &signer_infos,
    })
    .map_err(too_large)
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
    let digest =
        OctetStringRef::new(digests.of(signer.digest, payload)).map_err(CmsError::internal)?;
    let mut attributes = Attributes::default();
    attributes.push(ID_CONTENT_TYPE, &ID_DATA)?;
    attributes.push(ID_MESSAGE_DIGEST, &digest)?;
    if let Some(time) = signer.signing_time {
        attributes.push(ID_SIGNING_TIME, &signing_time(time)?)?;
    }
    let to_be_signed = attributes.set_of()?;
    let signature = signer.key.sign_with(scheme, &to_be_signed)?;
    signed_der::signer_info(&SignerInfoParts {
        issuer: leaf.issuer_der(),
        serial_number: leaf.serial_number_der(),
        digest_algorithm: digest_identifier_der(signer.digest)?,
        signed_attributes: &to_be_signed,
        signature_algorithm: signature_identifier_der(scheme)?,
        signature: &signature,
    })
    .map_err(CmsError::internal)
}

/// Every hash a scheme can name.
const HASHES: [HashAlgorithm; 3] = [
    HashAlgorithm::Sha256,
    HashAlgorithm::Sha384,
    HashAlgorithm::Sha512,
];

/// The DER of a digest `AlgorithmIdentifier`, encoded once per process.
fn digest_identifier_der(digest: DigestAlgorithm) -> Result<&'static [u8], CmsError> {
    static ENCODED: LazyLock<Vec<(DigestAlgorithm, der::Result<Vec<u8>>)>> = LazyLock::new(|| {
        DigestAlgorithm::ALL
            .into_iter()
            .map(|digest| (digest, digest.identifier().to_der()))
            .collect()
    });
    lookup(&ENCODED, &digest)
}

/// The DER of a signature `AlgorithmIdentifier`, encoded once per process.
fn signature_identifier_der(
    scheme: keyward_crypto::SignatureScheme,
) -> Result<&'static [u8], CmsError> {
    use keyward_crypto::SignatureScheme as Scheme;
    static ENCODED: LazyLock<Vec<(Scheme, der::Result<Vec<u8>>)>> = LazyLock::new(|| {
        let schemes = HASHES
            .into_iter()
            .flat_map(|hash| {
                [
                    Scheme::RsaPkcs1v15(hash),
                    Scheme::RsaPss(hash),
                    Scheme::Ecdsa(hash),
                ]
            })
            .chain([Scheme::Ed25519]);
        schemes
            .map(|scheme| {
                let encoded = signature_identifier(scheme)
                    .map_err(|_| der::Error::from(der::ErrorKind::Failed))
                    .and_then(|identifier| identifier.to_der());
                (scheme, encoded)
            })
            .collect()
    });
    lookup(&ENCODED, &scheme)
}

fn lookup<K: PartialEq + std::fmt::Debug>(
    table: &'static [(K, der::Result<Vec<u8>>)],
    key: &K,
) -> Result<&'static [u8], CmsError> {
    match table.iter().find(|(known, _)| known == key) {
        Some((_, Ok(encoded))) => Ok(encoded),
        Some((_, Err(e))) => Err(CmsError::internal(*e)),
        None => Err(CmsError::internal(format!("no encoding for {key:?}"))),
    }
}

/// Signed attributes being written (at most [`MAX_ATTRIBUTES`]): the DER of each
/// `Attribute`, one after the other in one buffer.
#[derive(Default)]
struct Attributes {
    encoded: Vec<u8>,
    /// Where each attribute ends in `encoded`; the first `count` are set.
    ends: [usize; MAX_ATTRIBUTES],
    count: usize,
}

/// contentType, messageDigest and signingTime.
const MAX_ATTRIBUTES: usize = 3;

impl Attributes {
    /// Adds an `Attribute` with one value.
    fn push(&mut self, oid: ObjectIdentifier, value: &impl Encode) -> Result<(), CmsError> {
        if self.count == MAX_ATTRIBUTES {
            return Err(CmsError::internal("too many signed attributes"));
        }
        let value_length = value.encoded_len().map_err(CmsError::internal)?;
        let fields = oid
            .encoded_len()
            .and_then(|oid| oid + value_length.for_tlv(Tag::Set)?)
            .map_err(CmsError::internal)?;
        if self.encoded.capacity() == 0 {
            self.encoded.reserve(128);
        }
        Header::new(Tag::Sequence, fields)
            .encode(&mut self.encoded)
            .and_then(|()| oid.encode(&mut self.encoded))
            .and_then(|()| Header::new(Tag::Set, value_length).encode(&mut self.encoded))
            .and_then(|()| value.encode(&mut self.encoded))
            .map_err(CmsError::internal)?;
        self.ends[self.count] = self.encoded.len();
        self.count += 1;
        Ok(())
    }

    /// The DER of the SET OF the attributes, which it puts in DER order (X.690 §11.6:
    /// ascending as octet strings).
    fn set_of(&self) -> Result<Vec<u8>, CmsError> {
        let mut members: [&[u8]; MAX_ATTRIBUTES] = [&[]; MAX_ATTRIBUTES];
        let mut start = 0;
        for (member, &end) in members.iter_mut().zip(&self.ends[..self.count]) {
            *member = &self.encoded[start..end];
            start = end;
        }
        let members = &mut members[..self.count];
        members.sort_unstable();
        let mut encoded = Vec::with_capacity(self.encoded.len() + 8);
        Length::try_from(self.encoded.len())
            .and_then(|length| Header::new(Tag::Set, length).encode(&mut encoded))
            .map_err(CmsError::internal)?;
        for member in members.iter() {
            encoded.extend_from_slice(member);
        }
        Ok(encoded)
    }
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
