//! Private keys: [`PrivateKey`] (PKCS#8 v1 DER held in zeroizing memory), [`KeyKind`],
//! key generation and signing on aws-lc-rs, and [`key_mismatch`], which compares a
//! private key with the public key in a certificate.
//!
//! keyward supports RSA (2048 to 8192 bits), ECDSA on P-256 and P-384, and Ed25519.
//! Every private key is normalised to PKCS#8 v1 when it is read, whatever form it came in
//! (PKCS#8 v1/v2, PKCS#1, SEC1), so that stored keys have one encoding.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use der::Decode;
use der::asn1::{Any, ObjectIdentifier};
use pkcs8::PrivateKeyInfoRef;
use spki_types::AlgorithmIdentifierOwned;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey as ParsedPublicKey;
use zeroize::Zeroizing;

use crate::certificate::Certificate;
use crate::error::CryptoError;
use crate::oids;
use keyward_domain::KeyAlgorithm;

/// Re-exported so that the spki types used in signatures have one path in this crate.
pub(crate) mod spki_types {
    pub use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
}

/// The algorithm and size of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA with a modulus of `bits` bits.
    Rsa {
        /// Modulus size in bits.
        bits: u32,
    },
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// Ed25519.
    Ed25519,
}

impl KeyKind {
    /// The domain algorithm this kind corresponds to, if keyward generates such keys
    /// (RSA sizes other than 2048, 3072 and 4096 have none).
    pub fn key_algorithm(self) -> Option<KeyAlgorithm> {
        match self {
            KeyKind::Rsa { bits: 2048 } => Some(KeyAlgorithm::Rsa2048),
            KeyKind::Rsa { bits: 3072 } => Some(KeyAlgorithm::Rsa3072),
            KeyKind::Rsa { bits: 4096 } => Some(KeyAlgorithm::Rsa4096),
            KeyKind::Rsa { .. } => None,
            KeyKind::EcP256 => Some(KeyAlgorithm::EcP256),
            KeyKind::EcP384 => Some(KeyAlgorithm::EcP384),
            KeyKind::Ed25519 => Some(KeyAlgorithm::Ed25519),
        }
    }
}

impl From<KeyAlgorithm> for KeyKind {
    fn from(value: KeyAlgorithm) -> Self {
        match value {
            KeyAlgorithm::Rsa2048 => KeyKind::Rsa { bits: 2048 },
            KeyAlgorithm::Rsa3072 => KeyKind::Rsa { bits: 3072 },
            KeyAlgorithm::Rsa4096 => KeyKind::Rsa { bits: 4096 },
            KeyAlgorithm::EcP256 => KeyKind::EcP256,
            KeyAlgorithm::EcP384 => KeyKind::EcP384,
            KeyAlgorithm::Ed25519 => KeyKind::Ed25519,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA {bits}"),
            KeyKind::EcP256 => f.write_str("EC P-256"),
            KeyKind::EcP384 => f.write_str("EC P-384"),
            KeyKind::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// The public half of a key in a form that compares equal regardless of encoding
/// details (leading zeros, NULL parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PublicMaterial {
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    Ec { kind: KeyKind, point: Vec<u8> },
    Ed25519(Vec<u8>),
}

/// A private key, held as PKCS#8 v1 DER in memory that is wiped when dropped.
///
/// The key is also kept parsed by aws-lc-rs (which wipes its copy when freed), so that
/// signing does not read and check the PKCS#8 encoding again every time.
pub struct PrivateKey {
    der: Zeroizing<Vec<u8>>,
    kind: KeyKind,
    public: PublicMaterial,
    spki_der: Vec<u8>,
    signer: Arc<Signer>,
}

impl Clone for PrivateKey {
    fn clone(&self) -> Self {
        Self {
            der: Zeroizing::new(self.der.to_vec()),
            kind: self.kind,
            public: self.public.clone(),
            spki_der: self.spki_der.clone(),
            signer: Arc::clone(&self.signer),
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.kind.to_string())
            .field("pkcs8", &"<redacted>")
            .finish()
    }
}

/// A parsed key pair on aws-lc-rs, ready to sign.
pub(crate) enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, KeyKind),
    Ed25519(Ed25519KeyPair),
}

fn strip_leading_zeros(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

fn rejected(what: &str, e: impl fmt::Display) -> CryptoError {
    CryptoError::InvalidKey(format!("the {what} private key is not valid: {e}"))
}

fn ec_algorithm(kind: KeyKind) -> &'static EcdsaSigningAlgorithm {
    if kind == KeyKind::EcP384 {
        &ECDSA_P384_SHA384_ASN1_SIGNING
    } else {
        &ECDSA_P256_SHA256_ASN1_SIGNING
    }
}

impl Signer {
    pub(crate) fn from_parts(kind: KeyKind, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        match kind {
            KeyKind::Rsa { .. } => RsaKeyPair::from_pkcs8(pkcs8)
                .map(Signer::Rsa)
                .map_err(|e| rejected("RSA", e)),
            KeyKind::EcP256 | KeyKind::EcP384 => {
                EcdsaKeyPair::from_pkcs8(ec_algorithm(kind), pkcs8)
                    .map(|k| Signer::Ec(k, kind))
                    .map_err(|e| rejected("EC", e))
            }
            KeyKind::Ed25519 => Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                .map(Signer::Ed25519)
                .map_err(|e| rejected("Ed25519", e)),
        }
    }

    fn kind(&self) -> KeyKind {
        match self {
            Signer::Rsa(k) => KeyKind::Rsa {
                bits: u32::try_from(k.public_modulus_len())
                    .unwrap_or(u32::MAX / 8)
                    .saturating_mul(8),
            },
            Signer::Ec(_, kind) => *kind,
            Signer::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    fn pkcs8_v1(&self) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let der = match self {
            Signer::Rsa(k) => {
                let doc: Pkcs8V1Der<'static> = k.as_der().map_err(CryptoError::internal)?;
                Zeroizing::new(doc.as_ref().to_vec())
            }
            Signer::Ec(k, _) => Zeroizing::new(
                k.to_pkcs8v1()
                    .map_err(CryptoError::internal)?
                    .as_ref()
                    .to_vec(),
            ),
            Signer::Ed25519(k) => Zeroizing::new(
                k.to_pkcs8v1()
                    .map_err(CryptoError::internal)?
                    .as_ref()
                    .to_vec(),
            ),
        };
        Ok(der)
    }

    fn public(&self) -> Result<(PublicMaterial, Vec<u8>), CryptoError> {
        match self {
            Signer::Rsa(k) => {
                let public = k.public_key();
                let spki: PublicKeyX509Der<'static> =
                    public.as_der().map_err(CryptoError::internal)?;
                Ok((
                    PublicMaterial::Rsa {
                        modulus: strip_leading_zeros(
                            public.modulus().big_endian_without_leading_zero(),
                        ),
                        exponent: strip_leading_zeros(
                            public.exponent().big_endian_without_leading_zero(),
                        ),
                    },
                    spki.as_ref().to_vec(),
                ))
            }
            Signer::Ec(k, kind) => {
                let public = k.public_key();
                let spki: PublicKeyX509Der<'static> =
                    public.as_der().map_err(CryptoError::internal)?;
                Ok((
                    PublicMaterial::Ec {
                        kind: *kind,
                        point: public.as_ref().to_vec(),
                    },
                    spki.as_ref().to_vec(),
                ))
            }
            Signer::Ed25519(k) => {
                let public = k.public_key();
                let spki: PublicKeyX509Der<'static> =
                    public.as_der().map_err(CryptoError::internal)?;
                Ok((
                    PublicMaterial::Ed25519(public.as_ref().to_vec()),
                    spki.as_ref().to_vec(),
                ))
            }
        }
    }

    /// The signature algorithm this key signs with (SHA-256 for RSA and P-256, SHA-384 for
    /// P-384, pure Ed25519).
    fn signature_algorithm(&self) -> AlgorithmIdentifierOwned {
        match self {
            Signer::Rsa(_) => AlgorithmIdentifierOwned {
                oid: oids::SHA256_WITH_RSA,
                parameters: Some(Any::null()),
            },
            Signer::Ec(_, KeyKind::EcP384) => AlgorithmIdentifierOwned {
                oid: oids::ECDSA_WITH_SHA384,
                parameters: None,
            },
            Signer::Ec(..) => AlgorithmIdentifierOwned {
                oid: oids::ECDSA_WITH_SHA256,
                parameters: None,
            },
            Signer::Ed25519(_) => AlgorithmIdentifierOwned {
                oid: oids::ED25519,
                parameters: None,
            },
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(k) => {
                let mut signature = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| CryptoError::internal("RSA signing failed"))?;
                Ok(signature)
            }
            Signer::Ec(k, _) => Ok(k
                .sign(&rng, message)
                .map_err(|_| CryptoError::internal("ECDSA signing failed"))?
                .as_ref()
                .to_vec()),
            Signer::Ed25519(k) => Ok(k
                .try_sign(message)
                .map_err(|_| CryptoError::internal("Ed25519 signing failed"))?
                .as_ref()
                .to_vec()),
        }
    }
}

impl PrivateKey {
    fn from_signer(signer: Signer) -> Result<Self, CryptoError> {
        let (public, spki_der) = signer.public()?;
        Ok(Self {
            der: signer.pkcs8_v1()?,
            kind: signer.kind(),
            public,
            spki_der,
            signer: Arc::new(signer),
        })
    }

    /// Generates a new key of the given algorithm.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] when the generator fails.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, CryptoError> {
        let signer = match algorithm {
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let size = match algorithm {
                    KeyAlgorithm::Rsa3072 => KeySize::Rsa3072,
                    KeyAlgorithm::Rsa4096 => KeySize::Rsa4096,
                    _ => KeySize::Rsa2048,
                };
                Signer::Rsa(
                    RsaKeyPair::generate(size)
                        .map_err(|_| CryptoError::internal("RSA key generation failed"))?,
                )
            }
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
                let kind = KeyKind::from(algorithm);
                Signer::Ec(
                    EcdsaKeyPair::generate(ec_algorithm(kind))
                        .map_err(|_| CryptoError::internal("EC key generation failed"))?,
                    kind,
                )
            }
            KeyAlgorithm::Ed25519 => Signer::Ed25519(
                Ed25519KeyPair::generate()
                    .map_err(|_| CryptoError::internal("Ed25519 key generation failed"))?,
            ),
        };
        Self::from_signer(signer)
    }

    /// Reads a PKCS#8 private key (v1 or v2, unencrypted): RSA, EC P-256/P-384 or Ed25519.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] when the bytes are not a PKCS#8 key,
    /// [`CryptoError::UnsupportedKey`] for other algorithms, curves or RSA sizes.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let info = PrivateKeyInfoRef::from_der(der).map_err(|e| {
            CryptoError::InvalidKey(format!("the private key is not valid PKCS#8: {e}"))
        })?;
        let oid = info.algorithm.oid;
        let kind = if oid == oids::RSA_ENCRYPTION {
            let key = RsaKeyPair::from_pkcs8(der).map_err(rsa_rejected)?;
            return Self::from_signer(Signer::Rsa(key));
        } else if oid == oids::EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .ok_or_else(|| {
                    CryptoError::InvalidKey("the EC private key does not name its curve".to_owned())
                })?;
            if curve == oids::SECP256R1 {
                KeyKind::EcP256
            } else if curve == oids::SECP384R1 {
                KeyKind::EcP384
            } else {
                return Err(CryptoError::UnsupportedKey(format!(
                    "the EC private key is on curve {} ; keyward supports P-256 and P-384",
                    oids::curve_name(&curve)
                )));
            }
        } else if oid == oids::ED25519 {
            KeyKind::Ed25519
        } else {
            return Err(CryptoError::UnsupportedKey(format!(
                "the private key is of type {}; keyward supports RSA, EC P-256, EC P-384 and Ed25519",
                oids::key_algorithm_name(&oid)
            )));
        };
        Self::from_signer(Signer::from_parts(kind, der)?)
    }

    /// Reads a PKCS#1 `RSAPrivateKey` (PEM label `RSA PRIVATE KEY`) and converts it to PKCS#8.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] / [`CryptoError::UnsupportedKey`] as for PKCS#8.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, CryptoError> {
        let key = RsaKeyPair::from_der(der).map_err(rsa_rejected)?;
        Self::from_signer(Signer::Rsa(key))
    }

    /// Reads a SEC1 `ECPrivateKey` (PEM label `EC PRIVATE KEY`) on P-256 or P-384 and
    /// converts it to PKCS#8.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKey`] when it is not a SEC1 key on a supported curve.
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, CryptoError> {
        for kind in [KeyKind::EcP256, KeyKind::EcP384] {
            if let Ok(key) = EcdsaKeyPair::from_private_key_der(ec_algorithm(kind), der) {
                return Self::from_signer(Signer::Ec(key, kind));
            }
        }
        Err(CryptoError::InvalidKey(
            "the EC private key is not a valid SEC1 key on P-256 or P-384 (other curves are not supported)"
                .to_owned(),
        ))
    }

    /// The key as PKCS#8 v1 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.der
    }

    /// The key's algorithm and size.
    pub fn algorithm(&self) -> KeyKind {
        self.kind
    }

    /// The public key as X.509 `SubjectPublicKeyInfo` DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub(crate) fn public_material(&self) -> &PublicMaterial {
        &self.public
    }

    /// Signs `message` and returns the signature algorithm identifier with the signature.
    pub(crate) fn sign(
        &self,
        message: &[u8],
    ) -> Result<(AlgorithmIdentifierOwned, Vec<u8>), CryptoError> {
        Ok((
            self.signer.signature_algorithm(),
            self.signer.sign(message)?,
        ))
    }

    /// The key parsed by aws-lc-rs, ready to sign.
    pub(crate) fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The `SubjectPublicKeyInfo` as RustCrypto type.
    pub(crate) fn spki(&self) -> Result<spki_types::SubjectPublicKeyInfoOwned, CryptoError> {
        spki_types::SubjectPublicKeyInfoOwned::from_der(&self.spki_der)
            .map_err(CryptoError::internal)
    }
}

fn rsa_rejected(e: impl fmt::Display) -> CryptoError {
    // aws-lc-rs refuses RSA keys outside 2048..=8192 bits; say so rather than "invalid".
    let text = e.to_string();
    if text.contains("TooSmall") {
        CryptoError::UnsupportedKey(
            "the RSA private key is smaller than 2048 bits; keyward needs at least 2048".to_owned(),
        )
    } else if text.contains("TooLarge") {
        CryptoError::UnsupportedKey(
            "the RSA private key is larger than 8192 bits; keyward supports up to 8192".to_owned(),
        )
    } else {
        rejected("RSA", text)
    }
}

/// The public key of a certificate, for comparison with a private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertificateKey {
    Known(KeyKind, PublicMaterial),
    Other(String),
}

pub(crate) fn certificate_key(der: &[u8]) -> CertificateKey {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return CertificateKey::Other("unreadable".to_owned());
    };
    let spki = &cert.tbs_certificate.subject_pki;
    let oid_text = spki.algorithm.algorithm.to_id_string();
    let Ok(oid) = ObjectIdentifier::new(&oid_text) else {
        return CertificateKey::Other(oid_text);
    };
    match spki.parsed() {
        Ok(ParsedPublicKey::RSA(rsa)) => {
            let modulus = strip_leading_zeros(rsa.modulus);
            let bits = bit_length(&modulus);
            CertificateKey::Known(
                KeyKind::Rsa { bits },
                PublicMaterial::Rsa {
                    modulus,
                    exponent: strip_leading_zeros(rsa.exponent),
                },
            )
        }
        Ok(ParsedPublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .and_then(|o| ObjectIdentifier::new(&o.to_id_string()).ok());
            match curve {
                Some(c) if c == oids::SECP256R1 => CertificateKey::Known(
                    KeyKind::EcP256,
                    PublicMaterial::Ec {
                        kind: KeyKind::EcP256,
                        point: point.data().to_vec(),
                    },
                ),
                Some(c) if c == oids::SECP384R1 => CertificateKey::Known(
                    KeyKind::EcP384,
                    PublicMaterial::Ec {
                        kind: KeyKind::EcP384,
                        point: point.data().to_vec(),
                    },
                ),
                Some(c) => CertificateKey::Other(format!("EC {}", oids::curve_name(&c))),
                None => CertificateKey::Other("EC (unknown curve)".to_owned()),
            }
        }
        _ if oid == oids::ED25519 => CertificateKey::Known(
            KeyKind::Ed25519,
            PublicMaterial::Ed25519(spki.subject_public_key.data.to_vec()),
        ),
        _ => CertificateKey::Other(oids::key_algorithm_name(&oid)),
    }
}

pub(crate) fn bit_length(big_endian: &[u8]) -> u32 {
    let stripped = strip_leading_zeros(big_endian);
    match stripped.first() {
        None => 0,
        Some(first) => {
            let len = u32::try_from(stripped.len()).unwrap_or(u32::MAX / 8);
            len.saturating_sub(1).saturating_mul(8) + (8 - first.leading_zeros())
        }
    }
}

/// Compares a private key with a certificate's public key.
///
/// Returns `None` when the certificate holds the public half of `key`, otherwise a
/// sentence for the user, such as "the certificate holds an EC P-256 key, the private
/// key is RSA 2048" or "the certificate's public key differs from the private key's".
pub fn key_mismatch(key: &PrivateKey, certificate: &Certificate) -> Option<String> {
    match certificate.key() {
        CertificateKey::Known(kind, material) => {
            let kind = *kind;
            if kind != key.kind {
                Some(format!(
                    "the certificate holds {} key, the private key is {}",
                    with_article(kind),
                    key.kind
                ))
            } else if material != key.public_material() {
                Some("the certificate's public key differs from the private key's".to_owned())
            } else {
                None
            }
        }
        CertificateKey::Other(name) => Some(format!(
            "the certificate holds a key of type {name}, the private key is {}",
            key.kind
        )),
    }
}

fn with_article(kind: KeyKind) -> String {
    // "RSA", "EC" and "Ed25519" all start with a vowel sound.
    format!("an {kind}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::issue::generate;
    use keyward_domain::Timestamp;

    const NOW: Timestamp = Timestamp::from_seconds(1_800_000_000);

    #[test]
    fn kinds_display_and_map_to_domain() {
        assert_eq!(KeyKind::Rsa { bits: 2048 }.to_string(), "RSA 2048");
        assert_eq!(KeyKind::EcP256.to_string(), "EC P-256");
        assert_eq!(KeyKind::EcP384.to_string(), "EC P-384");
        assert_eq!(KeyKind::Ed25519.to_string(), "Ed25519");
        for a in KeyAlgorithm::ALL {
            assert_eq!(KeyKind::from(a).key_algorithm(), Some(a));
        }
        assert_eq!(KeyKind::Rsa { bits: 2047 }.key_algorithm(), None);
    }

    #[test]
    fn key_mismatch_table() {
        let algorithms = [
            KeyAlgorithm::Rsa2048,
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384,
            KeyAlgorithm::Ed25519,
        ];
        let pairs: Vec<(PrivateKey, Certificate)> = algorithms
            .iter()
            .map(|a| generate(*a, "CN=t", 1, NOW).unwrap())
            .collect();
        let names = ["RSA 2048", "EC P-256", "EC P-384", "Ed25519"];
        for (i, (key, _)) in pairs.iter().enumerate() {
            for (j, (_, cert)) in pairs.iter().enumerate() {
                let result = key_mismatch(key, cert);
                if i == j {
                    assert_eq!(result, None);
                } else {
                    let expected = format!(
                        "the certificate holds an {} key, the private key is {}",
                        names[j], names[i]
                    );
                    assert_eq!(result, Some(expected));
                }
            }
        }
        // Same kind, different key.
        for (algorithm, (_, cert)) in algorithms.iter().zip(&pairs) {
            let (other, _) = generate(*algorithm, "CN=t", 1, NOW).unwrap();
            assert_eq!(
                key_mismatch(&other, cert).as_deref(),
                Some("the certificate's public key differs from the private key's")
            );
        }
        assert_eq!(
            key_mismatch(&pairs[0].0, &pairs[1].1).as_deref(),
            Some("the certificate holds an EC P-256 key, the private key is RSA 2048")
        );
    }

    #[test]
    fn pkcs8_round_trip_and_normal_form() {
        for algorithm in [
            KeyAlgorithm::EcP256,
            KeyAlgorithm::EcP384,
            KeyAlgorithm::Ed25519,
        ] {
            let key = PrivateKey::generate(algorithm).unwrap();
            let again = PrivateKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
            assert_eq!(again.pkcs8_der(), key.pkcs8_der());
            assert_eq!(again.algorithm(), key.algorithm());
            assert_eq!(again.public_key_der(), key.public_key_der());
            // PKCS#8 v1: version 0.
            let info = PrivateKeyInfoRef::from_der(key.pkcs8_der()).unwrap();
            assert!(info.public_key.is_none());
        }
        // Ed25519 v2 (with the public key) is read and stored as v1.
        let v2 = Ed25519KeyPair::generate().unwrap().to_pkcs8().unwrap();
        let key = PrivateKey::from_pkcs8_der(v2.as_ref()).unwrap();
        assert_ne!(key.pkcs8_der(), v2.as_ref());
        assert!(
            PrivateKeyInfoRef::from_der(key.pkcs8_der())
                .unwrap()
                .public_key
                .is_none()
        );
    }

    #[test]
    fn keys_are_shared_between_threads_and_clones_sign() {
        fn send_and_sync<T: Send + Sync>(_: &T) {}
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
        send_and_sync(&key);
        let clone = key.clone();
        drop(key);
        let (_, signature) = clone.sign(b"message").unwrap();
        assert_eq!(signature.len(), 64);
    }

    #[test]
    fn debug_shows_no_key_material() {
        let key = PrivateKey::generate(KeyAlgorithm::EcP256).unwrap();
        let text = format!("{key:?}");
        assert_eq!(
            text,
            "PrivateKey { algorithm: \"EC P-256\", pkcs8: \"<redacted>\" }"
        );
    }

    #[test]
    fn unusable_keys_are_explained() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"garbage".to_vec(), "the private key is not valid PKCS#8"),
            (
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)
                    .unwrap()
                    .serialize_der(),
                "curve P-521",
            ),
        ];
        for (der, needle) in cases {
            let err = PrivateKey::from_pkcs8_der(&der).unwrap_err();
            assert!(err.is_user_error());
            assert!(err.to_string().contains(needle), "{err}");
        }
        let err = PrivateKey::from_pkcs1_der(b"nope").unwrap_err();
        assert!(
            err.to_string().contains("the RSA private key is not valid"),
            "{err}"
        );
        let err = PrivateKey::from_sec1_der(b"nope").unwrap_err();
        assert!(err.to_string().contains("not a valid SEC1 key"), "{err}");
    }
}
