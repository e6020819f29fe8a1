//! The choices an encrypting sender makes: [`KeyTransport`] (how the content-encryption
//! key reaches each recipient) and [`ContentEncryption`] (how the content is encrypted),
//! the algorithm identifiers they are written as (RFC 3560 RSAES-OAEP-params, RFC 3565
//! AES-CBC, RFC 5084 GCMParameters), and the AES operations on aws-lc-rs.
//!
//! Every enum parses from and displays as the lowercase name the command line and the API
//! use (`rsa-oaep`, `aes256-gcm`).

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    AES_128, AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use der::asn1::{Any, ObjectIdentifier, OctetString};
use der::{Decode, Encode, Sequence};
use keyward_crypto::{OaepHash, RsaEncryptionPadding};
use x509_cert::spki::AlgorithmIdentifierOwned;
use zeroize::Zeroizing;

use crate::algorithm::oid_name;
use crate::error::CmsError;

/// id-envelopedData
pub(crate) const ID_ENVELOPED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
/// id-ct-authEnvelopedData (RFC 5083)
pub(crate) const ID_AUTH_ENVELOPED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.23");

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const RSAES_OAEP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.7");
const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
const P_SPECIFIED: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.9");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const AES128_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
const AES128_GCM: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.6");
const AES192_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.22");
const AES192_GCM: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.26");
const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");
const AES256_GCM: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.46");
const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");

/// The length of an AES block and of a CBC initialisation vector.
const BLOCK_LEN: usize = 16;
/// The length of the GCM authentication tag keyward writes and reads.
pub(crate) const TAG_LEN: usize = 16;
/// The ICV length GCMParameters imply when they do not name one (RFC 5084).
const DEFAULT_TAG_LEN: u8 = 12;

/// How the content-encryption key is encrypted for each recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyTransport {
    /// RSAES-OAEP with the given hash and MGF1 over the same hash (`rsa-oaep` is SHA-256;
    /// `rsa-oaep-sha1`, `rsa-oaep-sha384`, `rsa-oaep-sha512`).
    RsaOaep(OaepHash),
    /// RSAES-PKCS1-v1_5 (`rsa-pkcs1`), for recipients that know nothing newer.
    RsaPkcs1v15,
}

impl KeyTransport {
    /// Every key transport, in the order of their names.
    pub const ALL: [KeyTransport; 5] = [
        KeyTransport::RsaOaep(OaepHash::Sha256),
        KeyTransport::RsaOaep(OaepHash::Sha1),
        KeyTransport::RsaOaep(OaepHash::Sha384),
        KeyTransport::RsaOaep(OaepHash::Sha512),
        KeyTransport::RsaPkcs1v15,
    ];

    pub(crate) fn padding(self) -> RsaEncryptionPadding {
        match self {
            KeyTransport::RsaOaep(hash) => RsaEncryptionPadding::Oaep(hash),
            KeyTransport::RsaPkcs1v15 => RsaEncryptionPadding::Pkcs1v15,
        }
    }

    /// The keyEncryptionAlgorithm keyward writes: `rsaEncryption` with NULL parameters, or
    /// `id-RSAES-OAEP` with RSAES-OAEP-params (empty for SHA-1, whose values are the
    /// defaults).
    pub(crate) fn identifier(self) -> Result<AlgorithmIdentifierOwned, CmsError> {
        match self {
            KeyTransport::RsaPkcs1v15 => Ok(AlgorithmIdentifierOwned {
                oid: RSA_ENCRYPTION,
                parameters: Some(Any::null()),
            }),
            KeyTransport::RsaOaep(hash) => {
                let parameters = if hash == OaepHash::Sha1 {
                    OaepParameters::default()
                } else {
                    let hash_identifier = AlgorithmIdentifierOwned {
                        oid: hash_oid(hash),
                        parameters: None,
                    };
                    OaepParameters {
                        mask_generation: Some(AlgorithmIdentifierOwned {
                            oid: MGF1,
                            parameters: Some(
                                Any::encode_from(&hash_identifier).map_err(CmsError::internal)?,
                            ),
                        }),
                        hash: Some(hash_identifier),
                        source: None,
                    }
                };
                Ok(AlgorithmIdentifierOwned {
                    oid: RSAES_OAEP,
                    parameters: Some(Any::encode_from(&parameters).map_err(CmsError::internal)?),
                })
            }
        }
    }

    /// Reads a keyEncryptionAlgorithm.
    pub(crate) fn from_identifier(identifier: &AlgorithmIdentifierOwned) -> Result<Self, String> {
        match identifier.oid {
            RSA_ENCRYPTION => Ok(KeyTransport::RsaPkcs1v15),
            RSAES_OAEP => oaep_from_parameters(identifier.parameters.as_ref()),
            other => Err(format!(
                "the key transport algorithm {} is not supported (only rsaEncryption and RSAES-OAEP)",
                oid_name(&other)
            )),
        }
    }
}

/// How the content is encrypted. CBC content goes into an `EnvelopedData`, GCM content
/// into an `AuthEnvelopedData` (RFC 5083), which also detects changes to the ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentEncryption {
    /// AES-128 in CBC mode with PKCS#7 padding (`aes128-cbc`).
    Aes128Cbc,
    /// AES-256 in CBC mode with PKCS#7 padding (`aes256-cbc`).
    Aes256Cbc,
    /// AES-128-GCM, 12-byte nonce, 16-byte tag (`aes128-gcm`).
    Aes128Gcm,
    /// AES-256-GCM, 12-byte nonce, 16-byte tag (`aes256-gcm`).
    Aes256Gcm,
}

impl ContentEncryption {
    /// Every content encryption, in the order of their names.
    pub const ALL: [ContentEncryption; 4] = [
        ContentEncryption::Aes128Cbc,
        ContentEncryption::Aes256Cbc,
        ContentEncryption::Aes128Gcm,
        ContentEncryption::Aes256Gcm,
    ];

    /// Whether the content is authenticated (GCM), and so written as `AuthEnvelopedData`.
    pub fn is_authenticated(self) -> bool {
        matches!(
            self,
            ContentEncryption::Aes128Gcm | ContentEncryption::Aes256Gcm
        )
    }

    /// The length of the content-encryption key in bytes.
    pub(crate) fn key_len(self) -> usize {
        match self {
            ContentEncryption::Aes128Cbc | ContentEncryption::Aes128Gcm => 16,
            ContentEncryption::Aes256Cbc | ContentEncryption::Aes256Gcm => 32,
        }
    }

    fn oid(self) -> ObjectIdentifier {
        match self {
            ContentEncryption::Aes128Cbc => AES128_CBC,
            ContentEncryption::Aes256Cbc => AES256_CBC,
            ContentEncryption::Aes128Gcm => AES128_GCM,
            ContentEncryption::Aes256Gcm => AES256_GCM,
        }
    }
}

/// RSAES-OAEP-params (RFC 8017 A.2.1). Fields at their DEFAULT (SHA-1, MGF1 over SHA-1,
/// empty label) are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Sequence)]
struct OaepParameters {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_generation: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    source: Option<AlgorithmIdentifierOwned>,
}

fn hash_oid(hash: OaepHash) -> ObjectIdentifier {
    match hash {
        OaepHash::Sha1 => SHA1,
        OaepHash::Sha256 => SHA256,
        OaepHash::Sha384 => SHA384,
        OaepHash::Sha512 => SHA512,
    }
}

fn oaep_hash(identifier: Option<&AlgorithmIdentifierOwned>) -> Result<OaepHash, String> {
    let Some(identifier) = identifier else {
        return Ok(OaepHash::Sha1);
    };
    OaepHash::ALL
        .into_iter()
        .find(|hash| hash_oid(*hash) == identifier.oid)
        .ok_or_else(|| {
            format!(
                "RSA-OAEP with hash {} is not supported",
                oid_name(&identifier.oid)
            )
        })
}

fn oaep_from_parameters(parameters: Option<&Any>) -> Result<KeyTransport, String> {
    let parameters = match parameters {
        None => OaepParameters::default(),
        Some(any) => any
            .to_der()
            .ok()
            .and_then(|der| OaepParameters::from_der(&der).ok())
            .ok_or_else(|| "the RSA-OAEP parameters cannot be read".to_owned())?,
    };
    let hash = oaep_hash(parameters.hash.as_ref())?;
    let mask_hash = match &parameters.mask_generation {
        None => OaepHash::Sha1,
        Some(mask) if mask.oid == MGF1 => {
            let inner = mask
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<AlgorithmIdentifierOwned>().ok())
                .ok_or_else(|| "the RSA-OAEP MGF1 parameters cannot be read".to_owned())?;
            oaep_hash(Some(&inner))?
        }
        Some(mask) => {
            return Err(format!(
                "the RSA-OAEP mask generation function {} is not supported",
                oid_name(&mask.oid)
            ));
        }
    };
    if mask_hash != hash {
        return Err(format!(
            "RSA-OAEP with {hash} but MGF1 over {mask_hash} is not supported"
        ));
    }
    if let Some(source) = &parameters.source {
        let empty_label = source.oid == P_SPECIFIED
            && source.parameters.as_ref().is_none_or(|p| {
                p.decode_as::<OctetString>()
                    .is_ok_and(|label| label.as_bytes().is_empty())
            });
        if !empty_label {
            return Err("RSA-OAEP with a label is not supported".to_owned());
        }
    }
    Ok(KeyTransport::RsaOaep(hash))
}

/// GCMParameters (RFC 5084 §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct GcmParameters {
    nonce: OctetString,
    #[asn1(default = "default_tag_len")]
    tag_len: u8,
}

fn default_tag_len() -> u8 {
    DEFAULT_TAG_LEN
}

/// Content encrypted under a content-encryption key, ready for `EncryptedContentInfo`.
pub(crate) struct Sealed {
    /// The contentEncryptionAlgorithm with its parameters (IV or nonce).
    pub(crate) identifier: AlgorithmIdentifierOwned,
    /// The ciphertext, without the tag.
    pub(crate) ciphertext: Vec<u8>,
    /// The GCM tag (the `mac` of `AuthEnvelopedData`).
    pub(crate) tag: Option<Vec<u8>>,
}

/// A random secret of `len` bytes from the system's generator.
pub(crate) fn random(len: usize) -> Result<Zeroizing<Vec<u8>>, CmsError> {
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| CmsError::internal("the random generator failed"))?;
    Ok(bytes)
}

/// Encrypts `payload` with `key` (as long as [`ContentEncryption::key_len`]) under a fresh
/// random IV or nonce.
pub(crate) fn seal(
    content: ContentEncryption,
    key: &[u8],
    payload: &[u8],
) -> Result<Sealed, CmsError> {
    let failed = |what: &str| CmsError::internal(format!("{content} encryption failed: {what}"));
    if content.is_authenticated() {
        let nonce_bytes = random(NONCE_LEN)?;
        let algorithm = if content == ContentEncryption::Aes128Gcm {
            &AES_128_GCM
        } else {
            &AES_256_GCM
        };
        let sealing = LessSafeKey::new(
            UnboundKey::new(algorithm, key).map_err(|_| failed("the key is not valid"))?,
        );
        let nonce = Nonce::try_assume_unique_for_key(&nonce_bytes)
            .map_err(|_| failed("the nonce is not valid"))?;
        let mut ciphertext = payload.to_vec();
        let tag = sealing
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut ciphertext)
            .map_err(|_| failed("sealing failed"))?;
        let parameters = GcmParameters {
            nonce: OctetString::new(nonce_bytes.as_slice()).map_err(CmsError::internal)?,
            tag_len: u8::try_from(TAG_LEN).map_err(CmsError::internal)?,
        };
        Ok(Sealed {
            identifier: AlgorithmIdentifierOwned {
                oid: content.oid(),
                parameters: Some(Any::encode_from(&parameters).map_err(CmsError::internal)?),
            },
            ciphertext,
            tag: Some(tag.as_ref().to_vec()),
        })
    } else {
        let iv_bytes = random(BLOCK_LEN)?;
        let iv: [u8; BLOCK_LEN] = iv_bytes
            .as_slice()
            .try_into()
            .map_err(|_| failed("the IV is not 16 bytes"))?;
        let algorithm = if content == ContentEncryption::Aes128Cbc {
            &AES_128
        } else {
            &AES_256
        };
        let encrypting = PaddedBlockEncryptingKey::cbc_pkcs7(
            UnboundCipherKey::new(algorithm, key).map_err(|_| failed("the key is not valid"))?,
        )
        .map_err(|_| failed("the key is not valid"))?;
        let mut ciphertext = payload.to_vec();
        encrypting
            .less_safe_encrypt(
                &mut ciphertext,
                EncryptionContext::Iv128(FixedLength::from(iv)),
            )
            .map_err(|_| failed("encrypting failed"))?;
        Ok(Sealed {
            identifier: AlgorithmIdentifierOwned {
                oid: content.oid(),
                parameters: Some(
                    Any::encode_from(&OctetString::new(iv).map_err(CmsError::internal)?)
                        .map_err(CmsError::internal)?,
                ),
            },
            ciphertext,
            tag: None,
        })
    }
}

/// A contentEncryptionAlgorithm read from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentAlgorithm {
    pub(crate) content: ContentEncryption,
    /// The CBC IV (16 bytes) or the GCM nonce (12 bytes).
    iv: Vec<u8>,
}

impl ContentAlgorithm {
    /// Reads a contentEncryptionAlgorithm: AES-128/256 in CBC or GCM mode.
    pub(crate) fn from_identifier(identifier: &AlgorithmIdentifierOwned) -> Result<Self, CmsError> {
        let content = ContentEncryption::ALL
            .into_iter()
            .find(|c| c.oid() == identifier.oid)
            .ok_or_else(|| {
                CmsError::Unsupported(format!(
                    "the content encryption algorithm {} is not supported (only aes128-cbc, aes256-cbc, aes128-gcm and aes256-gcm)",
                    content_oid_name(&identifier.oid)
                ))
            })?;
        let unreadable = || {
            CmsError::Malformed(format!(
                "the {content} parameters of the message cannot be read"
            ))
        };
        let parameters = identifier.parameters.as_ref().ok_or_else(unreadable)?;
        if content.is_authenticated() {
            let parameters: GcmParameters = parameters
                .to_der()
                .ok()
                .and_then(|der| GcmParameters::from_der(&der).ok())
                .ok_or_else(unreadable)?;
            if parameters.nonce.as_bytes().len() != NONCE_LEN {
                return Err(CmsError::Unsupported(format!(
                    "a GCM nonce of {} bytes is not supported (only {NONCE_LEN})",
                    parameters.nonce.as_bytes().len()
                )));
            }
            if usize::from(parameters.tag_len) != TAG_LEN {
                return Err(CmsError::Unsupported(format!(
                    "a GCM tag of {} bytes is not supported (only {TAG_LEN})",
                    parameters.tag_len
                )));
            }
            Ok(Self {
                content,
                iv: parameters.nonce.as_bytes().to_vec(),
            })
        } else {
            let iv = parameters
                .decode_as::<OctetString>()
                .map_err(|_| unreadable())?;
            if iv.as_bytes().len() != BLOCK_LEN {
                return Err(CmsError::Malformed(format!(
                    "the {content} IV is {} bytes long, not {BLOCK_LEN}",
                    iv.as_bytes().len()
                )));
            }
            Ok(Self {
                content,
                iv: iv.as_bytes().to_vec(),
            })
        }
    }

    /// Decrypts `ciphertext` with `key`; for GCM, `tag` and `aad` are checked.
    /// `failed` is the error for a wrong key or a damaged message.
    pub(crate) fn open(
        &self,
        key: &[u8],
        ciphertext: &[u8],
        tag: Option<&[u8]>,
        aad: &[u8],
        failed: impl Fn(&str) -> CmsError,
    ) -> Result<Vec<u8>, CmsError> {
        let content = self.content;
        let broken =
            |what: &str| CmsError::internal(format!("{content} decryption failed: {what}"));
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        if content.is_authenticated() {
            let tag = tag.ok_or_else(|| failed("the message has no authentication tag"))?;
            if tag.len() != TAG_LEN {
                return Err(failed("the authentication tag has the wrong length"));
            }
            let algorithm = if content == ContentEncryption::Aes128Gcm {
                &AES_128_GCM
            } else {
                &AES_256_GCM
            };
            let opening = LessSafeKey::new(
                UnboundKey::new(algorithm, key).map_err(|_| broken("the key is not valid"))?,
            );
            let nonce = Nonce::try_assume_unique_for_key(&self.iv)
                .map_err(|_| broken("the nonce is not valid"))?;
            let plaintext = opening
                .open_in_place_separate_tag(nonce, Aad::from(aad), tag, &mut buffer)
                .map_err(|_| failed("the authentication tag does not match"))?;
            Ok(plaintext.to_vec())
        } else {
            if buffer.is_empty() || !buffer.len().is_multiple_of(BLOCK_LEN) {
                return Err(failed("the ciphertext is not a whole number of AES blocks"));
            }
            let iv: [u8; BLOCK_LEN] = self
                .iv
                .as_slice()
                .try_into()
                .map_err(|_| broken("the IV is not 16 bytes"))?;
            let algorithm = if content == ContentEncryption::Aes128Cbc {
                &AES_128
            } else {
                &AES_256
            };
            let decrypting = PaddedBlockDecryptingKey::cbc_pkcs7(
                UnboundCipherKey::new(algorithm, key)
                    .map_err(|_| broken("the key is not valid"))?,
            )
            .map_err(|_| broken("the key is not valid"))?;
            let plaintext = decrypting
                .decrypt(&mut buffer, DecryptionContext::Iv128(FixedLength::from(iv)))
                .map_err(|_| failed("the padding of the decrypted content is not valid"))?;
            Ok(plaintext.to_vec())
        }
    }
}

/// The name OpenSSL gives a content encryption algorithm, or the dotted OID.
fn content_oid_name(oid: &ObjectIdentifier) -> String {
    match *oid {
        AES128_CBC => "aes-128-cbc",
        AES192_CBC => "aes-192-cbc",
        AES256_CBC => "aes-256-cbc",
        AES128_GCM => "aes-128-gcm",
        AES192_GCM => "aes-192-gcm",
        AES256_GCM => "aes-256-gcm",
        DES_EDE3_CBC => "des-ede3-cbc",
        _ => return oid_name(oid),
    }
    .to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for transport in KeyTransport::ALL {
            assert_eq!(
                transport.to_string().parse::<KeyTransport>().unwrap(),
                transport
            );
        }
        assert_eq!(
            "RSA-OAEP".parse::<KeyTransport>().unwrap(),
            KeyTransport::RsaOaep(OaepHash::Sha256)
        );
        assert_eq!(
            "rsa-oaep-sha256".parse::<KeyTransport>().unwrap(),
            KeyTransport::RsaOaep(OaepHash::Sha256)
        );
        assert_eq!(KeyTransport::RsaPkcs1v15.to_string(), "rsa-pkcs1");
        for content in ContentEncryption::ALL {
            assert_eq!(
                content.to_string().parse::<ContentEncryption>().unwrap(),
                content
            );
        }
        let err = "rsa".parse::<KeyTransport>().unwrap_err();
        assert!(
            err.is_user_error() && err.to_string().contains("rsa-pkcs1"),
            "{err}"
        );
        let err = "des3".parse::<ContentEncryption>().unwrap_err();
        assert!(err.to_string().contains("aes256-gcm"), "{err}");
    }

    #[test]
    fn key_transport_identifiers_are_written_and_read_back() {
        for transport in KeyTransport::ALL {
            let identifier = transport.identifier().unwrap();
            assert_eq!(
                KeyTransport::from_identifier(&identifier).unwrap(),
                transport
            );
        }
        // SHA-1 is OAEP's default: the parameters are an empty SEQUENCE.
        let sha1 = KeyTransport::RsaOaep(OaepHash::Sha1).identifier().unwrap();
        assert_eq!(sha1.parameters.unwrap().to_der().unwrap(), [0x30, 0x00]);
        // Absent parameters mean the defaults too.
        let bare = AlgorithmIdentifierOwned {
            oid: RSAES_OAEP,
            parameters: None,
        };
        assert_eq!(
            KeyTransport::from_identifier(&bare).unwrap(),
            KeyTransport::RsaOaep(OaepHash::Sha1)
        );
    }

    #[test]
    fn unusual_oaep_parameters_are_refused_with_reason() {
        let sha256 = AlgorithmIdentifierOwned {
            oid: SHA256,
            parameters: None,
        };
        let cases = [
            (
                OaepParameters {
                    hash: Some(sha256.clone()),
                    mask_generation: None,
                    source: None,
                },
                "MGF1 over SHA-1",
            ),
            (
                OaepParameters {
                    hash: Some(AlgorithmIdentifierOwned {
                        oid: DES_EDE3_CBC,
                        parameters: None,
                    }),
                    mask_generation: None,
                    source: None,
                },
                "with hash 1.2.840.113549.3.7",
            ),
            (
                OaepParameters {
                    hash: None,
                    mask_generation: None,
                    source: Some(AlgorithmIdentifierOwned {
                        oid: P_SPECIFIED,
                        parameters: Some(
                            Any::encode_from(&OctetString::new(*b"label").unwrap()).unwrap(),
                        ),
                    }),
                },
                "label",
            ),
        ];
        for (parameters, needle) in cases {
            let identifier = AlgorithmIdentifierOwned {
                oid: RSAES_OAEP,
                parameters: Some(Any::encode_from(&parameters).unwrap()),
            };
            let err = KeyTransport::from_identifier(&identifier).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn content_is_sealed_and_opened() {
        let failed = |what: &str| CmsError::DecryptionFailed(what.to_owned());
        for content in ContentEncryption::ALL {
            let key = random(content.key_len()).unwrap();
            for payload in [&b""[..], b"x", &[7u8; 16], &[9u8; 33]] {
                let sealed = seal(content, &key, payload).unwrap();
                let algorithm = ContentAlgorithm::from_identifier(&sealed.identifier).unwrap();
                assert_eq!(algorithm.content, content);
                let opened = algorithm
                    .open(&key, &sealed.ciphertext, sealed.tag.as_deref(), &[], failed)
                    .unwrap();
                assert_eq!(opened, payload, "{content}");
            }
            let sealed = seal(content, &key, b"some content").unwrap();
            let algorithm = ContentAlgorithm::from_identifier(&sealed.identifier).unwrap();
            let other_key = random(content.key_len()).unwrap();
            let opened = algorithm.open(
                &other_key,
                &sealed.ciphertext,
                sealed.tag.as_deref(),
                &[],
                failed,
            );
            assert!(
                opened.as_deref() != Ok(&b"some content"[..]),
                "{content} opened with another key"
            );
            if content.is_authenticated() {
                assert!(
                    algorithm
                        .open(
                            &key,
                            &sealed.ciphertext,
                            sealed.tag.as_deref(),
                            b"aad",
                            failed
                        )
                        .is_err()
                );
            }
        }
    }
}

names!(KeyTransport, "key transport", normalize = super::names::lower, [KeyTransport::RsaOaep(OaepHash::Sha256) => "rsa-oaep" | "rsa-oaep-sha256", KeyTransport::RsaOaep(OaepHash::Sha1) => "rsa-oaep-sha1", KeyTransport::RsaOaep(OaepHash::Sha384) => "rsa-oaep-sha384", KeyTransport::RsaOaep(OaepHash::Sha512) => "rsa-oaep-sha512", KeyTransport::RsaPkcs1v15 => "rsa-pkcs1"]);
names!(ContentEncryption, "content encryption", normalize = super::names::lower, [ContentEncryption::Aes128Cbc => "aes128-cbc", ContentEncryption::Aes256Cbc => "aes256-cbc", ContentEncryption::Aes128Gcm => "aes128-gcm", ContentEncryption::Aes256Gcm => "aes256-gcm"]);
