//! CMS `EnvelopedData` (RFC 5652 §6) and `AuthEnvelopedData` (RFC 5083, with AES-GCM per
//! RFC 5084): [`encrypt`] for RSA recipients, [`recipients`] to see who can open a message,
//! and [`decrypt`] with one recipient's key and certificate.
//!
//! [`encrypt`] draws a random content-encryption key, encrypts the payload with it (AES-CBC
//! into an `EnvelopedData`, AES-GCM into an `AuthEnvelopedData`) and writes one version 0
//! `KeyTransRecipientInfo` per recipient, named by `IssuerAndSerialNumber`, holding that key
//! encrypted with the recipient's RSA public key. [`decrypt`] finds the `RecipientInfo` for
//! the certificate (by issuer and serial number or by subject key identifier), unwraps the
//! key with the RSA private key and decrypts the content. RSA runs through
//! `keyward-crypto`, AES on aws-lc-rs.
//!
//! Only key-transport recipients (RSA) are supported; messages for key-agreement (EC),
//! key-encryption-key or password recipients are refused with a message saying so.
//! AES-CBC content is not authenticated: a changed ciphertext usually breaks the padding,
//! but not always; use AES-GCM where that matters.

use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyAgreeRecipientIdentifier, KeyTransRecipientInfo,
    RecipientIdentifier, RecipientInfo, RecipientInfos,
};
use der::asn1::{Any, OctetString, SetOfVec};
use der::{Decode, Encode};
use keyward_crypto::{Certificate, CryptoError, KeyKind, PrivateKey, key_mismatch};
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::name::Name;
use zeroize::Zeroizing;

use crate::algorithm::ID_DATA;
use crate::encryption::{
    ContentAlgorithm, ContentEncryption, ID_AUTH_ENVELOPED_DATA, ID_ENVELOPED_DATA, KeyTransport,
    random, seal,
};
use crate::error::CmsError;
use crate::input;
use crate::sign::too_large;

/// How a `RecipientInfo` names the recipient's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecipientId {
    /// The certificate's issuer and serial number.
    IssuerSerial {
        /// The issuer name as DER.
        issuer_der: Vec<u8>,
        /// The serial number: the contents of its DER INTEGER (big-endian, two's complement).
        serial: Vec<u8>,
    },
    /// The certificate's subjectKeyIdentifier extension.
    SubjectKeyId(Vec<u8>),
}

impl RecipientId {
    /// Whether this identifier names `certificate`: issuer name (DER) and serial number
    /// are equal, or the key identifier equals the certificate's subjectKeyIdentifier.
    pub fn matches(&self, certificate: &Certificate) -> bool {
        let Ok(parsed) = x509_cert::Certificate::from_der(certificate.der()) else {
            return false;
        };
        let tbs = parsed.tbs_certificate();
        match self {
            RecipientId::IssuerSerial { issuer_der, serial } => {
                tbs.serial_number().as_bytes() == serial.as_slice()
                    && tbs
                        .issuer()
                        .to_der()
                        .is_ok_and(|der| der == issuer_der.as_slice())
            }
            RecipientId::SubjectKeyId(id) => tbs
                .get_extension::<SubjectKeyIdentifier>()
                .ok()
                .flatten()
                .is_some_and(|(_, ski)| ski.0.as_bytes() == id.as_slice()),
        }
    }

    fn from_rid(rid: &RecipientIdentifier) -> Self {
        match rid {
            RecipientIdentifier::IssuerAndSerialNumber(id) => Self::issuer_serial(id),
            RecipientIdentifier::SubjectKeyIdentifier(id) => {
                RecipientId::SubjectKeyId(id.0.as_bytes().to_vec())
            }
        }
    }

    fn issuer_serial(id: &IssuerAndSerialNumber) -> Self {
        RecipientId::IssuerSerial {
            // A Name that was just decoded encodes again; an empty issuer matches nothing.
            issuer_der: id.issuer.to_der().unwrap_or_default(),
            serial: id.serial_number.as_bytes().to_vec(),
        }
    }
}

impl std::fmt::Display for RecipientId {
    /// `issuer=CN=ca, O=Example serial=01ab` or `subjectKeyIdentifier=0a1b...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecipientId::IssuerSerial { issuer_der, serial } => {
                let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
                let serial_hex = if start == serial.len() {
                    "00".to_owned()
                } else {
                    hex(&serial[start..])
                };
                match Name::from_der(issuer_der) {
                    Ok(name) => write!(f, "issuer={name} serial={serial_hex}"),
                    Err(_) => write!(f, "issuer=(unreadable) serial={serial_hex}"),
                }
            }
            RecipientId::SubjectKeyId(id) => write!(f, "subjectKeyIdentifier={}", hex(id)),
        }
    }
}

/// Encrypts `payload` for `recipients` and returns a DER `ContentInfo`: an `EnvelopedData`
/// for AES-CBC, an `AuthEnvelopedData` for AES-GCM (12-byte nonce, 16-byte tag).
///
/// Every recipient gets a `KeyTransRecipientInfo` (version 0, `IssuerAndSerialNumber`) with
/// the content-encryption key encrypted by `transport`; a certificate given twice is
/// written once. DER orders the `RecipientInfo`s by their encoding, not as given.
///
/// # Errors
/// [`CmsError::InvalidParameter`] when there is no recipient or a recipient certificate
/// holds no RSA key; [`CmsError::Crypto`] / [`CmsError::Internal`] when encryption or
/// encoding fails.
pub fn encrypt(
    payload: &[u8],
    recipients: &[&Certificate],
    transport: KeyTransport,
    content: ContentEncryption,
) -> Result<Vec<u8>, CmsError> {
    if recipients.is_empty() {
        return Err(CmsError::InvalidParameter(
            "an encrypted message needs at least one recipient".to_owned(),
        ));
    }
    for recipient in recipients {
        if !matches!(recipient.key_kind(), Some(KeyKind::Rsa { .. })) {
            let key = recipient.key_kind().map_or_else(
                || "a key of another type".to_owned(),
                |k| format!("an {k} key"),
            );
            return Err(CmsError::InvalidParameter(format!(
                "the recipient certificate \"{}\" holds {key}; keyward encrypts only for RSA keys (key transport)",
                recipient.subject()
            )));
        }
    }
    let key = random(content.key_len())?;
    let mut recipient_infos: Vec<RecipientInfo> = Vec::with_capacity(recipients.len());
    let mut seen: Vec<&[u8]> = Vec::with_capacity(recipients.len());
    for recipient in recipients {
        if seen.contains(&recipient.der()) {
            continue;
        }
        seen.push(recipient.der());
        recipient_infos.push(recipient_info(recipient, transport, &key)?);
    }
    let recip_infos =
        RecipientInfos(SetOfVec::try_from(recipient_infos).map_err(CmsError::internal)?);
    let sealed = seal(content, &key, payload)?;
    let encrypted_content = EncryptedContentInfo {
        content_type: ID_DATA,
        content_enc_alg: sealed.identifier,
        encrypted_content: Some(OctetString::new(sealed.ciphertext).map_err(too_large)?),
    };
    let info = match sealed.tag {
        None => ContentInfo {
            content_type: ID_ENVELOPED_DATA,
            content: Any::encode_from(&EnvelopedData {
                version: CmsVersion::V0,
                originator_info: None,
                recip_infos,
                encrypted_content,
                unprotected_attrs: None,
            })
            .map_err(too_large)?,
        },
        Some(tag) => ContentInfo {
            content_type: ID_AUTH_ENVELOPED_DATA,
            content: Any::encode_from(&cms::authenveloped_data::AuthEnvelopedData {
                version: CmsVersion::V0,
                originator_info: None,
                recip_infos,
                auth_encrypted_content_info: encrypted_content,
                auth_attrs: None,
                mac: OctetString::new(tag).map_err(CmsError::internal)?,
                unauth_attrs: None,
            })
            .map_err(too_large)?,
        },
    };
    info.to_der().map_err(too_large)
}

fn recipient_info(
    recipient: &Certificate,
    transport: KeyTransport,
    key: &[u8],
) -> Result<RecipientInfo, CmsError> {
    let parsed = x509_cert::Certificate::from_der(recipient.der()).map_err(CmsError::internal)?;
    let tbs = parsed.tbs_certificate();
    let encrypted_key = recipient.rsa_encrypt(transport.padding(), key)?;
    Ok(RecipientInfo::Ktri(KeyTransRecipientInfo {
        version: CmsVersion::V0,
        rid: RecipientIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        }),
        key_enc_alg: transport.identifier()?,
        enc_key: OctetString::new(encrypted_key).map_err(CmsError::internal)?,
    }))
}

/// The key-transport recipients of an `EnvelopedData` or `AuthEnvelopedData` message (DER,
/// BER, PEM or base64), in the order of the message. Recipients of other kinds (key
/// agreement, key-encryption keys, passwords) are not listed: keyward cannot decrypt for
/// them.
///
/// # Errors
/// [`CmsError::Malformed`] / [`CmsError::Unsupported`] for input that is not a readable
/// enveloped message.
pub fn recipients(message: &[u8]) -> Result<Vec<RecipientId>, CmsError> {
    let bytes = input::binary(message)?;
    let envelope = input::envelope(&bytes)?;
    Ok(envelope
        .recipients
        .iter()
        .filter_map(|info| match info {
            RecipientInfo::Ktri(ktri) => Some(RecipientId::from_rid(&ktri.rid)),
            _ => None,
        })
        .collect())
}

/// Decrypts an `EnvelopedData` or `AuthEnvelopedData` message (DER, BER, PEM or base64)
/// with the private key of `certificate`, and returns the content.
///
/// The `RecipientInfo` is the first key-transport recipient that names `certificate`.
/// With RSA PKCS#1 v1.5 key transport, a key that does not unwrap is replaced by a random
/// one, so that the only failure anyone sees is the content's (RFC 3218 §2.3.2).
///
/// # Errors
/// - [`CmsError::InvalidParameter`] when `key` does not belong to `certificate` or is not
///   an RSA key;
/// - [`CmsError::NotRecipient`] when the message has no recipient info for `certificate`;
/// - [`CmsError::DecryptionFailed`] when the key does not open the message or the message
///   was changed (a GCM tag that does not match, broken CBC padding);
/// - [`CmsError::Malformed`] / [`CmsError::Unsupported`] for input that is not a readable
///   enveloped message or uses algorithms keyward does not support.
///
/// AES-CBC content is not authenticated: a changed ciphertext or a wrong key is noticed
/// through the padding most of the time, but may also yield garbage.
pub fn decrypt(
    message: &[u8],
    key: &PrivateKey,
    certificate: &Certificate,
) -> Result<Vec<u8>, CmsError> {
    if let Some(problem) = key_mismatch(key, certificate) {
        return Err(CmsError::InvalidParameter(format!(
            "the private key does not belong to the certificate \"{}\": {problem}",
            certificate.subject()
        )));
    }
    if !matches!(key.algorithm(), KeyKind::Rsa { .. }) {
        return Err(CmsError::InvalidParameter(format!(
            "an {} key cannot decrypt a CMS message; keyward decrypts only with RSA keys (key transport)",
            key.algorithm()
        )));
    }
    let bytes = input::binary(message)?;
    let envelope = input::envelope(&bytes)?;
    let recipient = find_recipient(&envelope.recipients, certificate)?;
    let transport =
        KeyTransport::from_identifier(&recipient.key_enc_alg).map_err(CmsError::Unsupported)?;
    let algorithm = ContentAlgorithm::from_identifier(&envelope.algorithm)?;
    if algorithm.content.is_authenticated() != envelope.authenticated {
        return Err(CmsError::Unsupported(if envelope.authenticated {
            format!(
                "authenticated enveloped data with {} content is not supported",
                algorithm.content
            )
        } else {
            format!(
                "{} content must be in authenticated enveloped data (RFC 5083), not in enveloped data",
                algorithm.content
            )
        }));
    }
    let ciphertext = envelope.ciphertext.as_deref().ok_or_else(|| {
        CmsError::Unsupported(
            "the message does not contain its encrypted content (detached content is not supported)"
                .to_owned(),
        )
    })?;
    let subject = certificate.subject();
    let failed = |why: &str| {
        CmsError::DecryptionFailed(format!(
            "the message cannot be decrypted with the key of \"{subject}\": wrong key, or the message was damaged or tampered with ({why})"
        ))
    };
    let content_key = unwrap_key(
        key,
        transport,
        recipient.enc_key.as_bytes(),
        algorithm.content.key_len(),
    )
    .map_err(|e| match e {
        CmsError::Crypto(CryptoError::Decryption(_)) => {
            failed("the encrypted key does not decrypt")
        }
        other => other,
    })?;
    algorithm.open(
        &content_key,
        ciphertext,
        envelope.tag.as_deref(),
        &envelope.aad,
        failed,
    )
}

/// The first key-transport recipient naming `certificate`, or why there is none.
fn find_recipient<'a>(
    infos: &'a [RecipientInfo],
    certificate: &Certificate,
) -> Result<&'a KeyTransRecipientInfo, CmsError> {
    let mut transport_recipients = Vec::new();
    let mut agreement_match = false;
    let mut other_kinds = 0usize;
    for info in infos {
        match info {
            RecipientInfo::Ktri(ktri) => {
                let id = RecipientId::from_rid(&ktri.rid);
                if id.matches(certificate) {
                    return Ok(ktri);
                }
                transport_recipients.push(id.to_string());
            }
            RecipientInfo::Kari(kari) => {
                other_kinds += 1;
                agreement_match |= kari
                    .recipient_enc_keys
                    .iter()
                    .any(|encrypted| match &encrypted.rid {
                        KeyAgreeRecipientIdentifier::IssuerAndSerialNumber(id) => {
                            RecipientId::issuer_serial(id).matches(certificate)
                        }
                        KeyAgreeRecipientIdentifier::RKeyId(id) => RecipientId::SubjectKeyId(
                            id.subject_key_identifier.0.as_bytes().to_vec(),
                        )
                        .matches(certificate),
                    });
            }
            _ => other_kinds += 1,
        }
    }
    if agreement_match {
        return Err(CmsError::Unsupported(format!(
            "the certificate \"{}\" is a key-agreement recipient of the message; keyward decrypts only for key-transport (RSA) recipients",
            certificate.subject()
        )));
    }
    let mut listed = if transport_recipients.is_empty() {
        "the message has no key-transport recipients".to_owned()
    } else {
        format!("its recipients are {}", transport_recipients.join("; "))
    };
    if other_kinds > 0 {
        listed.push_str(&format!(
            " (and {other_kinds} recipient(s) of kinds keyward does not support)"
        ));
    }
    Err(CmsError::NotRecipient(format!(
        "the certificate \"{}\" (issuer={} serial={}) is not a recipient of the message; {listed}",
        certificate.subject(),
        certificate.issuer(),
        certificate.serial_hex()
    )))
}

/// Unwraps the content-encryption key of `len` bytes.
fn unwrap_key(
    key: &PrivateKey,
    transport: KeyTransport,
    encrypted_key: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, CmsError> {
    match transport {
        KeyTransport::RsaPkcs1v15 => {
            // Against Bleichenbacher's padding oracle (RFC 3218 §2.3.2): when the encrypted
            // key does not unwrap to a key of the right length, go on with a random key,
            // so that a bad padding shows only as a failed content decryption later, the
            // same as a wrong key. This hides the error, not the time taken.
            let mut content_key = random(len)?;
            if let Ok(unwrapped) = key.rsa_decrypt(transport.padding(), encrypted_key)
                && unwrapped.len() == len
            {
                content_key.copy_from_slice(&unwrapped);
            }
            Ok(content_key)
        }
        KeyTransport::RsaOaep(_) => {
            let unwrapped = key.rsa_decrypt(transport.padding(), encrypted_key)?;
            if unwrapped.len() != len {
                return Err(CmsError::Crypto(CryptoError::Decryption(
                    "the encrypted key has the wrong length".to_owned(),
                )));
            }
            Ok(unwrapped)
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
