//! API tokens.
//!
//! A token is `kw_` followed by 32 random bytes in URL-safe base64. Only its SHA-256 hash is
//! stored, so a copy of the database does not give access. The tokens carry 256 bits of
//! entropy, so a plain hash (no salt, no slow KDF) is enough to make them unguessable from
//! the hash.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::KeystoreError;

/// Prefix that makes keyward tokens recognisable (for example by secret scanners).
pub const TOKEN_PREFIX: &str = "kw_";

/// Creates a new random token.
///
/// # Errors
/// When the system's random generator fails.
pub fn generate_token() -> Result<String, KeystoreError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KeystoreError::Corrupt { what: "random generator".into(), detail: "no randomness available".into() })?;
    Ok(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_prefixed() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_eq!(hash_token(&a), hash_token(&a.clone()));
    }
}
