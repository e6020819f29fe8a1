//! The DER of a `SignedData` message as [`sign`](crate::sign()) writes it, assembled from
//! parts that are already complete encodings: the payload, certificates, algorithm
//! identifiers, the issuer and serial number of signer certificates, the signed attributes
//! and the signatures.
//!
//! The layout is RFC 5652's `ContentInfo`, `SignedData`, `EncapsulatedContentInfo` and
//! `SignerInfo` (the same fields the `cms` crate's types encode); the tag-length headers
//! come from `der`'s [`Header`]. Every length is known before anything is written, so the
//! message is written front to back into one buffer of the right size and the payload is
//! copied once, without encoding each nested structure to learn its length first.

use der::asn1::AnyRef;
use der::{Decode, Encode, Header, Length, Tag, TagNumber};

/// `version INTEGER 1`, the `CMSVersion` of a `SignedData` and of a `SignerInfo` that
/// names its certificate by issuer and serial number (RFC 5652 §5.1, §5.3).
const VERSION_1: [u8; 3] = [0x02, 0x01, 0x01];

/// The DER of the OID id-signedData (1.2.840.113549.1.7.2).
const ID_SIGNED_DATA: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
];

/// The DER of the OID id-data (1.2.840.113549.1.7.1).
const ID_DATA: [u8; 11] = [
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
];

const SEQUENCE: Tag = Tag::Sequence;
const SET: Tag = Tag::Set;
const OCTET_STRING: Tag = Tag::OctetString;
/// `[0]` with constructed contents: EXPLICIT `[0]` wrappers and the IMPLICIT `[0]` of
/// certificates and signed attributes.
const CONTEXT_0: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber(0),
};

/// What goes into a `SignedData`; every member of a set is a complete DER encoding and the
/// sets are in DER order (ascending bytes, X.690 §11.6).
pub(crate) struct SignedDataParts<'a, C: AsRef<[u8]>> {
    /// The `AlgorithmIdentifier`s of the digests used.
    pub(crate) digest_algorithms: &'a [&'a [u8]],
    /// The payload, or `None` for a detached signature.
    pub(crate) content: Option<&'a [u8]>,
    /// The certificates; the field is left out when there are none.
    pub(crate) certificates: &'a [C],
    /// The `SignerInfo`s.
    pub(crate) signer_infos: &'a [Vec<u8>],
}

/// The DER of a `ContentInfo` holding the `SignedData` made of `parts`.
pub(crate) fn content_info<C: AsRef<[u8]>>(parts: &SignedDataParts<'_, C>) -> der::Result<Vec<u8>> {
    let digest_algorithms = total(parts.digest_algorithms)?;
    let certificates = total(parts.certificates)?;
    let signer_infos = total(parts.signer_infos)?;
    let econtent = match parts.content {
        // [0] EXPLICIT OCTET STRING
        Some(content) => tlv_len(tlv_len(content.len())?)?,
        None => 0,
    };
    let encap_content_info = ID_DATA.len() + econtent;
    let mut signed_data = add(&[
        VERSION_1.len(),
        tlv_len(digest_algorithms)?,
        tlv_len(encap_content_info)?,
        tlv_len(signer_infos)?,
    ])?;
    if !parts.certificates.is_empty() {
        signed_data = add(&[signed_data, tlv_len(certificates)?])?;
    }
    let content_info = add(&[ID_SIGNED_DATA.len(), tlv_len(tlv_len(signed_data)?)?])?;

    let mut out = Vec::with_capacity(tlv_len(content_info)?);
    header(&mut out, SEQUENCE, content_info)?;
    out.extend_from_slice(&ID_SIGNED_DATA);
    header(&mut out, CONTEXT_0, tlv_len(signed_data)?)?;
    header(&mut out, SEQUENCE, signed_data)?;
    out.extend_from_slice(&VERSION_1);
    set(&mut out, SET, parts.digest_algorithms, digest_algorithms)?;
    header(&mut out, SEQUENCE, encap_content_info)?;
    out.extend_from_slice(&ID_DATA);
    if let Some(content) = parts.content {
        header(&mut out, CONTEXT_0, tlv_len(content.len())?)?;
        header(&mut out, OCTET_STRING, content.len())?;
        out.extend_from_slice(content);
    }
    if !parts.certificates.is_empty() {
        set(&mut out, CONTEXT_0, parts.certificates, certificates)?;
    }
    set(&mut out, SET, parts.signer_infos, signer_infos)?;
    debug_assert_eq!(out.len(), out.capacity());
    Ok(out)
}

/// What goes into a `SignerInfo` with an `IssuerAndSerialNumber` signer identifier, signed
/// attributes and no unsigned attributes; each field is a complete DER encoding except
/// `signature`, the signature's bytes.
pub(crate) struct SignerInfoParts<'a> {
    /// The signer certificate's issuer `Name`.
    pub(crate) issuer: &'a [u8],
    /// The signer certificate's serial number `INTEGER`.
    pub(crate) serial_number: &'a [u8],
    /// The digest `AlgorithmIdentifier`.
    pub(crate) digest_algorithm: &'a [u8],
    /// The `SET OF Attribute` that was signed; it is written under the tag `[0]`
    /// (RFC 5652 §5.4).
    pub(crate) signed_attributes: &'a [u8],
    /// The signature `AlgorithmIdentifier`.
    pub(crate) signature_algorithm: &'a [u8],
    /// The signature value.
    pub(crate) signature: &'a [u8],
}

/// The DER of the `SignerInfo` made of `parts`.
pub(crate) fn signer_info(parts: &SignerInfoParts<'_>) -> der::Result<Vec<u8>> {
    let (set_tag, set_contents) = split_header(parts.signed_attributes)?;
    debug_assert_eq!(set_tag, SET);
    let sid = parts.issuer.len() + parts.serial_number.len();
    let signer_info = add(&[
        VERSION_1.len(),
        tlv_len(sid)?,
        parts.digest_algorithm.len(),
        tlv_len(set_contents.len())?,
        parts.signature_algorithm.len(),
        tlv_len(parts.signature.len())?,
    ])?;
    let mut out = Vec::with_capacity(tlv_len(signer_info)?);
    header(&mut out, SEQUENCE, signer_info)?;
    out.extend_from_slice(&VERSION_1);
    header(&mut out, SEQUENCE, sid)?;
    out.extend_from_slice(parts.issuer);
    out.extend_from_slice(parts.serial_number);
    out.extend_from_slice(parts.digest_algorithm);
    header(&mut out, CONTEXT_0, set_contents.len())?;
    out.extend_from_slice(set_contents);
    out.extend_from_slice(parts.signature_algorithm);
    header(&mut out, OCTET_STRING, parts.signature.len())?;
    out.extend_from_slice(parts.signature);
    debug_assert_eq!(out.len(), out.capacity());
    Ok(out)
}

/// The tag and the contents of one complete DER encoding (trailing bytes are an error).
fn split_header(encoding: &[u8]) -> der::Result<(Tag, &[u8])> {
    let any = AnyRef::from_der(encoding)?;
    Ok((der::Tagged::tag(&any), any.value()))
}

/// The length of a TLV whose contents are `length` bytes (every tag here is one byte).
fn tlv_len(length: usize) -> der::Result<usize> {
    let header = Header::new(SEQUENCE, Length::try_from(length)?).encoded_len()?;
    add(&[usize::try_from(header)?, length])
}

/// The sum of `lengths`, or an overflow error.
fn add(lengths: &[usize]) -> der::Result<usize> {
    lengths.iter().try_fold(0usize, |sum, length| {
        sum.checked_add(*length)
            .ok_or_else(|| der::ErrorKind::Overflow.into())
    })
}

/// The total length of `encodings`.
fn total<T: AsRef<[u8]>>(encodings: &[T]) -> der::Result<usize> {
    encodings
        .iter()
        .try_fold(0usize, |sum, encoding| add(&[sum, encoding.as_ref().len()]))
}

/// Appends the header of a TLV with `tag` and `length` bytes of contents.
fn header(out: &mut Vec<u8>, tag: Tag, length: usize) -> der::Result<()> {
    Header::new(tag, Length::try_from(length)?).encode(out)
}

/// Appends a set with `tag` whose members are `members` (`length` bytes in all).
fn set<T: AsRef<[u8]>>(
    out: &mut Vec<u8>,
    tag: Tag,
    members: &[T],
    length: usize,
) -> der::Result<()> {
    header(out, tag, length)?;
    for member in members {
        out.extend_from_slice(member.as_ref());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_long_form_past_127() {
        assert_eq!(tlv_len(0).unwrap(), 2);
        assert_eq!(tlv_len(127).unwrap(), 129);
        assert_eq!(tlv_len(128).unwrap(), 131);
        assert_eq!(tlv_len(256).unwrap(), 260);
        assert_eq!(tlv_len(70_000).unwrap(), 70_005);
    }

    #[test]
    fn split_header_refuses_trailing_and_missing_bytes() {
        let (tag, contents) = split_header(&[0x31, 0x02, 0x05, 0x00]).unwrap();
        assert_eq!(tag, SET);
        assert_eq!(contents, [0x05, 0x00]);
        assert!(split_header(&[0x31, 0x02, 0x05, 0x00, 0x00]).is_err());
        assert!(split_header(&[0x31, 0x03, 0x05, 0x00]).is_err());
    }

    #[test]
    fn the_constant_encodings_match_der() {
        use crate::algorithm::{ID_DATA as DATA, ID_SIGNED_DATA as SIGNED_DATA};
        assert_eq!(DATA.to_der().unwrap(), ID_DATA);
        assert_eq!(SIGNED_DATA.to_der().unwrap(), ID_SIGNED_DATA);
        assert_eq!(
            cms::content_info::CmsVersion::V1.to_der().unwrap(),
            VERSION_1
        );
    }
}
