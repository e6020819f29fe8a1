//! The choices a signer makes and a verifier meets: [`DigestAlgorithm`],
//! [`SignatureScheme`], [`IncludeCertificates`], [`Require`], and the algorithm identifiers
//! (object identifiers and RSASSA-PSS parameters) they are written as.
//!
//! Every enum parses from and displays as the lowercase name the command line and the API
//! use (`sha256`, `rsa-pss`, `chain`, `any`).

use der::asn1::{Any, ObjectIdentifier};
use der::{Decode, Encode, Sequence};
use keyward_crypto::HashAlgorithm;
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::error::CmsError;

/// id-data
pub(crate) const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// id-signedData
pub(crate) const ID_SIGNED_DATA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-contentType (signed attribute)
pub(crate) const ID_CONTENT_TYPE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest (signed attribute)
pub(crate) const ID_MESSAGE_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// id-signingTime (signed attribute)
pub(crate) const ID_SIGNING_TIME: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");

const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const MGF1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.8");
const RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The digest of the content (the `messageDigest` attribute) and of the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    /// SHA-256 (`sha256`).
    Sha256,
    /// SHA-384 (`sha384`).
    Sha384,
    /// SHA-512 (`sha512`; the one Ed25519 signers use, RFC 8419).
    Sha512,
}

impl DigestAlgorithm {
    /// Every digest algorithm, in the order of their names.
    pub const ALL: [DigestAlgorithm; 3] = [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
    ];

    pub(crate) fn hash(self) -> HashAlgorithm {
        match self {
            DigestAlgorithm::Sha256 => HashAlgorithm::Sha256,
            DigestAlgorithm::Sha384 => HashAlgorithm::Sha384,
            DigestAlgorithm::Sha512 => HashAlgorithm::Sha512,
        }
    }

    pub(crate) fn from_hash(hash: HashAlgorithm) -> Self {
        match hash {
            HashAlgorithm::Sha256 => DigestAlgorithm::Sha256,
            HashAlgorithm::Sha384 => DigestAlgorithm::Sha384,
            HashAlgorithm::Sha512 => DigestAlgorithm::Sha512,
        }
    }

    pub(crate) fn oid(self) -> ObjectIdentifier {
        match self {
            DigestAlgorithm::Sha256 => SHA256,
            DigestAlgorithm::Sha384 => SHA384,
            DigestAlgorithm::Sha512 => SHA512,
        }
    }

    pub(crate) fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.oid() == *oid)
    }

    /// The algorithm identifier, with parameters absent (RFC 5754).
    pub(crate) fn identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: None,
        }
    }

    /// The digest of `data`.
    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        self.hash().digest(data)
    }
}

/// How a signer signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5 (`rsa-pkcs1`).
    RsaPkcs1v15,
    /// RSASSA-PSS with MGF1 and a salt as long as the digest (`rsa-pss`).
    RsaPss,
    /// ECDSA (`ecdsa`).
    Ecdsa,
    /// Ed25519 (`ed25519`).
    Ed25519,
}

/// Which certificates a signer puts into the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IncludeCertificates {
    /// None (`none`): the verifier must already hold the signer's certificate.
    None,
    /// The signer's certificate (`signer`).
    Signer,
    /// The signer's whole chain (`chain`).
    Chain,
}

/// How many signers must be valid for a message to verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Require {
    /// Every signer (`all`).
    All,
    /// At least one signer (`any`).
    Any,
}

/// RSASSA-PSS-params (RFC 4055 §3.1). Fields at their DEFAULT (SHA-1, 20 bytes, trailer 1)
/// are absent.
#[derive(Debug, Clone, PartialEq, Eq, Sequence)]
struct RsaPssParameters {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_generation: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_length: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

/// The signatureAlgorithm keyward writes for `scheme` with `digest`.
pub(crate) fn signature_identifier(
    scheme: keyward_crypto::SignatureScheme,
) -> Result<AlgorithmIdentifierOwned, CmsError> {
    use keyward_crypto::SignatureScheme as Scheme;
    let null = || Some(Any::null());
    Ok(match scheme {
        Scheme::RsaPkcs1v15(hash) => AlgorithmIdentifierOwned {
            oid: match hash {
                HashAlgorithm::Sha256 => SHA256_WITH_RSA,
                HashAlgorithm::Sha384 => SHA384_WITH_RSA,
                HashAlgorithm::Sha512 => SHA512_WITH_RSA,
            },
            parameters: null(),
        },
        Scheme::RsaPss(hash) => {
            let hash_identifier = DigestAlgorithm::from_hash(hash).identifier();
            let parameters = RsaPssParameters {
                hash: Some(hash_identifier.clone()),
                mask_generation: Some(AlgorithmIdentifierOwned {
                    oid: MGF1,
                    parameters: Some(
                        Any::encode_from(&hash_identifier).map_err(CmsError::internal)?,
                    ),
                }),
                salt_length: Some(u32::try_from(hash.output_len()).map_err(CmsError::internal)?),
                trailer_field: None,
            };
            AlgorithmIdentifierOwned {
                oid: RSASSA_PSS,
                parameters: Some(Any::encode_from(&parameters).map_err(CmsError::internal)?),
            }
        }
        Scheme::Ecdsa(hash) => AlgorithmIdentifierOwned {
            oid: match hash {
                HashAlgorithm::Sha256 => ECDSA_WITH_SHA256,
                HashAlgorithm::Sha384 => ECDSA_WITH_SHA384,
                HashAlgorithm::Sha512 => ECDSA_WITH_SHA512,
            },
            parameters: None,
        },
        Scheme::Ed25519 => AlgorithmIdentifierOwned {
            oid: ED25519,
            parameters: None,
        },
    })
}

/// How a signature found in a message is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureCheck {
    /// With a scheme of fixed parameters.
    Scheme(keyward_crypto::SignatureScheme),
    /// RSA-PSS with the salt length the parameters name.
    RsaPss {
        hash: HashAlgorithm,
        salt_length: u32,
    },
}

/// Reads a signatureAlgorithm. `digest` is the SignerInfo's digest algorithm, which
/// `rsaEncryption` and `id-ecPublicKey` (algorithms without a hash of their own) sign with;
/// for certificate signatures it is `None`.
pub(crate) fn signature_check(
    identifier: &AlgorithmIdentifierOwned,
    digest: Option<DigestAlgorithm>,
) -> Result<SignatureCheck, String> {
    use keyward_crypto::SignatureScheme as Scheme;
    let oid = identifier.oid;
    let with_digest = |make: fn(HashAlgorithm) -> Scheme| {
        digest
            .map(|d| SignatureCheck::Scheme(make(d.hash())))
            .ok_or_else(|| format!("the signature algorithm {} names no hash", oid_name(&oid)))
    };
    let scheme = |s| Ok(SignatureCheck::Scheme(s));
    match oid {
        RSA_ENCRYPTION => with_digest(Scheme::RsaPkcs1v15),
        SHA256_WITH_RSA => scheme(Scheme::RsaPkcs1v15(HashAlgorithm::Sha256)),
        SHA384_WITH_RSA => scheme(Scheme::RsaPkcs1v15(HashAlgorithm::Sha384)),
        SHA512_WITH_RSA => scheme(Scheme::RsaPkcs1v15(HashAlgorithm::Sha512)),
        EC_PUBLIC_KEY => with_digest(Scheme::Ecdsa),
        ECDSA_WITH_SHA256 => scheme(Scheme::Ecdsa(HashAlgorithm::Sha256)),
        ECDSA_WITH_SHA384 => scheme(Scheme::Ecdsa(HashAlgorithm::Sha384)),
        ECDSA_WITH_SHA512 => scheme(Scheme::Ecdsa(HashAlgorithm::Sha512)),
        ED25519 => scheme(Scheme::Ed25519),
        RSASSA_PSS => pss_check(identifier),
        other => Err(format!(
            "the signature algorithm {} is not supported",
            oid_name(&other)
        )),
    }
}

fn pss_check(identifier: &AlgorithmIdentifierOwned) -> Result<SignatureCheck, String> {
    let parameters: RsaPssParameters = identifier
        .parameters
        .as_ref()
        .ok_or_else(|| "the RSA-PSS signature algorithm has no parameters".to_owned())
        .and_then(|any| {
            any.to_der()
                .ok()
                .and_then(|der| RsaPssParameters::from_der(&der).ok())
                .ok_or_else(|| "the RSA-PSS parameters cannot be read".to_owned())
        })?;
    let hash_of = |identifier: &AlgorithmIdentifierOwned| {
        DigestAlgorithm::from_oid(&identifier.oid)
            .map(DigestAlgorithm::hash)
            .ok_or_else(|| {
                format!(
                    "RSA-PSS with hash {} is not supported (only SHA-256, SHA-384, SHA-512)",
                    oid_name(&identifier.oid)
                )
            })
    };
    let hash = match &parameters.hash {
        Some(identifier) => hash_of(identifier)?,
        None => return Err("RSA-PSS with SHA-1 is not supported".to_owned()),
    };
    let mask_hash = match &parameters.mask_generation {
        Some(mask) if mask.oid == MGF1 => mask
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<AlgorithmIdentifierOwned>().ok())
            .ok_or_else(|| "the RSA-PSS MGF1 parameters cannot be read".to_owned())
            .and_then(|identifier| hash_of(&identifier))?,
        Some(mask) => {
            return Err(format!(
                "the RSA-PSS mask generation function {} is not supported",
                oid_name(&mask.oid)
            ));
        }
        None => return Err("RSA-PSS with MGF1 over SHA-1 is not supported".to_owned()),
    };
    if mask_hash != hash {
        return Err(format!(
            "RSA-PSS with {hash} but MGF1 over {mask_hash} is not supported"
        ));
    }
    if parameters.trailer_field.is_some_and(|t| t != 1) {
        return Err("the RSA-PSS trailer field is not 1".to_owned());
    }
    Ok(SignatureCheck::RsaPss {
        hash,
        salt_length: parameters.salt_length.unwrap_or(20),
    })
}

/// The name OpenSSL gives an algorithm identifier, or the dotted OID.
pub(crate) fn oid_name(oid: &ObjectIdentifier) -> String {
    match *oid {
        SHA256 => "sha256",
        SHA384 => "sha384",
        SHA512 => "sha512",
        RSA_ENCRYPTION => "rsaEncryption",
        RSASSA_PSS => "rsassaPss",
        SHA256_WITH_RSA => "sha256WithRSAEncryption",
        SHA384_WITH_RSA => "sha384WithRSAEncryption",
        SHA512_WITH_RSA => "sha512WithRSAEncryption",
        EC_PUBLIC_KEY => "id-ecPublicKey",
        ECDSA_WITH_SHA256 => "ecdsa-with-SHA256",
        ECDSA_WITH_SHA384 => "ecdsa-with-SHA384",
        ECDSA_WITH_SHA512 => "ecdsa-with-SHA512",
        ED25519 => "Ed25519",
        _ => return oid.to_string(),
    }
    .to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for digest in DigestAlgorithm::ALL {
            assert_eq!(
                digest.to_string().parse::<DigestAlgorithm>().unwrap(),
                digest
            );
        }
        assert_eq!(
            "SHA-384".parse::<DigestAlgorithm>().unwrap(),
            DigestAlgorithm::Sha384
        );
        for scheme in [
            SignatureScheme::RsaPkcs1v15,
            SignatureScheme::RsaPss,
            SignatureScheme::Ecdsa,
            SignatureScheme::Ed25519,
        ] {
            assert_eq!(
                scheme.to_string().parse::<SignatureScheme>().unwrap(),
                scheme
            );
        }
        for include in [
            IncludeCertificates::None,
            IncludeCertificates::Signer,
            IncludeCertificates::Chain,
        ] {
            assert_eq!(
                include.to_string().parse::<IncludeCertificates>().unwrap(),
                include
            );
        }
        for require in [Require::All, Require::Any] {
            assert_eq!(require.to_string().parse::<Require>().unwrap(), require);
        }
        assert_eq!(SignatureScheme::RsaPkcs1v15.to_string(), "rsa-pkcs1");
        let err = "md5".parse::<DigestAlgorithm>().unwrap_err();
        assert!(err.is_user_error() && err.to_string().contains("sha256, sha384 or sha512"));
        assert!("rsa".parse::<SignatureScheme>().is_err());
        assert!("some".parse::<IncludeCertificates>().is_err());
        assert!("most".parse::<Require>().is_err());
    }

    #[test]
    fn pss_parameters_are_written_and_read_back() {
        for hash in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ] {
            let identifier =
                signature_identifier(keyward_crypto::SignatureScheme::RsaPss(hash)).unwrap();
            assert_eq!(oid_name(&identifier.oid), "rsassaPss");
            assert_eq!(
                signature_check(&identifier, None).unwrap(),
                SignatureCheck::RsaPss {
                    hash,
                    salt_length: u32::try_from(hash.output_len()).unwrap()
                }
            );
        }
    }
}

names!(DigestAlgorithm, "digest algorithm", normalize = |s| super::names::lower(s).replace('-', ""), [DigestAlgorithm::Sha256 => "sha256", DigestAlgorithm::Sha384 => "sha384", DigestAlgorithm::Sha512 => "sha512"]);
names!(SignatureScheme, "signature scheme", normalize = super::names::lower, [SignatureScheme::RsaPkcs1v15 => "rsa-pkcs1", SignatureScheme::RsaPss => "rsa-pss", SignatureScheme::Ecdsa => "ecdsa", SignatureScheme::Ed25519 => "ed25519"]);
names!(IncludeCertificates, "certificate choice", normalize = super::names::lower, [IncludeCertificates::None => "none", IncludeCertificates::Signer => "signer", IncludeCertificates::Chain => "chain"]);
names!(Require, "requirement", normalize = super::names::lower, [Require::All => "all", Require::Any => "any"]);
