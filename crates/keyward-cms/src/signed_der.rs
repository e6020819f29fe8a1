//! The `SignedData` structures as [`sign`](crate::sign()) writes them, borrowing what they
//! carry: the payload, certificates, the issuer and serial number of signer certificates
//! and `SignerInfo`s already encoded. They encode like the `cms` crate's `ContentInfo`,
//! `SignedData`, `EncapsulatedContentInfo` and `SignerInfo`, but the message is written in
//! one pass into one buffer instead of copying the payload at every level.

use cms::content_info::CmsVersion;
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef, SetOfVec};
use der::{Decode, Sequence, Tag, TagNumber};
use x509_cert::spki::AlgorithmIdentifierOwned;

/// `ContentInfo` (RFC 5652 §3) whose content is a `SignedData`.
#[derive(Sequence)]
pub(crate) struct ContentInfoRef<'a> {
    pub(crate) content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    pub(crate) content: SignedDataRef<'a>,
}

/// `SignedData` (RFC 5652 §5.1); certificates and `SignerInfo`s are complete DER
/// encodings.
#[derive(Sequence)]
pub(crate) struct SignedDataRef<'a> {
    pub(crate) version: CmsVersion,
    pub(crate) digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    pub(crate) encap_content_info: EncapsulatedContentInfoRef<'a>,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    pub(crate) certificates: Option<SetOfVec<AnyRef<'a>>>,
    pub(crate) signer_infos: SetOfVec<AnyRef<'a>>,
}

/// `EncapsulatedContentInfo` (RFC 5652 §5.2) with the content as an OCTET STRING.
#[derive(Sequence)]
pub(crate) struct EncapsulatedContentInfoRef<'a> {
    pub(crate) econtent_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub(crate) econtent: Option<&'a OctetStringRef>,
}

/// `SignerInfo` (RFC 5652 §5.3) with an `IssuerAndSerialNumber` signer identifier, signed
/// attributes and no unsigned attributes.
#[derive(Sequence)]
pub(crate) struct SignerInfoRef<'a> {
    pub(crate) version: CmsVersion,
    pub(crate) sid: IssuerAndSerialNumberRef<'a>,
    pub(crate) digest_algorithm: AlgorithmIdentifierOwned,
    /// The signed attributes: `[0] IMPLICIT SET OF Attribute`, built with
    /// [`signed_attributes`] from the DER that was signed.
    pub(crate) signed_attributes: AnyRef<'a>,
    pub(crate) signature_algorithm: AlgorithmIdentifierOwned,
    pub(crate) signature: &'a OctetStringRef,
}

/// `IssuerAndSerialNumber` (RFC 5652 §10.2.4): the issuer `Name` and the serial number
/// `INTEGER` as DER.
#[derive(Sequence)]
pub(crate) struct IssuerAndSerialNumberRef<'a> {
    pub(crate) issuer: AnyRef<'a>,
    pub(crate) serial_number: AnyRef<'a>,
}

/// The signedAttrs field of a `SignerInfo` from the DER of the `SET OF Attribute` that was
/// signed: the same contents under the tag `[0]` (RFC 5652 §5.4).
pub(crate) fn signed_attributes(signed: &[u8]) -> der::Result<AnyRef<'_>> {
    let set = AnyRef::from_der(signed)?;
    AnyRef::new(
        Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(0),
        },
        set.value(),
    )
}
