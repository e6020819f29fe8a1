//! RSA encryption for key transport: [`RsaEncryptionPadding`] and [`OaepHash`],
//! [`Certificate::rsa_encrypt`] with a certificate's public key and
//! [`PrivateKey::rsa_decrypt`] with the private key.
//!
//! Both directions run on aws-lc-rs: RSAES-OAEP with MGF1 over the same hash as the OAEP
//! hash and an empty label, and RSAES-PKCS1-v1_5. A failed PKCS#1 v1.5 decryption must
//! not be reported to whoever sent the ciphertext in a way that tells a bad padding apart
//! from a later failure (Bleichenbacher's padding oracle); callers that unwrap content keys
//! substitute a random key instead (see `keyward-cms`).

use std::fmt;

use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
    OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, Pkcs1PrivateDecryptingKey,
    Pkcs1PublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use der::{Decode, Encode};
use zeroize::Zeroizing;

use crate::certificate::Certificate;
use crate::error::CryptoError;
use crate::key::{KeyKind, PrivateKey};
use crate::signature::HashAlgorithm;

/// The hash of RSAES-OAEP (and of its MGF1 mask generation function).
///
/// SHA-1 is here only because OAEP's default is SHA-1 and other implementations (OpenSSL's
/// `-keyopt rsa_padding_mode:oaep`) still write it; OAEP's security does not rest on the
/// collision resistance SHA-1 lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OaepHash {
    /// SHA-1 (the default of RSAES-OAEP-params).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl OaepHash {
    /// Every OAEP hash, from SHA-1 to SHA-512.
    pub const ALL: [OaepHash; 4] = [
        OaepHash::Sha1,
        OaepHash::Sha256,
        OaepHash::Sha384,
        OaepHash::Sha512,
    ];

    /// The length of the hash in bytes.
    pub fn output_len(self) -> usize {
        match self {
            OaepHash::Sha1 => 20,
            OaepHash::Sha256 => 32,
            OaepHash::Sha384 => 48,
            OaepHash::Sha512 => 64,
        }
    }

    fn algorithm(self) -> &'static OaepAlgorithm {
        match self {
            OaepHash::Sha1 => &OAEP_SHA1_MGF1SHA1,
            OaepHash::Sha256 => &OAEP_SHA256_MGF1SHA256,
            OaepHash::Sha384 => &OAEP_SHA384_MGF1SHA384,
            OaepHash::Sha512 => &OAEP_SHA512_MGF1SHA512,
        }
    }
}

impl From<HashAlgorithm> for OaepHash {
    fn from(hash: HashAlgorithm) -> Self {
        match hash {
            HashAlgorithm::Sha256 => OaepHash::Sha256,
            HashAlgorithm::Sha384 => OaepHash::Sha384,
            HashAlgorithm::Sha512 => OaepHash::Sha512,
        }
    }
}

impl fmt::Display for OaepHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OaepHash::Sha1 => "SHA-1",
            OaepHash::Sha256 => "SHA-256",
            OaepHash::Sha384 => "SHA-384",
            OaepHash::Sha512 => "SHA-512",
        })
    }
}

/// How a short secret (a content-encryption key) is encrypted with an RSA key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RsaEncryptionPadding {
    /// RSAES-OAEP with the given hash, MGF1 over the same hash, and an empty label.
    Oaep(OaepHash),
    /// RSAES-PKCS1-v1_5.
    Pkcs1v15,
}

impl fmt::Display for RsaEncryptionPadding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RsaEncryptionPadding::Oaep(hash) => write!(f, "RSA-OAEP with {hash}"),
            RsaEncryptionPadding::Pkcs1v15 => f.write_str("RSA PKCS#1 v1.5 encryption"),
        }
    }
}

impl Certificate {
    /// Encrypts `plaintext` (a short secret such as a content-encryption key) with this
    /// certificate's RSA public key.
    ///
    /// # Errors
    /// [`CryptoError::InvalidParameter`] when the certificate holds no RSA key or the
    /// plaintext is too long for the key and padding, [`CryptoError::UnsupportedKey`] when
    /// aws-lc-rs refuses the public key, [`CryptoError::Internal`] when encryption fails.
    pub fn rsa_encrypt(
        &self,
        padding: RsaEncryptionPadding,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let public_key = self.rsa_public_key()?;
        let mut ciphertext = vec![0u8; public_key.key_size_bytes()];
        let too_long = |maximum: usize| {
            CryptoError::InvalidParameter(format!(
                "{} bytes cannot be encrypted with {padding} and the key of \"{}\" (at most {maximum})",
                plaintext.len(),
                self.subject()
            ))
        };
        let written = match padding {
            RsaEncryptionPadding::Oaep(hash) => {
                let key = OaepPublicEncryptingKey::new(public_key)
                    .map_err(|_| CryptoError::internal("the RSA-OAEP key cannot be built"))?;
                let maximum = key.max_plaintext_size(hash.algorithm());
                if plaintext.len() > maximum {
                    return Err(too_long(maximum));
                }
                key.encrypt(hash.algorithm(), plaintext, &mut ciphertext, None)
                    .map_err(|_| CryptoError::internal("RSA-OAEP encryption failed"))?
                    .len()
            }
            RsaEncryptionPadding::Pkcs1v15 => {
                let key = Pkcs1PublicEncryptingKey::new(public_key)
                    .map_err(|_| CryptoError::internal("the RSA PKCS#1 key cannot be built"))?;
                let maximum = key.max_plaintext_size();
                if plaintext.len() > maximum {
                    return Err(too_long(maximum));
                }
                key.encrypt(plaintext, &mut ciphertext)
                    .map_err(|_| CryptoError::internal("RSA PKCS#1 v1.5 encryption failed"))?
                    .len()
            }
        };
        ciphertext.truncate(written);
        Ok(ciphertext)
    }

    fn rsa_public_key(&self) -> Result<PublicEncryptingKey, CryptoError> {
        match self.key_kind() {
            Some(KeyKind::Rsa { .. }) => {}
            Some(kind) => {
                return Err(CryptoError::InvalidParameter(format!(
                    "the certificate \"{}\" holds an {kind} key; only RSA keys can encrypt with RSA",
                    self.subject()
                )));
            }
            None => {
                return Err(CryptoError::InvalidParameter(format!(
                    "the certificate \"{}\" holds a key keyward cannot encrypt with; only RSA keys can",
                    self.subject()
                )));
            }
        }
        let parsed = x509_cert::Certificate::from_der(self.der()).map_err(|e| {
            CryptoError::InvalidCertificate(format!("not a valid X.509 certificate: {e}"))
        })?;
        let spki = parsed
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(CryptoError::internal)?;
        PublicEncryptingKey::from_der(&spki).map_err(|e| {
            CryptoError::UnsupportedKey(format!(
                "the RSA key of \"{}\" cannot encrypt: {e}",
                self.subject()
            ))
        })
    }
}

impl PrivateKey {
    /// Decrypts `ciphertext` with this RSA private key.
    ///
    /// The error does not say why decryption failed (bad padding, wrong length, wrong key).
    /// With [`RsaEncryptionPadding::Pkcs1v15`], whoever sent the ciphertext must not learn
    /// even that it failed (padding oracle); callers go on with a random secret instead.
    ///
    /// # Errors
    /// [`CryptoError::InvalidParameter`] when the key is not an RSA key,
    /// [`CryptoError::Decryption`] when the ciphertext does not decrypt with this key.
    pub fn rsa_decrypt(
        &self,
        padding: RsaEncryptionPadding,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let kind = self.algorithm();
        if !matches!(kind, KeyKind::Rsa { .. }) {
            return Err(CryptoError::InvalidParameter(format!(
                "an {kind} key cannot decrypt with {padding}; only RSA keys can"
            )));
        }
        let private_key = PrivateDecryptingKey::from_pkcs8(self.pkcs8_der()).map_err(|e| {
            CryptoError::InvalidKey(format!("the RSA private key cannot decrypt: {e}"))
        })?;
        let failed = || CryptoError::Decryption(format!("{padding} decryption failed"));
        let size = private_key.key_size_bytes();
        if ciphertext.len() != size {
            return Err(failed());
        }
        let mut plaintext = Zeroizing::new(vec![0u8; size]);
        let written = match padding {
            RsaEncryptionPadding::Oaep(hash) => {
                let key = OaepPrivateDecryptingKey::new(private_key)
                    .map_err(|_| CryptoError::internal("the RSA-OAEP key cannot be built"))?;
                key.decrypt(hash.algorithm(), ciphertext, &mut plaintext, None)
                    .map_err(|_| failed())?
                    .len()
            }
            RsaEncryptionPadding::Pkcs1v15 => {
                let key = Pkcs1PrivateDecryptingKey::new(private_key)
                    .map_err(|_| CryptoError::internal("the RSA PKCS#1 key cannot be built"))?;
                key.decrypt(ciphertext, &mut plaintext)
                    .map_err(|_| failed())?
                    .len()
            }
        };
        plaintext.truncate(written);
        Ok(plaintext)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::issue::generate;
    use keyward_domain::{KeyAlgorithm, Timestamp};

    const NOW: Timestamp = Timestamp::from_seconds(1_800_000_000);

    #[test]
    fn every_padding_encrypts_and_decrypts_and_detects_changes() {
        let (key, cert) = generate(KeyAlgorithm::Rsa2048, "CN=recipient", 1, NOW).unwrap();
        let (other, _) = generate(KeyAlgorithm::Rsa2048, "CN=other", 1, NOW).unwrap();
        let mut paddings: Vec<RsaEncryptionPadding> = OaepHash::ALL
            .into_iter()
            .map(RsaEncryptionPadding::Oaep)
            .collect();
        paddings.push(RsaEncryptionPadding::Pkcs1v15);
        for padding in paddings {
            let secret = [7u8; 32];
            let ciphertext = cert.rsa_encrypt(padding, &secret).unwrap();
            assert_eq!(ciphertext.len(), 256, "{padding}");
            assert_eq!(
                key.rsa_decrypt(padding, &ciphertext).unwrap().as_slice(),
                secret,
                "{padding}"
            );
            let err = other.rsa_decrypt(padding, &ciphertext).unwrap_err();
            assert!(
                matches!(err, CryptoError::Decryption(_)),
                "{padding}: {err}"
            );
            let mut damaged = ciphertext.clone();
            damaged[100] ^= 1;
            assert!(key.rsa_decrypt(padding, &damaged).is_err(), "{padding}");
            assert!(key.rsa_decrypt(padding, &ciphertext[1..]).is_err());
            assert!(key.rsa_decrypt(padding, &[]).is_err());
        }
        // The hash is part of OAEP: another one fails.
        let sealed = cert
            .rsa_encrypt(RsaEncryptionPadding::Oaep(OaepHash::Sha256), b"k")
            .unwrap();
        assert!(
            key.rsa_decrypt(RsaEncryptionPadding::Oaep(OaepHash::Sha1), &sealed)
                .is_err()
        );
    }

    #[test]
    fn only_rsa_keys_encrypt_and_secrets_must_fit() {
        let (ec_key, ec_cert) = generate(KeyAlgorithm::EcP256, "CN=ec", 1, NOW).unwrap();
        let padding = RsaEncryptionPadding::Oaep(OaepHash::Sha256);
        let err = ec_cert.rsa_encrypt(padding, b"k").unwrap_err();
        assert!(err.is_user_error());
        assert!(err.to_string().contains("EC P-256 key"), "{err}");
        let err = ec_key.rsa_decrypt(padding, &[0; 256]).unwrap_err();
        assert!(err.to_string().contains("only RSA keys"), "{err}");
        let (_, cert) = generate(KeyAlgorithm::Rsa2048, "CN=r", 1, NOW).unwrap();
        let err = cert
            .rsa_encrypt(RsaEncryptionPadding::Oaep(OaepHash::Sha512), &[0; 200])
            .unwrap_err();
        assert!(err.to_string().contains("at most 126"), "{err}");
        assert_eq!(OaepHash::from(HashAlgorithm::Sha384), OaepHash::Sha384);
    }
}
