//! Signing with a chosen scheme and verifying signatures with a certificate's public key:
//! [`SignatureScheme`] and [`HashAlgorithm`], [`PrivateKey::sign_with`],
//! [`Certificate::verify_signature`] and [`Certificate::verify_rsa_pss_signature`].
//!
//! Both directions run on aws-lc-rs. RSA-PSS uses MGF1 with the signature's hash and a salt
//! as long as the hash (RFC 4055 / RFC 8017 defaults that OpenSSL and Java use); ECDSA
//! signatures are ASN.1 DER `Ecdsa-Sig-Value`s; Ed25519 is pure Ed25519 over the message.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as aws_signature, EcdsaKeyPair, RsaEncoding, RsaParameters, RsaPssSaltLength,
    UnparsedPublicKey, VerificationAlgorithm,
};
use der::Decode;

use crate::certificate::Certificate;
use crate::error::CryptoError;
use crate::key::{KeyKind, PrivateKey, Signer};

/// A hash function used inside a signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// The length of the hash in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// The hash of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            HashAlgorithm::Sha256 => &aws_lc_rs::digest::SHA256,
            HashAlgorithm::Sha384 => &aws_lc_rs::digest::SHA384,
            HashAlgorithm::Sha512 => &aws_lc_rs::digest::SHA512,
        };
        aws_lc_rs::digest::digest(algorithm, data).as_ref().to_vec()
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha384 => "SHA-384",
            HashAlgorithm::Sha512 => "SHA-512",
        })
    }
}

/// How a message is signed: the algorithm family and, where it has one, its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5 with the given hash.
    RsaPkcs1v15(HashAlgorithm),
    /// RSASSA-PSS with the given hash, MGF1 with the same hash, salt as long as the hash.
    RsaPss(HashAlgorithm),
    /// ECDSA with the given hash, ASN.1 DER signature.
    Ecdsa(HashAlgorithm),
    /// Pure Ed25519 (the message is not hashed first).
    Ed25519,
}

impl fmt::Display for SignatureScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureScheme::RsaPkcs1v15(hash) => write!(f, "RSA PKCS#1 v1.5 with {hash}"),
            SignatureScheme::RsaPss(hash) => write!(f, "RSA-PSS with {hash}"),
            SignatureScheme::Ecdsa(hash) => write!(f, "ECDSA with {hash}"),
            SignatureScheme::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

fn unsuitable(scheme: SignatureScheme, kind: KeyKind) -> CryptoError {
    CryptoError::InvalidParameter(format!("an {kind} key cannot sign with {scheme}"))
}

impl PrivateKey {
    /// Signs `message` with `scheme`, which must suit the key: RSA keys sign with
    /// PKCS#1 v1.5 or PSS (SHA-256/384/512), P-256 keys with ECDSA and SHA-256, P-384 keys
    /// with ECDSA and SHA-384, Ed25519 keys with Ed25519.
    ///
    /// # Errors
    /// [`CryptoError::InvalidParameter`] when the scheme does not suit the key,
    /// [`CryptoError::Internal`] when signing fails.
    pub fn sign_with(
        &self,
        scheme: SignatureScheme,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let kind = self.algorithm();
        let rng = SystemRandom::new();
        match (self.signer(), scheme) {
            (Signer::Rsa(key), SignatureScheme::RsaPkcs1v15(_) | SignatureScheme::RsaPss(_)) => {
                let encoding: &'static dyn RsaEncoding = match scheme {
                    SignatureScheme::RsaPkcs1v15(HashAlgorithm::Sha256) => {
                        &aws_signature::RSA_PKCS1_SHA256
                    }
                    SignatureScheme::RsaPkcs1v15(HashAlgorithm::Sha384) => {
                        &aws_signature::RSA_PKCS1_SHA384
                    }
                    SignatureScheme::RsaPkcs1v15(HashAlgorithm::Sha512) => {
                        &aws_signature::RSA_PKCS1_SHA512
                    }
                    SignatureScheme::RsaPss(HashAlgorithm::Sha256) => {
                        &aws_signature::RSA_PSS_SHA256
                    }
                    SignatureScheme::RsaPss(HashAlgorithm::Sha384) => {
                        &aws_signature::RSA_PSS_SHA384
                    }
                    _ => &aws_signature::RSA_PSS_SHA512,
                };
                let mut signature = vec![0u8; key.public_modulus_len()];
                key.sign(encoding, &rng, message, &mut signature)
                    .map_err(|_| CryptoError::internal("RSA signing failed"))?;
                Ok(signature)
            }
            (Signer::Ec(key, KeyKind::EcP256), SignatureScheme::Ecdsa(HashAlgorithm::Sha256))
            | (Signer::Ec(key, KeyKind::EcP384), SignatureScheme::Ecdsa(HashAlgorithm::Sha384)) => {
                ecdsa_sign(key, &rng, message)
            }
            (Signer::Ec(_, curve), SignatureScheme::Ecdsa(hash)) => {
                let natural = if *curve == KeyKind::EcP384 {
                    HashAlgorithm::Sha384
                } else {
                    HashAlgorithm::Sha256
                };
                Err(CryptoError::InvalidParameter(format!(
                    "an {curve} key signs with ECDSA and {natural} in keyward, not with {hash}"
                )))
            }
            (Signer::Ed25519(key), SignatureScheme::Ed25519) => Ok(key
                .try_sign(message)
                .map_err(|_| CryptoError::internal("Ed25519 signing failed"))?
                .as_ref()
                .to_vec()),
            _ => Err(unsuitable(scheme, kind)),
        }
    }
}

fn ecdsa_sign(
    key: &EcdsaKeyPair,
    rng: &SystemRandom,
    message: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    Ok(key
        .sign(rng, message)
        .map_err(|_| CryptoError::internal("ECDSA signing failed"))?
        .as_ref()
        .to_vec())
}

impl Certificate {
    /// Checks that `signature` is a valid `scheme` signature over `message` by this
    /// certificate's public key.
    ///
    /// # Errors
    /// [`CryptoError::SignatureInvalid`] when the signature does not verify,
    /// [`CryptoError::InvalidParameter`] when the scheme does not suit the key,
    /// [`CryptoError::UnsupportedKey`] for keys keyward does not support.
    pub fn verify_signature(
        &self,
        scheme: SignatureScheme,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let Some(kind) = self.key_kind() else {
            return Err(CryptoError::UnsupportedKey(format!(
                "the certificate \"{}\" holds a key keyward cannot verify with",
                self.subject()
            )));
        };
        let algorithm = verification_algorithm(kind, scheme)?;
        self.verify_with(algorithm, &scheme, message, signature)
    }
}

impl Certificate {
    /// Checks an RSA-PSS signature whose parameters name `salt_length` (MGF1 with `hash`).
    ///
    /// Salts as long as the hash (keyward's and Java's choice) and the longest salt the key
    /// allows (OpenSSL's default) are supported; other lengths are refused.
    ///
    /// # Errors
    /// [`CryptoError::SignatureInvalid`] when the signature does not verify,
    /// [`CryptoError::UnsupportedKey`] for another salt length or a key that is not RSA.
    pub fn verify_rsa_pss_signature(
        &self,
        hash: HashAlgorithm,
        salt_length: u32,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let Some(KeyKind::Rsa { bits }) = self.key_kind() else {
            return Err(CryptoError::UnsupportedKey(format!(
                "the certificate \"{}\" holds no RSA key, so it cannot verify an RSA-PSS signature",
                self.subject()
            )));
        };
        let hash_len = u32::try_from(hash.output_len()).unwrap_or(u32::MAX);
        let maximum = (bits.saturating_add(6) / 8)
            .saturating_sub(hash_len)
            .saturating_sub(2);
        let algorithm: &'static dyn VerificationAlgorithm = if salt_length == hash_len {
            verification_algorithm(KeyKind::Rsa { bits }, SignatureScheme::RsaPss(hash))?
        } else if salt_length == maximum {
            match hash {
                HashAlgorithm::Sha256 => &PSS_SHA256_MAXIMUM_SALT,
                HashAlgorithm::Sha384 => &PSS_SHA384_MAXIMUM_SALT,
                HashAlgorithm::Sha512 => &PSS_SHA512_MAXIMUM_SALT,
            }
        } else {
            return Err(CryptoError::UnsupportedKey(format!(
                "an RSA-PSS salt of {salt_length} bytes is not supported with {hash} and an RSA {bits} key (only {hash_len}, the hash length, or {maximum}, the longest)"
            )));
        };
        self.verify_with(
            algorithm,
            &SignatureScheme::RsaPss(hash),
            message,
            signature,
        )
    }

    fn verify_with(
        &self,
        algorithm: &'static dyn VerificationAlgorithm,
        scheme: &SignatureScheme,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let parsed = x509_cert::Certificate::from_der(self.der()).map_err(|e| {
            CryptoError::InvalidCertificate(format!("not a valid X.509 certificate: {e}"))
        })?;
        let public_key = parsed
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes();
        UnparsedPublicKey::new(algorithm, public_key)
            .verify(message, signature)
            .map_err(|_| {
                CryptoError::SignatureInvalid(format!(
                    "the {scheme} signature does not verify with the key of \"{}\"",
                    self.subject()
                ))
            })
    }
}

static PSS_SHA256_MAXIMUM_SALT: RsaParameters =
    aws_signature::RSA_PSS_2048_8192_SHA256.with_pss_salt_length(RsaPssSaltLength::Max);
static PSS_SHA384_MAXIMUM_SALT: RsaParameters =
    aws_signature::RSA_PSS_2048_8192_SHA384.with_pss_salt_length(RsaPssSaltLength::Max);
static PSS_SHA512_MAXIMUM_SALT: RsaParameters =
    aws_signature::RSA_PSS_2048_8192_SHA512.with_pss_salt_length(RsaPssSaltLength::Max);

fn verification_algorithm(
    kind: KeyKind,
    scheme: SignatureScheme,
) -> Result<&'static dyn VerificationAlgorithm, CryptoError> {
    use HashAlgorithm::{Sha256, Sha384, Sha512};
    use SignatureScheme::{Ecdsa, Ed25519, RsaPkcs1v15, RsaPss};
    let algorithm: &'static dyn VerificationAlgorithm = match (kind, scheme) {
        (KeyKind::Rsa { .. }, RsaPkcs1v15(Sha256)) => &aws_signature::RSA_PKCS1_2048_8192_SHA256,
        (KeyKind::Rsa { .. }, RsaPkcs1v15(Sha384)) => &aws_signature::RSA_PKCS1_2048_8192_SHA384,
        (KeyKind::Rsa { .. }, RsaPkcs1v15(Sha512)) => &aws_signature::RSA_PKCS1_2048_8192_SHA512,
        (KeyKind::Rsa { .. }, RsaPss(Sha256)) => &aws_signature::RSA_PSS_2048_8192_SHA256,
        (KeyKind::Rsa { .. }, RsaPss(Sha384)) => &aws_signature::RSA_PSS_2048_8192_SHA384,
        (KeyKind::Rsa { .. }, RsaPss(Sha512)) => &aws_signature::RSA_PSS_2048_8192_SHA512,
        (KeyKind::EcP256, Ecdsa(Sha256)) => &aws_signature::ECDSA_P256_SHA256_ASN1,
        (KeyKind::EcP256, Ecdsa(Sha384)) => &aws_signature::ECDSA_P256_SHA384_ASN1,
        (KeyKind::EcP256, Ecdsa(Sha512)) => &aws_signature::ECDSA_P256_SHA512_ASN1,
        (KeyKind::EcP384, Ecdsa(Sha256)) => &aws_signature::ECDSA_P384_SHA256_ASN1,
        (KeyKind::EcP384, Ecdsa(Sha384)) => &aws_signature::ECDSA_P384_SHA384_ASN1,
        (KeyKind::EcP384, Ecdsa(Sha512)) => &aws_signature::ECDSA_P384_SHA512_ASN1,
        (KeyKind::Ed25519, Ed25519) => &aws_signature::ED25519,
        _ => return Err(unsuitable(scheme, kind)),
    };
    Ok(algorithm)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::issue::generate;
    use keyward_domain::{KeyAlgorithm, Timestamp};

    const NOW: Timestamp = Timestamp::from_seconds(1_800_000_000);

    #[test]
    fn every_scheme_signs_and_verifies_and_detects_changes() {
        use HashAlgorithm::{Sha256, Sha384, Sha512};
        let cases = [
            (KeyAlgorithm::Rsa2048, SignatureScheme::RsaPkcs1v15(Sha256)),
            (KeyAlgorithm::Rsa2048, SignatureScheme::RsaPkcs1v15(Sha384)),
            (KeyAlgorithm::Rsa2048, SignatureScheme::RsaPkcs1v15(Sha512)),
            (KeyAlgorithm::Rsa2048, SignatureScheme::RsaPss(Sha256)),
            (KeyAlgorithm::Rsa2048, SignatureScheme::RsaPss(Sha384)),
            (KeyAlgorithm::Rsa2048, SignatureScheme::RsaPss(Sha512)),
            (KeyAlgorithm::EcP256, SignatureScheme::Ecdsa(Sha256)),
            (KeyAlgorithm::EcP384, SignatureScheme::Ecdsa(Sha384)),
            (KeyAlgorithm::Ed25519, SignatureScheme::Ed25519),
        ];
        let mut keys = std::collections::HashMap::new();
        for (algorithm, scheme) in cases {
            let (key, cert) = keys
                .entry(algorithm)
                .or_insert_with(|| generate(algorithm, "CN=signer", 1, NOW).unwrap());
            let signature = key.sign_with(scheme, b"message").unwrap();
            cert.verify_signature(scheme, b"message", &signature)
                .unwrap();
            let err = cert
                .verify_signature(scheme, b"messagf", &signature)
                .unwrap_err();
            assert!(matches!(err, CryptoError::SignatureInvalid(_)), "{err}");
            assert!(err.to_string().contains("does not verify"), "{err}");
        }
    }

    #[test]
    fn pss_salt_lengths() {
        let (key, cert) = generate(KeyAlgorithm::Rsa2048, "CN=pss", 1, NOW).unwrap();
        let scheme = SignatureScheme::RsaPss(HashAlgorithm::Sha384);
        let signature = key.sign_with(scheme, b"m").unwrap();
        cert.verify_rsa_pss_signature(HashAlgorithm::Sha384, 48, b"m", &signature)
            .unwrap();
        // The same signature checked as if its salt were the longest one fails.
        let err = cert
            .verify_rsa_pss_signature(HashAlgorithm::Sha384, 206, b"m", &signature)
            .unwrap_err();
        assert!(matches!(err, CryptoError::SignatureInvalid(_)), "{err}");
        let err = cert
            .verify_rsa_pss_signature(HashAlgorithm::Sha384, 20, b"m", &signature)
            .unwrap_err();
        assert!(err.to_string().contains("salt of 20 bytes"), "{err}");
    }

    #[test]
    fn unsuitable_schemes_are_refused() {
        let (rsa, rsa_cert) = generate(KeyAlgorithm::Rsa2048, "CN=r", 1, NOW).unwrap();
        let (ec, _) = generate(KeyAlgorithm::EcP256, "CN=e", 1, NOW).unwrap();
        let err = rsa.sign_with(SignatureScheme::Ed25519, b"m").unwrap_err();
        assert_eq!(err.to_string(), "an RSA 2048 key cannot sign with Ed25519");
        let err = ec
            .sign_with(SignatureScheme::Ecdsa(HashAlgorithm::Sha384), b"m")
            .unwrap_err();
        assert!(err.is_user_error());
        assert!(err.to_string().contains("not with SHA-384"), "{err}");
        let err = rsa_cert
            .verify_signature(SignatureScheme::Ecdsa(HashAlgorithm::Sha256), b"m", b"s")
            .unwrap_err();
        assert!(matches!(err, CryptoError::InvalidParameter(_)), "{err}");
    }
}
