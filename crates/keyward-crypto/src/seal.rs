//! Encryption at rest: [`MasterKey`] seals private keys (and other secrets) with
//! AES-256-GCM before they are stored.
//!
//! Sealed format, version 1: `0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes)`.
//! The nonce is random for every seal. The caller's `context` (for example the tenant and
//! entry id) is bound as associated data, so a sealed value copied to another record
//! does not open there.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::CryptoError;

/// The format version byte written first in sealed data.
pub const SEALED_FORMAT_VERSION: u8 = 1;
/// Length of a master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// A 256-bit key for AES-256-GCM, wiped from memory when dropped.
#[derive(Clone)]
pub struct MasterKey {
    bytes: Zeroizing<[u8; MASTER_KEY_LEN]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A new random key.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] when the random generator fails.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut bytes = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| CryptoError::internal("the random generator failed"))?;
        Ok(Self { bytes })
    }

    /// A key from exactly 32 bytes.
    ///
    /// # Errors
    /// [`CryptoError::InvalidMasterKey`] for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let array: [u8; MASTER_KEY_LEN] = bytes.try_into().map_err(|_| {
            CryptoError::InvalidMasterKey(format!(
                "the master key must be exactly {MASTER_KEY_LEN} bytes, not {}",
                bytes.len()
            ))
        })?;
        Ok(Self {
            bytes: Zeroizing::new(array),
        })
    }

    /// The key as standard base64 (44 characters).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes.as_ref())
    }

    /// A key from standard base64 of 32 bytes (surrounding whitespace is ignored).
    ///
    /// # Errors
    /// [`CryptoError::InvalidMasterKey`] for bad base64 or a wrong length.
    pub fn from_base64(s: &str) -> Result<Self, CryptoError> {
        let decoded = Zeroizing::new(STANDARD.decode(s.trim()).map_err(|e| {
            CryptoError::InvalidMasterKey(format!("the master key is not valid base64: {e}"))
        })?);
        Self::from_bytes(&decoded).map_err(|_| {
            CryptoError::InvalidMasterKey(format!(
                "the master key must be {MASTER_KEY_LEN} bytes in base64 (44 characters), but it decodes to {} bytes",
                decoded.len()
            ))
        })
    }

    fn aead_key(&self) -> Result<LessSafeKey, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, self.bytes.as_ref())
            .map_err(|_| CryptoError::internal("AES key setup failed"))?;
        Ok(LessSafeKey::new(unbound))
    }

    /// Encrypts `plaintext`, binding `context` as associated data.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] when the random generator or the cipher fails.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce_bytes = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce_bytes)
            .map_err(|_| CryptoError::internal("the random generator failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(SEALED_FORMAT_VERSION);
        out.extend_from_slice(&nonce_bytes);
        let mut in_out = plaintext.to_vec();
        self.aead_key()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context),
                &mut in_out,
            )
            .map_err(|_| CryptoError::internal("AES-GCM sealing failed"))?;
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    /// Decrypts data made by [`MasterKey::seal`] with the same key and context.
    ///
    /// # Errors
    /// [`CryptoError::Unseal`] when the data is truncated, of an unknown format version, or
    /// does not authenticate (wrong key, wrong context, or altered data).
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let Some((&version, rest)) = sealed.split_first() else {
            return Err(CryptoError::Unseal("the sealed data is empty".to_owned()));
        };
        if version != SEALED_FORMAT_VERSION {
            return Err(CryptoError::Unseal(format!(
                "the sealed data has format version {version}; this keyward reads version {SEALED_FORMAT_VERSION}"
            )));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Unseal(format!(
                "the sealed data is truncated ({} bytes, at least {} needed)",
                sealed.len(),
                1 + NONCE_LEN + TAG_LEN
            )));
        }
        let (nonce_bytes, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce_bytes)
            .map_err(|_| CryptoError::internal("nonce length"))?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plain_len = self
            .aead_key()?
            .open_in_place(nonce, Aad::from(context), in_out.as_mut_slice())
            .map_err(|_| {
                CryptoError::Unseal(
                    "the sealed data does not open: wrong master key, wrong context, or the data was altered".to_owned(),
                )
            })?
            .len();
        in_out.truncate(plain_len);
        Ok(in_out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let key = MasterKey::generate().unwrap();
        for plain in [&b""[..], b"x", &[7u8; 1000]] {
            let sealed = key.seal(plain, b"tenant-1/entry-2").unwrap();
            assert_eq!(sealed[0], 1);
            assert_eq!(sealed.len(), 1 + 12 + plain.len() + 16);
            assert_eq!(&key.open(&sealed, b"tenant-1/entry-2").unwrap()[..], plain);
        }
        // Random nonces: sealing twice differs.
        assert_ne!(
            key.seal(b"same", b"c").unwrap(),
            key.seal(b"same", b"c").unwrap()
        );
    }

    #[test]
    fn tampering_wrong_key_and_context_fail() {
        let key = MasterKey::generate().unwrap();
        let other = MasterKey::generate().unwrap();
        let sealed = key.seal(b"secret", b"ctx").unwrap();
        let fails = |k: &MasterKey, data: &[u8], ctx: &[u8]| -> String {
            let err = k.open(data, ctx).unwrap_err();
            assert!(!err.is_user_error());
            err.to_string()
        };
        assert!(fails(&key, &sealed, b"other ctx").contains("does not open"));
        assert!(fails(&other, &sealed, b"ctx").contains("does not open"));
        for i in 1..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                fails(&key, &bad, b"ctx").contains("does not open"),
                "byte {i}"
            );
        }
        let mut bad_version = sealed.clone();
        bad_version[0] = 2;
        assert!(fails(&key, &bad_version, b"ctx").contains("format version 2"));
        assert!(fails(&key, &[], b"ctx").contains("empty"));
        for len in 1..(1 + 12 + 16) {
            assert!(
                fails(&key, &sealed[..len], b"ctx").contains("truncated"),
                "len {len}"
            );
        }
        assert!(fails(&key, &sealed[..sealed.len() - 1], b"ctx").contains("does not open"));
    }

    #[test]
    fn key_encoding() {
        let key = MasterKey::generate().unwrap();
        let text = key.to_base64();
        assert_eq!(text.len(), 44);
        let again = MasterKey::from_base64(&format!(" {text}\n")).unwrap();
        let sealed = key.seal(b"abc", b"").unwrap();
        assert_eq!(&again.open(&sealed, b"").unwrap()[..], b"abc");
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
        assert!(!format!("{key:?}").contains(&text));

        let err = MasterKey::from_bytes(&[0; 31]).unwrap_err();
        assert!(err.is_user_error() && err.to_string().contains("exactly 32 bytes, not 31"));
        let err = MasterKey::from_base64("not base64!").unwrap_err();
        assert!(err.is_user_error() && err.to_string().contains("not valid base64"));
        let err = MasterKey::from_base64("AAAA").unwrap_err();
        assert!(err.to_string().contains("decodes to 3 bytes"), "{err}");
        assert!(MasterKey::from_bytes(&[9; 32]).is_ok());
    }
}
