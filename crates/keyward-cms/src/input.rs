//! Reading a CMS message in whatever form it comes: DER, BER (indefinite lengths), PEM
//! (`CMS`, `PKCS7`, `PKCS #7 SIGNED DATA`) or bare base64; and decoding its `SignedData`,
//! `EnvelopedData` or `AuthEnvelopedData`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cms::authenveloped_data::AuthEnvelopedData;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{EnvelopedData, RecipientInfo};
use cms::signed_data::SignedData;
use der::asn1::{ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode, EncodingRules, Sequence, SliceReader};
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::algorithm::{ID_SIGNED_DATA, oid_name};
use crate::encryption::{ID_AUTH_ENVELOPED_DATA, ID_ENVELOPED_DATA};
use crate::error::CmsError;

/// The binary encoding of `message`: PEM and base64 are decoded, binary is passed through.
pub(crate) fn binary(message: &[u8]) -> Result<Vec<u8>, CmsError> {
    let start = message
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(message.len());
    let trimmed = &message[start..];
    if trimmed.is_empty() {
        return Err(CmsError::Malformed("the CMS message is empty".to_owned()));
    }
    if trimmed.first() == Some(&0x30) {
        return Ok(trimmed.to_vec());
    }
    let Ok(text) = std::str::from_utf8(trimmed) else {
        return Err(not_cms());
    };
    if text.starts_with("-----BEGIN ") {
        return pem_body(text);
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    match STANDARD.decode(compact) {
        Ok(bytes) if bytes.first() == Some(&0x30) => Ok(bytes),
        _ => Err(not_cms()),
    }
}

fn not_cms() -> CmsError {
    CmsError::Malformed(
        "the input is not a CMS message: expected DER or BER, PEM (CMS or PKCS7) or base64"
            .to_owned(),
    )
}

fn pem_body(text: &str) -> Result<Vec<u8>, CmsError> {
    let mut lines = text.lines().map(str::trim);
    let begin = lines.next().unwrap_or_default();
    let label = begin
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.strip_suffix("-----"))
        .ok_or_else(|| CmsError::Malformed(format!("the PEM line {begin:?} is not valid")))?;
    if !["CMS", "PKCS7", "PKCS #7 SIGNED DATA"].contains(&label) {
        return Err(CmsError::Malformed(format!(
            "the PEM block is labelled {label:?}; a CMS message is labelled CMS or PKCS7"
        )));
    }
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        body.push_str(line);
    }
    if !ended {
        return Err(CmsError::Malformed(format!(
            "the PEM block has no line {end:?} (truncated?)"
        )));
    }
    STANDARD
        .decode(body)
        .map_err(|e| CmsError::Malformed(format!("the PEM block is not valid base64: {e}")))
}

/// Decodes a `ContentInfo`, as DER first and as BER otherwise, and returns it with the
/// encoding rules that read it.
fn content_info(bytes: &[u8]) -> Result<(ContentInfo, EncodingRules), CmsError> {
    match ContentInfo::from_der(bytes) {
        Ok(info) => Ok((info, EncodingRules::Der)),
        Err(der_error) => match ContentInfo::from_ber(bytes) {
            Ok(info) => Ok((info, EncodingRules::Ber)),
            Err(_) => Err(CmsError::Malformed(format!(
                "the input is not a readable CMS message (truncated or damaged?): {der_error}"
            ))),
        },
    }
}

/// Decodes a `ContentInfo` holding a `SignedData`, as DER first and as BER otherwise,
/// and returns it with its encapsulated content, if any.
pub(crate) fn signed_data(bytes: &[u8]) -> Result<(SignedData, Option<Vec<u8>>), CmsError> {
    let (info, rules) = content_info(bytes)?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(CmsError::Unsupported(format!(
            "the CMS message holds {} content, not signed data",
            oid_name(&info.content_type)
        )));
    }
    let damaged = |e: der::Error| {
        CmsError::Malformed(format!(
            "the signed data of the CMS message cannot be read (truncated or damaged?): {e}"
        ))
    };
    let signed = info
        .content
        .decode_as_encoding::<SignedData>(rules)
        .map_err(damaged)?;
    let content = encapsulated_content(info.content.value(), rules).map_err(damaged)?;
    Ok((signed, content))
}

/// `EncapsulatedContentInfo` with its content read as an OCTET STRING, so that BER's
/// constructed (chunked) OCTET STRINGs are put back together.
#[derive(Sequence)]
struct EncapsulatedOctets {
    #[allow(dead_code)]
    econtent_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    econtent: Option<OctetString>,
}

/// Reads the encapsulated content from the fields of a `SignedData` (`version`,
/// `digestAlgorithms`, `encapContentInfo`, ...).
fn encapsulated_content(fields: &[u8], rules: EncodingRules) -> der::Result<Option<Vec<u8>>> {
    let mut reader = SliceReader::new_with_encoding_rules(fields, rules)?;
    CmsVersion::decode(&mut reader)?;
    SetOfVec::<AlgorithmIdentifierOwned>::decode(&mut reader)?;
    let encapsulated = EncapsulatedOctets::decode(&mut reader)?;
    Ok(encapsulated
        .econtent
        .map(|octets| octets.into_bytes().into_vec()))
}

/// What decryption needs from an `EnvelopedData` or `AuthEnvelopedData`.
pub(crate) struct Envelope {
    /// The recipients, in the order of the message.
    pub(crate) recipients: Vec<RecipientInfo>,
    /// The contentEncryptionAlgorithm.
    pub(crate) algorithm: AlgorithmIdentifierOwned,
    /// The encrypted content; `None` when it is not in the message.
    pub(crate) ciphertext: Option<Vec<u8>>,
    /// Whether the message is an `AuthEnvelopedData`.
    pub(crate) authenticated: bool,
    /// The `mac` (GCM tag) of an `AuthEnvelopedData`.
    pub(crate) tag: Option<Vec<u8>>,
    /// The additional authenticated data: the DER of the authAttrs, when present.
    pub(crate) aad: Vec<u8>,
}

/// Decodes a `ContentInfo` holding an `EnvelopedData` or an `AuthEnvelopedData` (RFC 5083),
/// as DER first and as BER otherwise.
pub(crate) fn envelope(bytes: &[u8]) -> Result<Envelope, CmsError> {
    let (info, rules) = content_info(bytes)?;
    let damaged = |e: der::Error| {
        CmsError::Malformed(format!(
            "the enveloped data of the CMS message cannot be read (truncated or damaged?): {e}"
        ))
    };
    let (recipients, encrypted, authenticated, tag, aad) = if info.content_type == ID_ENVELOPED_DATA
    {
        let enveloped = info
            .content
            .decode_as_encoding::<EnvelopedData>(rules)
            .map_err(damaged)?;
        (
            enveloped.recip_infos.0.into_vec(),
            enveloped.encrypted_content,
            false,
            None,
            Vec::new(),
        )
    } else if info.content_type == ID_AUTH_ENVELOPED_DATA {
        let enveloped = info
            .content
            .decode_as_encoding::<AuthEnvelopedData>(rules)
            .map_err(damaged)?;
        let aad = match enveloped.auth_attrs {
            // RFC 5083 §2.2: the DER of the attributes with a SET OF tag.
            Some(attributes) => SetOfVec::try_from(attributes.into_vec())
                .and_then(|sorted| sorted.to_der())
                .map_err(damaged)?,
            None => Vec::new(),
        };
        (
            enveloped.recip_infos.0.into_vec(),
            enveloped.auth_encrypted_content_info,
            true,
            Some(enveloped.mac.into_bytes().into_vec()),
            aad,
        )
    } else if info.content_type == ID_SIGNED_DATA {
        return Err(CmsError::Unsupported(
            "the CMS message is signed, not encrypted; verify it instead".to_owned(),
        ));
    } else {
        return Err(CmsError::Unsupported(format!(
            "the CMS message holds {} content, not enveloped data",
            oid_name(&info.content_type)
        )));
    };
    Ok(Envelope {
        recipients,
        algorithm: encrypted.content_enc_alg,
        ciphertext: encrypted
            .encrypted_content
            .map(|octets| octets.into_bytes().into_vec()),
        authenticated,
        tag,
        aad,
    })
}
